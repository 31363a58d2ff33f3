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
    expect(new CompletionCurve(busy, 5).at(0)).toBe(20); // 4 x 5/20 = one slot back
    expect(new CompletionCurve(busy, 5).at(1)).toBe(160);
    expect(new CompletionCurve(busy, 20).at(3)).toBe(20);
  });

  it('drains a queue at the release rate past one release per slot', () => {
    const full = { serviceMs: [100], slots: [4], free: [0], queued: 20 };
    const fresh = new CompletionCurve(full, 0).at(0);
    expect(fresh).toBeCloseTo((21 + 4) / 0.04, 9);
    // 500 ms: 20 releases; 16 of them drained the queue to 4, which take the 4 slots freed last:
    // the next task waits for one release.
    expect(new CompletionCurve(full, 500).at(0)).toBeCloseTo((1 + 4) / 0.04, 9);
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
