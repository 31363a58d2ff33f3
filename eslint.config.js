// Lint rules for the whole tree (`npm run lint`, also run inside `npm test`).
// Type-aware rules are left out on purpose: the whole tree lints in seconds.
// Layering (which folder may import which) is checked by
// test/meta/imports.test.ts, which also proves the rules fire.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'src/gen/**', 'bench/results/**', 'deploy/**'] },
  js.configs.recommended,
  {
    // Plain JavaScript here runs on Node.js (bin/, test fixtures, this file).
    files: ['**/*.js', '**/*.mjs', '**/*.cjs'],
    languageOptions: {
      globals: {
        process: 'readonly',
        console: 'readonly',
        setTimeout: 'readonly',
        setInterval: 'readonly',
        clearTimeout: 'readonly',
        clearInterval: 'readonly',
        Buffer: 'readonly',
        URL: 'readonly',
      },
    },
  },
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' },
      ],
      '@typescript-eslint/no-non-null-assertion': 'off',
      'no-constant-condition': ['error', { checkLoops: false }],
    },
  },
  {
    // The Raft library stands alone: nothing from the product, only its generated protos.
    files: ['src/raft/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: '^\\.\\./(\\.\\./)*(mesh|admin|agent|cli|client|policies|queue|topology|util|dev)/',
              message: 'src/raft is a library: it may import only src/raft and src/gen.',
            },
          ],
        },
      ],
    },
  },
);
