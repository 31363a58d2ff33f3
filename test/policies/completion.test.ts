// A node's agents by speed (speedGroups) and the parent's completion estimate
// from them (CompletionCurve): src/policies/completion.ts.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  CompletionCurve,
  createPolicy,
  makeCandidate,
  seededRandom,
  speedGroups,
  SPEED_GROUPS,
  type AgentFigures,
} from '../../src/policies/index.js';
import { assertProperty } from './arbitraries.js';

const agent = (latencyEwmaMs: number, slots: number, free: number, successEwma = 1): AgentFigures => ({
  latencyEwmaMs,
  successEwma,
  cpu: 0,
  memory: 0,
  slots,
  free,
});

const agentArb = fc.record({
  latencyEwmaMs: fc.oneof(fc.constant(0), fc.double({ min: 1, max: 2000, noNaN: true })),
  successEwma: fc.double({ min: 0, max: 1, noNaN: true }),
  cpu: fc.double({ min: 0, max: 1, noNaN: true }),
  memory: fc.double({ min: 0, max: 1, noNaN: true }),
  slots: fc.integer({ min: 0, max: 16 }),
  free: fc.integer({ min: -2, max: 18 }),
});

describe('speedGroups (what a node reports)', () => {
  it('keeps slots, free slots and release rate, in at most 8 groups, fastest first', () => {
    assertProperty(
      fc.property(fc.array(agentArb, { maxLength: 60 }), fc.nat(50), (agents, queued) => {
        const g = speedGroups(agents, queued);
        const live = agents.filter((a) => a.slots > 0);
        if (live.length === 0) {
          expect(g).toBeUndefined();
          return;
        }
        expect(g).toBeDefined();
        const n = g!.serviceMs.length;
        expect(n).toBeGreaterThan(0);
        expect(n).toBeLessThanOrEqual(SPEED_GROUPS);
        expect(g!.slots).toHaveLength(n);
        expect(g!.free).toHaveLength(n);
        expect(g!.queued).toBe(queued);
        for (let i = 1; i < n; i++) expect(g!.serviceMs[i]!).toBeGreaterThan(g!.serviceMs[i - 1]!);
        const sum = (xs: readonly number[]) => xs.reduce((s, x) => s + x, 0);
        expect(sum(g!.slots)).toBe(sum(live.map((a) => a.slots)));
        expect(sum(g!.free)).toBe(sum(live.map((a) => Math.max(0, Math.min(a.slots, a.free)))));
        for (let i = 0; i < n; i++) expect(g!.free[i]!).toBeLessThanOrEqual(g!.slots[i]!);
        for (const st of g!.serviceMs) expect(Number.isFinite(st) && st > 0).toBe(true);
      }),
    );
  });

  it("is node-score's expected service time: latency over success, an unmeasured agent 0.9x the fastest", () => {
    const g = speedGroups([agent(20, 4, 4, 0.5), agent(0, 2, 2), agent(160, 4, 0)], 0)!;
    // The unmeasured one at 18 ms (0.9 x 20), the failing one at 40 ms (20 / 0.5), the slow one at 160 ms.
    expect(g.slots).toEqual([2, 4, 4]);
    expect(g.free).toEqual([2, 4, 0]);
    expect(g.serviceMs[0]).toBeCloseTo(18, 9);
    expect(g.serviceMs[1]).toBeCloseTo(40, 9);
    expect(g.serviceMs[2]).toBeCloseTo(160, 9);
    // Agents in one bin: its slot-weighted harmonic mean, so the release rate is kept.
    const one = speedGroups([agent(20, 4, 4), agent(21, 2, 0)], 0, undefined, 1)!;
    expect(one.serviceMs[0]).toBeCloseTo(6 / (4 / 20 + 2 / 21), 9);
  });
});

describe('CompletionCurve (what the parent estimates)', () => {
  const g = { serviceMs: [20, 160], slots: [4, 8], free: [1, 8], queued: 0 };

  it('offers the fastest free slots first, then the slower ones, then a release', () => {
    const c = new CompletionCurve(g, 0);
    expect(c.at(0)).toBe(20);
    for (let n = 1; n <= 8; n++) expect(c.at(n)).toBe(160);
    // Past the 9 free slots: the first release, at R = 4/20 + 8/160 = 0.25 per ms, then the mean service S/R.
    expect(c.at(9)).toBeCloseTo((1 + 12) / 0.25, 9);
    expect(c.at(10) - c.at(9)).toBeCloseTo(4, 9);
  });

  it('counts tasks queued at the node ahead of the next one', () => {
    expect(new CompletionCurve({ ...g, queued: 1 }, 0).at(0)).toBe(160);
  });

  it("counts a busy fast slot as free again once the summary's age passes its service time", () => {
    const busy = { serviceMs: [20, 160], slots: [4, 4], free: [0, 4], queued: 0 };
    expect(new CompletionCurve(busy, 0).at(0)).toBe(160);
    // At 20 ms every busy fast slot is back for sure: the count is certain.
    expect(new CompletionCurve(busy, 20).at(3)).toBe(20);
    expect(new CompletionCurve(busy, 20).at(4)).toBe(160);
  });

  it('weighs where a task may run while a busy slot is only probably back (root mean square)', () => {
    const busy = { serviceMs: [20, 160], slots: [4, 4], free: [0, 4], queued: 0 };
    // 5 ms of 20: each of the 4 busy fast slots is back with probability 1/4; one is expected, so
    // the next task runs fast with probability P(X >= 1), X ~ N(1, 4 x 1/4 x 3/4), and else slow.
    const p = normalCdf((1 - 0.5) / Math.sqrt(0.75));
    const c = new CompletionCurve(busy, 5);
    expect(c.at(0)).toBeCloseTo(Math.sqrt(p * 20 ** 2 + (1 - p) * 160 ** 2), 4);
    // Between the two, well above the mean count's "fast", and later tasks are likelier slow.
    expect(c.at(0)).toBeGreaterThan(60);
    expect(c.at(1)).toBeGreaterThan(c.at(0));
    expect(c.at(1)).toBeLessThan(160);
  });

  it('drains a queue at the release rate past one release per slot', () => {
    const full = { serviceMs: [100], slots: [4], free: [0], queued: 20 };
    const fresh = new CompletionCurve(full, 0).at(0);
    expect(fresh).toBeCloseTo((21 + 4) / 0.04, 9);
    // 500 ms: 20 releases; 16 of them drained the queue to 4, which take the 4 slots freed last:
    // the next task waits for one release.
    expect(new CompletionCurve(full, 500).at(0)).toBeCloseTo((1 + 4) / 0.04, 9);
  });

  it("is the free slot's service time whenever the count is certain (no age, or past every service time)", () => {
    assertProperty(
      fc.property(fc.array(agentArb, { minLength: 1, maxLength: 30 }), fc.nat(40), (agents, queued) => {
        // No age: the reported free slots, behind the queue. Past every service time, nothing queued:
        // every slot back.
        for (const [age, q] of [
          [0, queued],
          [1e9, 0],
        ] as const) {
          const g = speedGroups(agents, q);
          if (!g) return;
          const c = new CompletionCurve(g, age);
          const free = age === 0 ? g.free : g.slots;
          let cum = 0;
          for (let i = 0; i < free.length; i++) {
            for (let n = cum; n < cum + free[i]!; n++) if (n >= q) expect(c.at(n - q)).toBe(g.serviceMs[i]);
            cum += free[i]!;
          }
        }
      }),
    );
  });

  it('is finite, positive, and grows by 1/R a task once past the free slots', () => {
    assertProperty(
      fc.property(fc.array(agentArb, { minLength: 1, maxLength: 30 }), fc.nat(40), fc.nat(2000), (agents, q, age) => {
        const g = speedGroups(agents, q);
        if (!g) return;
        const c = new CompletionCurve(g, age);
        let rate = 0;
        for (let i = 0; i < g.slots.length; i++) rate += g.slots[i]! / g.serviceMs[i]!;
        const slots = g.slots.reduce((s, x) => s + x, 0);
        for (let n = 0; n < 3 * slots + q + 2; n++) {
          const e = c.at(n);
          expect(Number.isFinite(e) && e > 0).toBe(true);
        }
        const far = 3 * slots + q + 2;
        expect(c.at(far + 1) - c.at(far)).toBeCloseTo(1 / rate, 6);
      }),
    );
  });
});

describe('zone-least-conn by expected completion', () => {
  const child = (id: string, speed: { serviceMs: number[]; slots: number[]; free: number[] } | undefined, free = 8) =>
    makeCandidate({
      id,
      slots: new Map([['a', { free, total: 8, ...(speed ? { speed: { ...speed, queued: 0 } } : {}) }]]),
      active: 8 - free,
    });
  const pick = (cands: ReturnType<typeof child>[], seed = 1) =>
    createPolicy('zone-least-conn', undefined, { random: seededRandom(seed) })
      .buildPicker(cands, 0)
      .pick({ kind: 'a', priority: 'normal' });

  it('prefers a busier child whose free agent is fast to an idle one of slow agents', () => {
    const fast = child('fast', { serviceMs: [20, 160], slots: [2, 6], free: [1, 0] }, 1);
    const slow = child('slow', { serviceMs: [160], slots: [8], free: [8] }, 8);
    for (let seed = 1; seed <= 10; seed++)
      expect(pick([slow, fast], seed)).toEqual({ type: 'route', candidate: 'fast' });
    // By load per slot (no speeds reported) the idle one wins.
    expect(pick([child('slow', undefined, 8), child('fast', undefined, 1)])).toEqual({
      type: 'route',
      candidate: 'slow',
    });
  });

  it('lets a child its breaker limits (probes, slow start) have its allowance, however slow it looks', () => {
    const fast = child('fast', { serviceMs: [20, 160], slots: [2, 6], free: [2, 6] }, 8);
    const healing = makeCandidate({
      ...child('healing', { serviceMs: [900], slots: [8], free: [1] }, 1),
      limited: true,
    });
    for (let seed = 1; seed <= 10; seed++)
      expect(pick([fast, healing], seed)).toEqual({ type: 'route', candidate: 'healing' });
    // Without the breaker's mark the fast child wins.
    const plain = child('healing', { serviceMs: [900], slots: [8], free: [1] }, 1);
    expect(pick([fast, plain])).toEqual({ type: 'route', candidate: 'fast' });
  });

  it('falls back to load per slot while any child of the kind does not report speeds', () => {
    const fast = child('fast', { serviceMs: [20, 160], slots: [2, 6], free: [1, 0] }, 1);
    expect(pick([child('slow', undefined, 8), fast])).toEqual({ type: 'route', candidate: 'slow' });
  });

  it('counts its own routes: a burst moves on once the fast slots are taken', () => {
    const p = createPolicy('zone-least-conn', undefined, { random: seededRandom(5) }).buildPicker(
      [
        child('x', { serviceMs: [20, 160], slots: [2, 6], free: [2, 6] }),
        child('y', { serviceMs: [20, 160], slots: [2, 6], free: [2, 6] }),
      ],
      0,
    );
    const first = Array.from({ length: 4 }, () => p.pick({ kind: 'a', priority: 'normal' }));
    const by = (id: string) => first.filter((r) => r.type === 'route' && r.candidate === id).length;
    expect([by('x'), by('y')]).toEqual([2, 2]);
  });

  it('takes two expected completions within the tolerance as equal: the less loaded wins', () => {
    const busy = child('busy', { serviceMs: [100], slots: [8], free: [2] }, 2);
    const idle = child('idle', { serviceMs: [110], slots: [8], free: [8] }, 8);
    for (let seed = 1; seed <= 10; seed++)
      expect(pick([busy, idle], seed)).toEqual({ type: 'route', candidate: 'idle' });
    const strict = createPolicy('zone-least-conn', { tolerance: 0 }, { random: seededRandom(1) }).buildPicker(
      [busy, idle],
      0,
    );
    expect(strict.pick({ kind: 'a', priority: 'normal' })).toEqual({ type: 'route', candidate: 'busy' });
  });

  it('sends the second task to a node with a certain free slot, not to one whose fast slot is only probably back', () => {
    // "maybe": its 4 fast slots (20 ms) were busy 15 ms ago, 3 of them back by now on the mean;
    // "sure": a fresh summary, 8 free slots at 30 ms. The first task takes maybe's likely fast
    // slot; the second would be its second of three expected, which is back with probability
    // 0.96 only, its slow slots 160 ms otherwise. The mean count alone sent all three there.
    const maybe = makeCandidate({
      id: 'maybe',
      slots: new Map([
        ['a', { free: 8, total: 8, speed: { serviceMs: [20, 160], slots: [4, 4], free: [0, 4], queued: 0 } }],
      ]),
      active: 4,
      summaryAgeMs: 15,
    });
    const sure = child('sure', { serviceMs: [30], slots: [8], free: [8] });
    const p = createPolicy('zone-least-conn', undefined, { random: seededRandom(1) }).buildPicker([maybe, sure], 0);
    const picks = Array.from({ length: 3 }, () => p.pick({ kind: 'a', priority: 'normal' }));
    expect(picks.map((r) => (r.type === 'route' ? r.candidate : r.type))).toEqual(['maybe', 'sure', 'sure']);
  });

  it('explains a pick by expected completion', () => {
    const p = createPolicy('zone-least-conn', undefined, { random: seededRandom(3) }).buildPicker(
      [
        child('fast', { serviceMs: [20], slots: [8], free: [8] }),
        child('slow', { serviceMs: [160], slots: [8], free: [8] }),
      ],
      0,
    );
    const t = { kind: 'a', priority: 'normal' } as const;
    expect(p.pick(t)).toEqual({ type: 'route', candidate: 'fast' });
    const e = p.explain(t, 'fast', 8);
    expect(e.score).toBe('expected completion, ms');
    expect(e.candidates.map((c) => [c.id, c.score])).toEqual([
      ['fast', 20],
      ['slow', 160],
    ]);
  });
});

/** The standard normal CDF by numeric integration (independent of the code under test). */
function normalCdf(x: number): number {
  const steps = 20_000;
  const lo = -10;
  const h = (x - lo) / steps;
  let sum = 0;
  for (let i = 0; i < steps; i++) {
    const t = lo + (i + 0.5) * h;
    sum += Math.exp((-t * t) / 2);
  }
  return (sum * h) / Math.sqrt(2 * Math.PI);
}
