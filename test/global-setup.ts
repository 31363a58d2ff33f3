// Once, before any test file runs.
//
// 1. The first `npx meshlb` in a checkout makes npx install the checkout into its
//    cache (~/.npm/_npx), and several first calls at once (the recipe test files run
//    in parallel) race there and fail with ENOENT. One call here makes every later
//    one a cache hit.
// 2. Processes the tests start run the built dist/ when it is as new as src/
//    (npm ci and npm run build write it): MESHLB_SIM_BIN (the entry `meshlb sim`
//    starts its replicas, agents and submitter from, src/cli/sim.ts) and
//    MESHLB_TEST_ENTRY (test/helpers/entry.ts, for tests that start `meshlb serve`
//    themselves). Started through bin/meshlb.js, a checkout's entry, each process
//    spends about a second of CPU more in tsx's module hooks (a ha.yaml sim of 38
//    processes: ~90 s of CPU through tsx, ~45 s from dist/, session 14). The tests
//    are about the product, not its loader; bin/meshlb.js through tsx is still what
//    `npx meshlb` runs in every recipe test and in test/cli/main.test.ts. A dist/
//    older than any source (an edit since the last build) is not used: the
//    processes then run the sources through tsx, as before.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = join(import.meta.dirname, '..');

/** The first source under src/ whose built .js (or copied asset: the live page's files) under dist/ is missing or older, if any. */
function staleSource(dir: string): string | undefined {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    const st = statSync(p);
    if (st.isDirectory()) {
      const stale = staleSource(p);
      if (stale !== undefined) return stale;
    } else if (!name.endsWith('.d.ts')) {
      const built = join(root, 'dist', relative(root, p)).replace(/\.ts$/, '.js');
      if (!existsSync(built) || statSync(built).mtimeMs < st.mtimeMs) return relative(root, p);
    }
  }
  return undefined;
}

export default function setup(): void {
  const r = spawnSync('npx', ['meshlb', '--version'], { cwd: root, encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0) throw new Error(`npx meshlb --version failed (${r.status ?? r.signal}): ${r.stderr}`);

  const stale = staleSource(join(root, 'src'));
  if (stale === undefined) {
    const entry = join(root, 'dist', 'src', 'cli', 'main.js');
    process.env.MESHLB_SIM_BIN = entry;
    process.env.MESHLB_TEST_ENTRY = entry;
  } else {
    console.info(
      `dist/ is older than ${stale}: test processes run the sources through tsx (npm run build to use dist/)`,
    );
  }
}
