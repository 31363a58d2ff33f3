// The pure preemption decision (src/flow/preemption.ts): table tests, and
// fast-check properties over random waiting tasks and running attempts —
// nothing is preempted while a slot is free; only strictly lower priorities;
// each victim once, one per waiting task, within the budget; the victim is the
// lowest priority, youngest running attempt available.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  chooseVictims,
  PreemptionBudget,
  type Preemptor,
  type RunningAttempt,
  type VictimChoice,
} from '../../src/flow/preemption.js';
import { parseTopology, TopologyError } from '../../src/topology/parse.js';

/** Seed of every property here; FC_SEED=<n> replays another. Printed on failure. */
const SEED = process.env['FC_SEED'] !== undefined ? Number(process.env['FC_SEED']) : 20261206;

function check<Ts>(prop: fc.IProperty<Ts>, numRuns = 400): void {
  try {
    fc.assert(prop, { seed: SEED, numRuns });
  } catch (e) {
    console.error(`property failed; replay with FC_SEED=${SEED}`);
    throw e;
  }
}

const run = (key: string, rank: number, startedMs: number, agentId = 'a'): RunningAttempt => ({
  key,
  agentId,
  rank,
  startedMs,
});

describe('chooseVictims', () => {
  it('preempts the lowest priority, youngest attempt for a critical task', () => {
    const running = [run('n#1', 2, 10), run('l-old#1', 3, 5), run('l-young#1', 3, 20), run('h#1', 1, 30)];
    const out = chooseVictims({ freeSlots: 0, waiting: [{ id: 'c', rank: 0 }], running, thresholdRank: 0, budget: 5 });
    expect(out).toEqual([{ preemptor: 'c', victim: running[2] }]);
  });

  it('preempts nothing while a slot is free, past the budget, or for a task below the threshold', () => {
    const running = [run('l#1', 3, 1), run('l#2', 3, 2)];
    const waiting = [
      { id: 'c1', rank: 0 },
      { id: 'c2', rank: 0 },
    ];
    expect(chooseVictims({ freeSlots: 1, waiting, running, thresholdRank: 0, budget: 5 })).toEqual([]);
    expect(chooseVictims({ freeSlots: 0, waiting, running, thresholdRank: 0, budget: 1 })).toHaveLength(1);
    expect(
      chooseVictims({ freeSlots: 0, waiting: [{ id: 'h', rank: 1 }], running, thresholdRank: 0, budget: 5 }),
    ).toEqual([]);
    expect(
      chooseVictims({ freeSlots: 0, waiting: [{ id: 'h', rank: 1 }], running, thresholdRank: 1, budget: 5 }),
    ).toHaveLength(1);
  });

  it('never preempts an equal or higher priority, and respects affinity', () => {
    const running = [run('c#1', 0, 1), run('l#1', 3, 2, 'gpu-less')];
    expect(
      chooseVictims({ freeSlots: 0, waiting: [{ id: 'c', rank: 0 }], running, thresholdRank: 0, budget: 5 }),
    ).toEqual([{ preemptor: 'c', victim: running[1] }]);
    const fits = (_p: string, agent: string): boolean => agent !== 'gpu-less';
    expect(
      chooseVictims({ freeSlots: 0, waiting: [{ id: 'c', rank: 0 }], running, thresholdRank: 0, budget: 5, fits }),
    ).toEqual([]);
  });

  it('gives a task of N slots only a victim holding at least N (seed 116: a 1-slot victim for a 2-slot task)', () => {
    const one = run('l1#1', 3, 9, 'small');
    const two = { ...run('l2#1', 3, 1, 'big'), slots: 2 };
    const waiting: Preemptor[] = [{ id: 'c', rank: 0, slots: 2 }];
    // The youngest lowest-priority attempt would be `one`; it frees one slot, too few.
    expect(chooseVictims({ freeSlots: 0, waiting, running: [one, two], thresholdRank: 0, budget: 5 })).toEqual([
      { preemptor: 'c', victim: two },
    ]);
    expect(chooseVictims({ freeSlots: 0, waiting, running: [one], thresholdRank: 0, budget: 5 })).toEqual([]);
    // A one-slot task still takes the youngest.
    expect(
      chooseVictims({
        freeSlots: 0,
        waiting: [{ id: 'c', rank: 0 }],
        running: [one, two],
        thresholdRank: 0,
        budget: 5,
      }),
    ).toEqual([{ preemptor: 'c', victim: one }]);
  });

  const arbRunning = fc.uniqueArray(
    fc.record({
      key: fc.string({ minLength: 1, maxLength: 4 }),
      agentId: fc.constantFrom('a', 'b', 'c'),
      rank: fc.integer({ min: 0, max: 3 }),
      startedMs: fc.integer({ min: 0, max: 50 }),
    }),
    { selector: (r) => r.key, maxLength: 12 },
  );
  const arbWaiting = fc.uniqueArray(
    fc.record({ id: fc.string({ minLength: 1, maxLength: 4 }), rank: fc.integer({ min: 0, max: 3 }) }),
    { selector: (w) => w.id, maxLength: 8 },
  );
  const arbInput = fc.record({
    freeSlots: fc.integer({ min: 0, max: 2 }),
    waiting: arbWaiting,
    running: arbRunning,
    thresholdRank: fc.integer({ min: 0, max: 2 }),
    budget: fc.integer({ min: 0, max: 10 }),
  });

  it('property: nothing is preempted while a slot is free', () => {
    check(fc.property(arbInput, (o) => o.freeSlots === 0 || chooseVictims(o).length === 0));
  });

  it('property: strictly lower priority, eligible preemptors, each victim once, one per preemptor, within budget', () => {
    check(
      fc.property(arbInput, (o) => {
        const out = chooseVictims(o);
        const rank = new Map(o.waiting.map((w) => [w.id, w.rank]));
        expect(out.length).toBeLessThanOrEqual(o.budget);
        expect(new Set(out.map((c) => c.victim.key)).size).toBe(out.length);
        expect(new Set(out.map((c) => c.preemptor)).size).toBe(out.length);
        for (const c of out) {
          const r = rank.get(c.preemptor)!;
          expect(r).toBeLessThanOrEqual(o.thresholdRank);
          expect(c.victim.rank).toBeGreaterThan(r);
        }
      }),
    );
  });

  it('property: each victim is the lowest priority, youngest attempt left when its preemptor chose', () => {
    check(
      fc.property(arbInput, (o) => {
        const out: VictimChoice[] = chooseVictims(o);
        const taken = new Set<string>();
        const byId = new Map<string, Preemptor>(o.waiting.map((w) => [w.id, w]));
        for (const c of out) {
          const p = byId.get(c.preemptor)!;
          for (const r of o.running) {
            if (taken.has(r.key) || r.rank <= p.rank || r.key === c.victim.key) continue;
            // No other eligible attempt beats the chosen one.
            const better = r.rank > c.victim.rank || (r.rank === c.victim.rank && r.startedMs > c.victim.startedMs);
            expect(better).toBe(false);
          }
          taken.add(c.victim.key);
        }
      }),
    );
  });

  it('property: when a slot is full and a victim is there, an eligible waiting task gets one (within the budget)', () => {
    check(
      fc.property(arbInput, (o) => {
        if (o.freeSlots > 0 || o.budget === 0) return;
        const first = o.waiting.find((w) => w.rank <= o.thresholdRank);
        if (!first || !o.running.some((r) => r.rank > first.rank)) return;
        expect(chooseVictims(o).length).toBeGreaterThan(0);
      }),
    );
  });
});

describe('PreemptionBudget', () => {
  it('allows at most maxPerSecond in any second', () => {
    const b = new PreemptionBudget(2);
    expect(b.available(0)).toBe(2);
    b.spend(0);
    b.spend(500);
    expect(b.available(999)).toBe(0);
    expect(b.available(1000)).toBe(1);
    expect(b.available(1500)).toBe(2);
  });
});

describe('topology preemption section', () => {
  const base = `name: t
addressing: { basePort: 7100 }
cells:
  name: /
  children:
    - name: n1
`;
  it('parses with defaults, and refuses bad values', () => {
    const t = parseTopology(`${base}preemption: {}\n`, 't.yaml');
    expect(t.preemption).toEqual({ enabled: true, minPriority: 'critical', graceMs: 5000, maxPerSecond: 10 });
    expect(parseTopology(base, 't.yaml').preemption).toBeUndefined();
    const bad = (): unknown =>
      parseTopology(`${base}preemption: { minPriority: low, graceMs: -1, extra: 1 }\n`, 't.yaml');
    expect(bad).toThrow(TopologyError);
    expect(bad).toThrow(/preemption.minPriority/);
  });
});
