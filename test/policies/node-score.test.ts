import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { NODE_SCORE_DEFAULT_WEIGHTS, type Candidate, type CandidateInit } from '../../src/policies/index.js';
import { assertProperty, candidatesArb } from './arbitraries.js';
import { cand, picker, task } from './helpers.js';

/** Reference: the node-score of a candidate with `credit` routable credits of a kind (default weights). */
function refScore(c: Candidate, kind: string, credit: number): number {
  const w = NODE_SCORE_DEFAULT_WEIGHTS;
  const clamp = (x: number) => (x < 0 ? 0 : x > 1 ? 1 : x);
  const stat =
    w.success * clamp(c.successEwma) +
    w.speed * (100 / (100 + Math.max(0, c.latencyEwmaMs))) +
    w.cpu * (1 - clamp(c.utilization.cpu)) +
    w.memory * (1 - clamp(c.utilization.memory));
  return -(w.availability * (credit / c.slots.get(kind)!.total) + stat);
}

/** Credits per candidate and kind and shared pools, with pick and release as the picker defines them. */
class Model {
  readonly kind = new Map<string, number>();
  readonly pool = new Map<string, number>();
  constructor(readonly cands: readonly Candidate[]) {
    const whole = (s: { free: number; total: number }) => Math.max(0, Math.min(Math.floor(s.free), s.total));
    for (const c of cands) {
      if (c.sharedSlots) this.pool.set(c.id, whole(c.sharedSlots));
      for (const [k, s] of c.slots) if (!c.draining && s.total > 0) this.kind.set(`${c.id}/${k}`, whole(s));
    }
  }
  credit(c: Candidate, k: string): number {
    return Math.min(this.kind.get(`${c.id}/${k}`) ?? 0, this.pool.get(c.id) ?? Infinity);
  }
  take(c: Candidate, k: string): void {
    this.kind.set(`${c.id}/${k}`, this.kind.get(`${c.id}/${k}`)! - 1);
    if (this.pool.has(c.id)) this.pool.set(c.id, this.pool.get(c.id)! - 1);
  }
  release(c: Candidate, k: string): void {
    const cur = this.kind.get(`${c.id}/${k}`);
    if (cur === undefined) return;
    if (this.pool.has(c.id) && this.pool.get(c.id)! >= c.sharedSlots!.total) return;
    if (cur >= c.slots.get(k)!.total) return;
    this.kind.set(`${c.id}/${k}`, cur + 1);
    if (this.pool.has(c.id)) this.pool.set(c.id, this.pool.get(c.id)! + 1);
  }
}

// Two agents equal in everything but one attribute; the better one must win.
const cases: Array<[string, Partial<CandidateInit>, Partial<CandidateInit>]> = [
  ['availability', { slots: { a: [9, 10] } }, { slots: { a: [1, 10] } }],
  ['success rate', { successEwma: 0.99 }, { successEwma: 0.5 }],
  ['speed', { latencyEwmaMs: 10 }, { latencyEwmaMs: 500 }],
  ['cpu', { utilization: { cpu: 0.1 } }, { utilization: { cpu: 0.9 } }],
  ['memory', { utilization: { memory: 0.1 } }, { utilization: { memory: 0.9 } }],
];

describe('node-score', () => {
  it.each(cases)('prefers better %s', (_name, better, worse) => {
    // Both orders, so neither position nor tie-break can pass the test.
    expect(picker('node-score', [cand('good', better), cand('bad', worse)]).pick(task())).toEqual({
      type: 'route',
      candidate: 'good',
    });
    expect(picker('node-score', [cand('bad', worse), cand('good', better)]).pick(task())).toEqual({
      type: 'route',
      candidate: 'good',
    });
  });

  it('weights are configurable: cpu-only scoring ignores availability', () => {
    const roomyHot = cand('roomyHot', { slots: { a: [10, 10] }, utilization: { cpu: 0.9 } });
    const fullCool = cand('fullCool', { slots: { a: [1, 10] }, utilization: { cpu: 0.1 } });
    const cfg = { availability: 0, success: 0, speed: 0, cpu: 1, memory: 0 };
    expect(picker('node-score', [roomyHot, fullCool], cfg).pick(task())).toEqual({
      type: 'route',
      candidate: 'fullCool',
    });
    expect(picker('node-score', [roomyHot, fullCool]).pick(task())).toEqual({ type: 'route', candidate: 'roomyHot' });
  });

  it('an agent with no latency data is not penalised', () => {
    const p = picker('node-score', [cand('new', { latencyEwmaMs: 0 }), cand('slow', { latencyEwmaMs: 50 })]);
    expect(p.pick(task())).toEqual({ type: 'route', candidate: 'new' });
  });

  it('rejects bad config', () => {
    expect(() => picker('node-score', [], { gpu: 1 })).toThrow(/unknown config key "gpu"/);
    expect(() => picker('node-score', [], { latencyRefMs: 0 })).toThrow(/latencyRefMs/);
    expect(() => picker('node-score', [], { availability: 0, success: 0, speed: 0, cpu: 0, memory: 0 })).toThrow(
      /not all be zero/,
    );
  });

  it('the indexed pick always takes a best-scoring eligible agent, through picks and releases (shared slots too)', () => {
    const op = fc.record({ release: fc.boolean(), kind: fc.constantFrom('a', 'b', 'c'), who: fc.nat(7) });
    assertProperty(
      fc.property(candidatesArb, fc.array(op, { minLength: 1, maxLength: 60 }), fc.integer(), (cands, ops, seed) => {
        const p = picker('node-score', cands, undefined, seed);
        const m = new Model(cands);
        for (const o of ops) {
          if (o.release) {
            const c = cands[o.who % Math.max(1, cands.length)];
            if (!c) continue;
            p.release(c.id, o.kind);
            m.release(c, o.kind);
            continue;
          }
          const r = p.pick(task(o.kind));
          const eligible = cands.filter((c) => m.credit(c, o.kind) > 0);
          expect(r.type === 'route').toBe(eligible.length > 0);
          if (r.type !== 'route') continue;
          const best = Math.min(...eligible.map((c) => refScore(c, o.kind, m.credit(c, o.kind))));
          const chosen = cands.find((c) => c.id === r.candidate)!;
          expect(m.credit(chosen, o.kind)).toBeGreaterThan(0);
          expect(refScore(chosen, o.kind, m.credit(chosen, o.kind))).toBe(best);
          m.take(chosen, o.kind);
          expect(p.credits(o.kind)).toBe(cands.reduce((n, c) => n + m.credit(c, o.kind), 0));
        }
      }),
    );
  });

  it('the same with many agents (multi-word sets, long runs of equal scores)', () => {
    const agent = fc.record({
      total: fc.constantFrom(1, 2, 4),
      free: fc.nat(4),
      lat: fc.constantFrom(0, 10, 50),
      two: fc.boolean(),
    });
    const op = fc.record({ release: fc.nat(3).map((x) => x === 0), kind: fc.constantFrom('a', 'b'), who: fc.nat(199) });
    assertProperty(
      fc.property(
        fc.array(agent, { minLength: 33, maxLength: 200 }),
        fc.array(op, { minLength: 1, maxLength: 300 }),
        fc.integer(),
        (as, ops, seed) => {
          const cands = as.map((x, i) =>
            x.two
              ? cand(`m${i}`, {
                  slots: { a: [x.free, x.total], b: [x.free, x.total] },
                  sharedSlots: [x.free, x.total],
                  latencyEwmaMs: x.lat,
                })
              : cand(`m${i}`, { slots: { a: [x.free, x.total] }, latencyEwmaMs: x.lat }),
          );
          const p = picker('node-score', cands, undefined, seed);
          const m = new Model(cands);
          for (const o of ops) {
            if (o.release) {
              const c = cands[o.who % cands.length]!;
              p.release(c.id, o.kind);
              m.release(c, o.kind);
              continue;
            }
            const r = p.pick(task(o.kind));
            const eligible = cands.filter((c) => m.credit(c, o.kind) > 0);
            expect(r.type === 'route').toBe(eligible.length > 0);
            if (r.type !== 'route') continue;
            const best = Math.min(...eligible.map((c) => refScore(c, o.kind, m.credit(c, o.kind))));
            const chosen = cands.find((c) => c.id === r.candidate)!;
            expect(refScore(chosen, o.kind, m.credit(chosen, o.kind))).toBe(best);
            m.take(chosen, o.kind);
          }
          expect(p.credits('a')).toBe(cands.reduce((n, c) => n + m.credit(c, 'a'), 0));
        },
      ),
      100,
    );
  });

  it('breaks ties uniformly over every tied agent, across slot sizes', () => {
    // 5/10 and 10/20 free: equal availability terms, equal everything else.
    const cs = [
      cand('s1', { slots: { a: [5, 10] } }),
      cand('s2', { slots: { a: [5, 10] } }),
      cand('l1', { slots: { a: [10, 20] } }),
      cand('l2', { slots: { a: [10, 20] } }),
    ];
    const counts: Record<string, number> = {};
    for (let seed = 1; seed <= 2000; seed++) {
      const r = picker('node-score', cs, undefined, seed).pick(task());
      if (r.type === 'route') counts[r.candidate] = (counts[r.candidate] ?? 0) + 1;
    }
    for (const id of ['s1', 's2', 'l1', 'l2']) expect(counts[id]).toBeGreaterThan(400);
    // 100 equal agents (a run over several bitset words): each is the first pick about 1% of the time.
    const many = Array.from({ length: 100 }, (_, i) => cand(`e${i}`));
    const hits = new Map<string, number>();
    for (let seed = 1; seed <= 5000; seed++) {
      const r = picker('node-score', many, undefined, seed).pick(task());
      if (r.type === 'route') hits.set(r.candidate, (hits.get(r.candidate) ?? 0) + 1);
    }
    expect(hits.size).toBe(100);
    for (const n of hits.values()) expect(n).toBeGreaterThan(15);
  });

  it('5,000 agents: picks spread over the agents with the most free slots, credits exact', () => {
    const cs = Array.from({ length: 5000 }, (_, i) => cand(`g${i}`, { slots: { a: [4, 4] }, latencyEwmaMs: i % 7 }));
    const p = picker('node-score', cs);
    const seen = new Set<string>();
    for (let i = 0; i < 5000; i++) {
      const r = p.pick(task());
      expect(r.type).toBe('route');
      if (r.type === 'route') seen.add(r.candidate);
    }
    // The availability term dominates: every agent took one before any took a second.
    expect(seen.size).toBe(5000);
    expect(p.credits('a')).toBe(15_000);
  });
});
