// The package's own `prepare` script: npm runs it after `npm install` and
// `npm ci` in a checkout (a root package's own lifecycle scripts run even where
// npm refuses dependencies' install scripts), so `import { Agent } from
// 'meshlb'` resolves to a built dist/ in a fresh clone with no separate step.
//
// Skipped when there is nothing to build with: no sources (an installed
// package) or no TypeScript (`npm ci --omit=dev`, as deploy/Dockerfile does;
// bin/meshlb.js runs the sources through tsx there). Type errors do not fail
// the install: tsc writes dist/ anyway, and `npm run typecheck` and `npm test`
// are where they fail.
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
  say('TypeScript is not installed (npm ci --omit=dev?); dist/ not built, bin/meshlb.js runs the sources');
  process.exit(0);
}
const r = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json')], { stdio: 'inherit', cwd: root });
const built = existsSync(join(root, 'dist', 'src', 'index.js'));
if (r.status === 0) say('built dist/ (the package entry for `import ... from "meshlb"`)');
else if (built) say('dist/ built, with the type errors above (npm run typecheck lists them)');
else {
  say(`tsc failed (${r.status ?? r.signal}) and wrote no dist/`);
  process.exit(1);
}
