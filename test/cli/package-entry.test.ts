// `import { Agent } from 'meshlb'` in a fresh clone: the package entry is the
// compiled dist/, which the package's own `prepare` script builds on `npm ci`
// and `npm install` (scripts/prepare.mjs). Checked here: the wiring from
// package.json to the file tsc writes, the script's two ways of skipping (no
// sources, no TypeScript: `npm ci --omit=dev` in deploy/Dockerfile), and, where
// dist/ exists (after `npm ci`, as in .ci/run), the real import by a plain
// Node.js process exporting exactly what src/index.ts does.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const repo = join(import.meta.dirname, '..', '..');
const json = (file: string): Record<string, unknown> => JSON.parse(readFileSync(join(repo, file), 'utf8'));

describe("the package entry ('meshlb')", () => {
  it('package.json builds dist/ on install, and its exports name the file tsc writes for src/index.ts', () => {
    const pkg = json('package.json') as {
      scripts: Record<string, string>;
      exports: Record<string, { import: string; types: string }>;
      main: string;
    };
    expect(pkg.scripts.prepare).toBe('node scripts/prepare.mjs');
    // tsc, then the files it does not compile (the live page's): scripts/copy-assets.mjs
    expect(pkg.scripts.build).toBe('tsc -p tsconfig.build.json && node scripts/copy-assets.mjs');
    const build = json('tsconfig.build.json') as { extends: string; include: string[] };
    const base = json('tsconfig.json') as { compilerOptions: { outDir: string; rootDir: string } };
    expect(build.extends).toBe('./tsconfig.json');
    expect(build.include).toEqual(['src/**/*.ts']);
    // rootDir "." and outDir "dist": src/index.ts -> dist/src/index.js (and .d.ts).
    expect(base.compilerOptions).toMatchObject({ outDir: 'dist', rootDir: '.' });
    expect(pkg.exports['.']).toEqual({ types: './dist/src/index.d.ts', import: './dist/src/index.js' });
    expect(pkg.main).toBe('dist/src/index.js');
  });

  it('prepare skips with a line where there is nothing to build with', () => {
    // Not as `npx` runs it: prepare.mjs exits at once, silently, under npm exec (npm_command=exec), which
    // `npx vitest` passes on to every child.
    const env = { ...process.env };
    delete env.npm_command;
    const dir = mkdtempSync(join(tmpdir(), 'meshlb-prepare-'));
    try {
      mkdirSync(join(dir, 'scripts'));
      cpSync(join(repo, 'scripts', 'prepare.mjs'), join(dir, 'scripts', 'prepare.mjs'));
      // An installed package: no sources.
      let r = spawnSync(process.execPath, [join(dir, 'scripts', 'prepare.mjs')], { encoding: 'utf8', env });
      expect(r.status).toBe(0);
      expect(r.stderr).toMatch(/no sources to build.*skipped/);
      // `npm ci --omit=dev`: sources, but no TypeScript to build them with.
      mkdirSync(join(dir, 'src'));
      writeFileSync(join(dir, 'src', 'index.ts'), 'export {};\n');
      r = spawnSync(process.execPath, [join(dir, 'scripts', 'prepare.mjs')], { encoding: 'utf8', env });
      expect(r.status).toBe(0);
      expect(r.stderr).toMatch(/TypeScript is not installed/);
      expect(existsSync(join(dir, 'dist'))).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a plain Node.js script imports { Agent, MeshClient } from meshlb (after npm ci/install)', async () => {
    const entry = join(repo, 'dist', 'src', 'index.js');
    if (!existsSync(entry)) {
      // Only a tree that was never installed since this script came lacks it; CI installs.
      expect(process.env.CI, 'dist/ is missing after npm ci: the prepare script did not build it').toBeFalsy();
      console.warn('package entry: dist/ not built in this tree (npm install builds it); import not tried');
      return;
    }
    const script = `
      import * as m from 'meshlb';
      import { Agent, MeshClient } from 'meshlb';
      const a = new Agent({ address: '127.0.0.1:1', agentId: 'x', slots: 1 }).handle('echo', (t) => t.payload);
      new MeshClient({ address: '127.0.0.1:1' }).close();
      console.log(JSON.stringify({ names: Object.keys(m).sort(), state: a.state }));`;
    // From the root and from a subdirectory, as a script in the repository would.
    for (const cwd of [repo, join(repo, 'examples')]) {
      const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd, encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      const out = JSON.parse(r.stdout) as { names: string[]; state: string };
      expect(out.state).toBe('idle');
      const source = Object.keys(await import('../../src/index.js')).sort();
      expect(out.names, 'dist/ is stale: npm run build').toEqual(source);
    }
  });
});
