// npm run sim:flow-target -- [--tasks N] [--kills K] [--failovers F] [--seed S]
// Issue 13's concurrency target as one simulated run (flow-target.ts); prints
// progress, the figures, every violation, and ends with `violations=V`
// (exit 1 if V > 0). Defaults: 100,000 tasks, 1,000 kills, 2 failovers, seed 1.
import { runFlowTarget } from './flow-target.js';

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(process.argv[i + 1]) : dflt;
  if (!Number.isInteger(v) || v < 0) {
    console.error('usage: --tasks N --kills K --failovers F --seed S (non-negative integers)');
    process.exit(2);
  }
  return v;
}

const o = {
  seed: arg('seed', 1),
  tasks: arg('tasks', 100_000),
  kills: arg('kills', 1000),
  failovers: arg('failovers', 2),
};
console.log(
  `flow target: seed ${o.seed}, ${o.tasks} tasks of one key (limit 3) over 3 zones, ${o.kills} agent kills mid-lease, ${o.failovers} root leader failovers`,
);
const r = await runFlowTarget({ ...o, log: (l) => console.log(`  ${l}`) });
console.log(
  `starts at agents ${r.starts}, most running at once ${r.peak} (limit 3), completed ${r.completed}/${o.tasks}, ` +
    `${r.kills} agent kills mid-lease, root leader changes ${r.leaderChanges}, permits held at the end ${r.permitsAtEnd}; ` +
    `${Math.round(r.virtualMs / 1000)} s virtual in ${Math.round(r.wallMs / 1000)} s`,
);
for (const v of r.violations.slice(0, 20)) console.log(`  [${v.check}] at ${Math.round(v.atMs)} ms: ${v.what}`);
if (r.shortfall) console.log(`  not as planned: ${r.shortfall}`);
console.log(`violations=${r.violations.length}`);
process.exit(r.violations.length > 0 || r.shortfall ? 1 : 0);
