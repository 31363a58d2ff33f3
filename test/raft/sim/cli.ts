// npm run sim:raft -- --seeds N [--start S] [--seed X] [--replicas 3|5] [--ticks T] [--verbose]
// Runs seeds of the Raft simulator; prints each failing seed with the command
// that replays it, and ends with exactly `seeds=N violations=V` (exit 1 if V > 0).

import { replayCommand, runSeed } from './sim.js';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const verbose = process.argv.includes('--verbose');
const single = arg('seed');
const start = Number(arg('start') ?? 1);
const count = single !== undefined ? 1 : Number(arg('seeds') ?? 100);
const first = single !== undefined ? Number(single) : start;
const fixedReplicas = arg('replicas');
const ticks = arg('ticks') !== undefined ? Number(arg('ticks')) : undefined;
if (
  !Number.isInteger(first) ||
  !Number.isInteger(count) ||
  count < 1 ||
  (fixedReplicas !== undefined && !['3', '5'].includes(fixedReplicas))
) {
  console.error('usage: --seeds N [--start S] [--seed X] [--replicas 3|5] [--ticks T] [--verbose]');
  process.exit(2);
}

let violations = 0;
let failedSeeds = 0;
const t0 = performance.now();
for (let seed = first; seed < first + count; seed++) {
  // Without --replicas, odd seeds run 3 replicas and even seeds 5.
  const replicas = (fixedReplicas !== undefined ? Number(fixedReplicas) : seed % 2 === 1 ? 3 : 5) as 3 | 5;
  const res = runSeed({
    seed,
    replicas,
    ...(ticks !== undefined ? { ticks } : {}),
    ...(verbose ? { log: (l: string) => console.log(l) } : {}),
  });
  const bad = res.violations.length + (res.livenessOk ? 0 : 1);
  if (verbose) console.log(`seed ${seed}: ${JSON.stringify(res.stats)} liveness=${res.livenessTicks}`);
  if (bad > 0) {
    failedSeeds++;
    violations += bad;
    console.log(`FAIL seed=${seed} replicas=${replicas}`);
    for (const v of res.violations.slice(0, 5)) console.log(`  ${v.split('\n')[0]}`);
    if (!res.livenessOk) console.log('  liveness: no progress within the bound after healing');
    console.log(`  replay: ${replayCommand(seed, replicas)}`);
  }
}
const secs = (performance.now() - t0) / 1000;
console.error(`${count} seeds in ${secs.toFixed(1)}s (${(count / secs).toFixed(1)} seeds/s), ${failedSeeds} failed`);
console.log(`seeds=${count} violations=${violations}`);
process.exit(violations > 0 ? 1 : 0);
