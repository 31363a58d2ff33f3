// The mesh simulator in CI: 60 seeds with every cell a Raft group (1-5
// replicas, as `meshlb serve` runs them) and 60 with every replica leading
// alone (`meshlb dev`, --no-raft: cheaper, so more of the workload and fault
// mix per CPU second). Every failing seed is named with its violations and the
// command that replays it. Seeds are fixed so CI is deterministic. Each half of
// 30 seeds shows every fault kind and ending dozens of times (session 12: 38-122
// of each); a change to src/mesh, src/raft, src/policies, src/queue or src/flow
// lands only after 150 seeds of each mode (`npm run sim:mesh -- --seeds 150`,
// with and without --no-raft: 150 seeds here were ~140 s of the suite's CPU).
// A longer run is one command:
//   MESHLB_SIM_SEEDS=2000 MESHLB_SIM_START=1 npx vitest run test/mesh/sim/sim.test.ts
// (or `npm run sim:mesh -- --seeds 2000`, which also prints seeds/s).
import { describe, expect, it } from 'vitest';
import { WALL_GUARD_MS, withinCpu } from '../../helpers/cpu-budget.js';
import { replayCommand, runSeed, type SimResult } from './sim.js';

/** Seeds per mode (Raft cells and --no-raft); ~0.7 s of CPU a Raft seed, ~0.36 s a --no-raft one. */
const SEEDS = envInt('MESHLB_SIM_SEEDS', 60);
const START = envInt('MESHLB_SIM_START', 1);
/**
 * CPU seconds per seed a batch may spend before it is called hung (a Raft seed takes ~0.9 s alone). CPU
 * time, not wall time: on a loaded machine (load 15-50 on 2 cores) the wall time of the same seeds is
 * many times longer and tripped a 4 s-per-seed wall bound; the seeds end by themselves on virtual time.
 */
const CPU_SECS_PER_SEED = 4;

function envInt(name: string, dflt: number): number {
  const v = process.env[name];
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive integer, got ${v}`);
  return n;
}

interface Batch {
  readonly failed: string[];
  readonly totals: Record<string, number>;
}

/** Run seeds [from, to); every failing seed's violations (up to 8) and its replay command. */
async function runBatch(from: number, to: number, raft: boolean): Promise<Batch> {
  const failed: string[] = [];
  const totals: Record<string, number> = {};
  const add = (k: string, n: number): void => void (totals[k] = (totals[k] ?? 0) + n);
  for (let seed = from; seed < to; seed++) {
    const r = await runSeed({ seed, raft });
    if (r.violations.length > 0) failed.push(describeFailure(r, raft));
    for (const [k, n] of Object.entries(r.stats.faults)) add(k, n);
    for (const [k, n] of Object.entries(r.stats.outcomes)) add(k, n);
    add('resubmits', r.stats.workload.resubmits);
    add('cancels', r.stats.workload.cancels);
  }
  return { failed, totals };
}

function describeFailure(r: SimResult, raft: boolean): string {
  const lines = r.violations.slice(0, 8).map((v) => `  [${v.check}] at ${Math.round(v.atMs)} ms: ${v.what}`);
  const more = r.violations.length > 8 ? [`  ... ${r.violations.length - 8} more`] : [];
  const replay = replayCommand(r.seed, { maxReplicas: 5, raft, faults: 1 });
  return [`seed ${r.seed} (${r.violations.length} violations):`, ...lines, ...more, `  replay: ${replay}`].join('\n');
}

/** The seeds of one mode in two halves, so each `it` reports (and times out) on its own. */
function halves(): [number, number][] {
  const mid = START + Math.ceil(SEEDS / 2);
  return [
    [START, mid],
    [mid, START + SEEDS],
  ];
}

describe('mesh simulator in CI', () => {
  for (const raft of [true, false]) {
    for (const [from, to] of halves()) {
      if (from >= to) continue;
      const mode = raft ? 'Raft cells' : '--no-raft';
      it(
        `seeds ${from}..${to - 1}, ${mode}: no violation, every accepted task ends`,
        async () => {
          const { failed, totals } = await withinCpu(
            (to - from) * CPU_SECS_PER_SEED * 1000,
            `seeds ${from}..${to - 1}`,
            () => runBatch(from, to, raft),
          );
          expect(failed.length, `${failed.length} of ${to - from} seeds failed:\n${failed.join('\n')}`).toBe(0);
          // The seeds did what the run claims: faults of each kind and every ending (not a quiet mesh).
          // Counted over a batch, so a long run (MESHLB_SIM_SEEDS) is held to it as well as CI's.
          if (to - from >= 25) {
            const want = ['linkBreaks', 'partitions', 'agentCrashes', 'agentHangs', 'completed', 'dead_lettered'];
            if (raft) want.push('replicaCrashes', 'leaderChanges');
            for (const k of want) expect(totals[k] ?? 0, `${k} over seeds ${from}..${to - 1}`).toBeGreaterThan(0);
          }
        },
        WALL_GUARD_MS,
      );
    }
  }

  it('replays a seed exactly: same stats, same violations', async () => {
    for (const raft of [true, false]) {
      const a = await runSeed({ seed: 7, raft });
      const b = await runSeed({ seed: 7, raft });
      expect(b.stats).toEqual(a.stats);
      expect(b.violations).toEqual(a.violations);
      // And it did something: tasks accepted and ended, messages on the links and agent streams.
      expect(a.stats.workload.accepted).toBeGreaterThan(10);
      expect(a.stats.messages).toBeGreaterThan(100);
    }
  });
});
