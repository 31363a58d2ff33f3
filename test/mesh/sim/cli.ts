// npm run sim:mesh -- --seeds N [--start S] [--seed X] [--replicas 1|3|5] [--no-raft] [--faults F] [--verbose]
// Runs seeds of the mesh simulator; prints each failing seed with its
// violations and the command that replays it, and ends with exactly
// `seeds=N violations=V` (exit 1 if V > 0).
import { replayCommand, runSeed } from './sim.js';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const verbose = process.argv.includes('--verbose');
const single = arg('seed');
const count = single !== undefined ? 1 : Number(arg('seeds') ?? 100);
const first = single !== undefined ? Number(single) : Number(arg('start') ?? 1);
const maxReplicas = Number(arg('replicas') ?? 5);
const raft = !process.argv.includes('--no-raft');
const faults = Number(arg('faults') ?? 1);
if (
  !Number.isInteger(first) ||
  !Number.isInteger(count) ||
  count < 1 ||
  ![1, 3, 5].includes(maxReplicas) ||
  !(faults >= 0)
) {
  console.error('usage: --seeds N [--start S] [--seed X] [--replicas 1|3|5] [--no-raft] [--faults F] [--verbose]');
  process.exit(2);
}

let violations = 0;
let failed = 0;
/** Flow control over all seeds: keyed attempts started, keys, keys that reached their limit, the highest peak/limit. */
const flow = {
  starts: 0,
  keys: 0,
  atLimit: 0,
  worst: 0,
  leaderChanges: 0,
  agentCrashes: 0,
  replicaCrashes: 0,
  resumed: 0,
};
/** Tenant shares over all seeds: attempts of capped tenants started, tenants, those that reached their ceiling, the highest peak/ceiling. */
const shares = { starts: 0, tenants: 0, atCeiling: 0, worst: 0 };
/** The same for keys with a share (`key <k>` in the run's stats). */
const keyShares = { starts: 0, keys: 0, atCeiling: 0, worst: 0 };
let preemptions = 0;
let guaranteedPast = 0;
/** Node summaries that offered queue room past the static prefetch, by forecast (docs/policies.md). */
let prepositioned = 0;
let startedAtAccept = 0;
const debounce = { tasks: 0, folds: 0, started: 0 };
/** Tasks of several slots over all seeds: attempts started at agents, the most slots an agent held of its slots. */
const multi = { starts: 0, peak: 0 };
let gangs = 0;
let gangsAbove = 0;
let affinitySent = 0;
let affinityUnmatched = 0;
const refusals = { kept: 0, renumbered: 0, backedOff: 0, noMatchBelow: 0 };
const t0 = performance.now();
for (let seed = first; seed < first + count; seed++) {
  const res = await runSeed({
    seed,
    maxReplicas,
    raft,
    faults,
    ...(verbose ? { log: (l: string) => console.log(l), cellLogLevel: process.env.MESHLB_LOG_LEVEL ?? 'silent' } : {}),
  });
  if (verbose) console.log(`seed ${seed}: ${JSON.stringify(res.stats)}`);
  for (const k of Object.values(res.stats.flow)) {
    flow.starts += k.starts;
    flow.keys++;
    if (k.peak === k.limit) flow.atLimit++;
    flow.worst = Math.max(flow.worst, k.peak / k.limit);
  }
  for (const [subject, t] of Object.entries(res.stats.shares)) {
    const key = subject.startsWith('key ');
    const s = key ? keyShares : shares;
    s.starts += t.starts;
    if (key) keyShares.keys++;
    else shares.tenants++;
    if (t.peak === t.limit) s.atCeiling++;
    s.worst = Math.max(s.worst, t.peak / t.limit);
  }
  preemptions += res.stats.preemptions;
  guaranteedPast += res.stats.guaranteedPast;
  refusals.kept += res.stats.refusals.kept;
  refusals.renumbered += res.stats.refusals.renumbered;
  refusals.backedOff += res.stats.refusals.backedOff;
  refusals.noMatchBelow += res.stats.refusals.noMatchBelow;
  prepositioned += res.stats.prepositioned;
  startedAtAccept += res.stats.startedAtAccept;
  flow.resumed += res.stats.resumed;
  debounce.tasks += res.stats.debounce.tasks;
  debounce.folds += res.stats.debounce.folds;
  debounce.started += res.stats.debounce.started;
  multi.starts += res.stats.multislot.starts;
  gangs += res.stats.gangs.started;
  gangsAbove += res.stats.gangs.above;
  affinitySent += res.stats.affinity.sent;
  affinityUnmatched += res.stats.affinity.unmatched;
  multi.peak = Math.max(multi.peak, res.stats.multislot.peak);
  flow.leaderChanges += res.stats.faults.leaderChanges;
  flow.agentCrashes += res.stats.faults.agentCrashes;
  flow.replicaCrashes += res.stats.faults.replicaCrashes;
  if (res.violations.length > 0) {
    failed++;
    violations += res.violations.length;
    console.log(`FAIL seed=${seed}`);
    for (const v of res.violations.slice(0, 8)) console.log(`  [${v.check}] at ${Math.round(v.atMs)} ms: ${v.what}`);
    console.log(`  replay: ${replayCommand(seed, { maxReplicas, raft, faults })}`);
  }
}
const secs = (performance.now() - t0) / 1000;
console.error(`${count} seeds in ${secs.toFixed(1)} s (${(count / secs).toFixed(1)} seeds/s), ${failed} failed`);
console.error(
  `flow: ${flow.starts} keyed attempts started over ${flow.keys} keys; ${flow.atLimit} keys reached their limit; ` +
    `most running at once ${flow.worst.toFixed(2)} of the limit (faults: ${flow.leaderChanges} leader changes, ` +
    `${flow.replicaCrashes} replica crashes, ${flow.agentCrashes} agent crashes); ` +
    `${flow.resumed} attempts resumed from a checkpoint`,
);
console.error(
  `shares: ${shares.starts} attempts of capped tenants started over ${shares.tenants} tenants; ` +
    `${shares.atCeiling} reached their ceiling; most running at once ${shares.worst.toFixed(2)} of the ceiling; ` +
    `${keyShares.starts} attempts of keys with a ceiling over ${keyShares.keys} keys, ${keyShares.atCeiling} at their ` +
    `ceiling, most running at once ${keyShares.worst.toFixed(2)} of it`,
);
console.error(`preemption: ${preemptions} attempts preempted for critical tasks (live replicas' counts)`);
console.error(
  `start at accept: ${startedAtAccept} LOGGED tasks started in their accepted entry (live replicas' counts)`,
);
console.error(`minimums: ${guaranteedPast} guaranteed attempts sent past a child's credits (live replicas' counts)`);
console.error(`forecasts: ${prepositioned} node summaries pre-positioned queue room past the static prefetch`);
console.error(
  `debounce: ${debounce.tasks} debounced tasks, ${debounce.folds} submits folded into them, ${debounce.started} started`,
);
console.error(
  `multislot: ${multi.starts} attempts of 2-4 slots started at agents; most slots in use at an agent ${multi.peak.toFixed(2)} of its slots`,
);
console.error(`gangs: ${gangs} gangs had every member at an agent at once (${gangsAbove} homed above their node)`);
console.error(
  `affinity: ${affinitySent} attempts with affinity sent down by cells above the nodes; ${affinityUnmatched} tasks ended "no agent of kind X matches ..."`,
);
console.error(
  `refusals: ${refusals.kept} refused sends of home attempts kept their number, ${refusals.renumbered} took a new one past the bound; ${refusals.backedOff} re-sends backed off, ${refusals.noMatchBelow} "no match below" (live replicas' counts)`,
);
console.log(`seeds=${count} violations=${violations}`);
process.exit(violations > 0 ? 1 : 0);
