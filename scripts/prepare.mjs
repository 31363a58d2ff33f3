// The package's own `prepare` script: npm runs it after `npm install` and
// `npm ci` in a checkout (a root package's own lifecycle scripts run even where
// npm refuses dependencies' install scripts), so `import { Agent } from
// 'meshlb'` resolves to a built dist/ in a fresh clone with no separate step.
//
// Skipped when there is nothing to build with: no sources (an installed
// package, or deploy/Dockerfile's runtime stage, which copies this script
// alone so that its `npm ci --omit=dev` can run it) or no TypeScript (`npm ci
// --omit=dev` in a checkout, which has no tsx either: bin/meshlb.js then runs
// a dist/ built before, or says how to get one). Type errors do not fail the
// install: tsc writes dist/ anyway, and `npm run typecheck` and `npm test` are
// where they fail. After tsc it copies the live page's files as `npm run
// build` does (scripts/copy-assets.mjs).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const say = (line) => process.stderr.write(`meshlb prepare: ${line}\n`);

// `npx meshlb` in a checkout installs the checkout into npx's cache on its first
// call, which runs this script again: dist/ was built by the install already.
if (process.env.npm_command === 'exec') process.exit(0);

if (!existsSync(join(root, 'src', 'index.ts'))) {
  say('no sources to build (an installed package); skipped');
  process.exit(0);
}
let tsc;
try {
  tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
} catch {
  say('TypeScript is not installed (npm ci --omit=dev?); dist/ not built (`npm ci` with dev dependencies builds it)');
  process.exit(0);
}
const r = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json')], { stdio: 'inherit', cwd: root });
const built = existsSync(join(root, 'dist', 'src', 'index.js'));
// The rest of `npm run build`: the files tsc does not compile (the live page's). Imported only here: an
// installed package and the image's runtime stage have this script alone (see the exits above).
if (built) (await import('./copy-assets.mjs')).copyAssets();
if (r.status === 0) say('built dist/ (the package entry for `import ... from "meshlb"`)');
else if (built) say('dist/ built, with the type errors above (npm run typecheck lists them)');
else {
  say(`tsc failed (${r.status ?? r.signal}) and wrote no dist/`);
  process.exit(1);
}
