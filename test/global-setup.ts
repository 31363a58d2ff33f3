// Once, before any test file runs: the first `npx meshlb` in a checkout makes npx
// install the checkout into its cache (~/.npm/_npx), and several first calls at
// once (the recipe test files run in parallel) race there and fail with ENOENT.
// One call here makes every later one a cache hit.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

export default function setup(): void {
  const r = spawnSync('npx', ['meshlb', '--version'], {
    cwd: join(import.meta.dirname, '..'),
    encoding: 'utf8',
    timeout: 120_000,
  });
  if (r.status !== 0) throw new Error(`npx meshlb --version failed (${r.status ?? r.signal}): ${r.stderr}`);
}
