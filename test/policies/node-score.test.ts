import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  NODE_SCORE_DEFAULTS,
  UNMEASURED_SPEEDUP,
  type Candidate,
  type CandidateInit,
} from '../../src/policies/index.js';
import { assertProperty, candidatesArb } from './arbitraries.js';
import { cand, picker, tally, task } from './helpers.js';

/**
 * Reference: node-score's expected delay of a candidate with `credit` routable
 * credits of a kind (default config), written out from the formula in
 * src/policies/node-score.ts. `trial`: no latency data and no release yet.
 */
function refDelay(cands: readonly Candidate[], c: Candidate, kind: string, credit: number, trial: boolean): number {
  const d = NODE_SCORE_DEFAULTS;
  const clamp = (x: number) => (x < 0 ? 0 : x > 1 ? 1 : x);
  const measured = cands.map((x) => x.latencyEwmaMs).filter((l) => l > 0);
  const prior = measured.length ? Math.min(...measured) * UNMEASURED_SPEEDUP : d.latencyRefMs;
  const trialMs = measured.length ? Math.max(...measured) : d.latencyRefMs;
  const t = c.latencyEwmaMs > 0 ? c.latencyEwmaMs : prior;
  const st =
    (t / Math.max(d.minSuccess, clamp(c.successEwma))) *
    (1 + d.cpu * clamp(c.utilization.cpu) + d.memory * clamp(c.utilization.memory));
  const total = c.slots.get(kind)!.total;
  const busy = total - credit;
  return st * (1 + d.load * (busy / total)) + (trial ? busy * trialMs : 0);
}

/** Credits per candidate and kind and shared pools, with pick and release as the picker defines them. */
class Model {
  readonly kind = new Map<string, number>();
  readonly pool = new Map<string, number>();
  /** Candidates on trial: no latency data, no release yet. */
  readonly trial = new Set<string>();
  constructor(readonly cands: readonly Candidate[]) {
    const whole = (s: { free: number; total: number }) => Math.max(0, Math.min(Math.floor(s.free), s.total));
    for (const c of cands) {
      if (c.sharedSlots) this.pool.set(c.id, whole(c.sharedSlots));
      for (const [k, s] of c.slots) if (!c.draining && s.total > 0) this.kind.set(`${c.id}/${k}`, whole(s));
      if (!(c.latencyEwmaMs > 0)) this.trial.add(c.id);
    }
  }
  credit(c: Candidate, k: string): number {
    return Math.min(this.kind.get(`${c.id}/${k}`) ?? 0, this.pool.get(c.id) ?? Infinity);
  }
  delay(c: Candidate, k: string): number {
    return refDelay(this.cands, c, k, this.credit(c, k), this.trial.has(c.id));
  }
  take(c: Candidate, k: string): void {
    this.kind.set(`${c.id}/${k}`, this.kind.get(`${c.id}/${k}`)! - 1);
    if (this.pool.has(c.id)) this.pool.set(c.id, this.pool.get(c.id)! - 1);
  }
  release(c: Candidate, k: string): void {
    // Any release names the agent as one that answers: it leaves trial.
    this.trial.delete(c.id);
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

  it('an idle slow agent does not beat a fast one with tasks running (issue 11, two speeds)', () => {
    // 20 ms with 3 of 4 slots busy: 20·1.75 = 35 ms expected; 160 ms idle: 160.
    const fast = cand('fast', { slots: { a: [1, 4] }, latencyEwmaMs: 20 });
    const slow = cand('slow', { slots: { a: [4, 4] }, latencyEwmaMs: 160 });
    expect(picker('node-score', [slow, fast]).pick(task())).toEqual({ type: 'route', candidate: 'fast' });
    // The slow one serves only once every fast slot is taken.
    expect(tally(picker('node-score', [slow, fast]), 3)).toEqual({ fast: 1, slow: 2 });
  });

  it('agents of about equal speed share work by their free slots', () => {
    const busy = cand('busy', { slots: { a: [1, 4] }, latencyEwmaMs: 20 });
    const idle = cand('idle', { slots: { a: [4, 4] }, latencyEwmaMs: 25 });
    expect(picker('node-score', [busy, idle]).pick(task())).toEqual({ type: 'route', candidate: 'idle' });
  });

  it('a failing agent counts its retries: success 0.5 doubles its expected time', () => {
    const flaky = cand('flaky', { latencyEwmaMs: 20, successEwma: 0.5 });
    const steady = cand('steady', { latencyEwmaMs: 35 });
    expect(picker('node-score', [flaky, steady]).pick(task())).toEqual({ type: 'route', candidate: 'steady' });
  });

  it('config: load 0 packs the fastest agent; a heavy cpu weight sends work to a cool slower one', () => {
    const fast = cand('fast', { slots: { a: [1, 4] }, latencyEwmaMs: 20, utilization: { cpu: 0.9 } });
    const slower = cand('slower', { slots: { a: [4, 4] }, latencyEwmaMs: 30 });
    expect(picker('node-score', [fast, slower]).pick(task())).toEqual({ type: 'route', candidate: 'slower' });
    expect(picker('node-score', [fast, slower], { load: 0 }).pick(task())).toEqual({
      type: 'route',
      candidate: 'fast',
    });
    expect(picker('node-score', [fast, slower], { load: 0, cpu: 1 }).pick(task())).toEqual({
      type: 'route',
      candidate: 'slower',
    });
  });

  it('an agent with no latency data is not penalised', () => {
    const p = picker('node-score', [cand('new', { latencyEwmaMs: 0 }), cand('slow', { latencyEwmaMs: 50 })]);
    expect(p.pick(task())).toEqual({ type: 'route', candidate: 'new' });
  });

  it('an agent with no latency data is tried one task at a time until it frees a slot', () => {
    // new: assumed 0.9·20 = 18 ms, but with its trial task running it costs 18·1.25 + 20 (the slowest measured).
    const p = picker('node-score', [
      cand('fast', { slots: { a: [2, 4] }, latencyEwmaMs: 20 }),
      cand('new', { slots: { a: [3, 4] } }),
    ]);
    expect(p.pick(task())).toEqual({ type: 'route', candidate: 'fast' });
    // It answered (a slot came back): off trial, 18 ms idle beats fast at 3 of 4 busy.
    p.release('new', 'a');
    expect(p.pick(task())).toEqual({ type: 'route', candidate: 'new' });
  });

  it('rejects bad config', () => {
    expect(() => picker('node-score', [], { gpu: 1 })).toThrow(/unknown config key "gpu"/);
    expect(() => picker('node-score', [], { latencyRefMs: 0 })).toThrow(/latencyRefMs/);
    expect(() => picker('node-score', [], { load: -1 })).toThrow(/"load" must be >= 0/);
    expect(() => picker('node-score', [], { minSuccess: 0 })).toThrow(/minSuccess/);
    // The weights of the former additive score are gone, and say so.
    expect(() => picker('node-score', [], { availability: 0.35 })).toThrow(/unknown config key "availability"/);
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
          const best = Math.min(...eligible.map((c) => m.delay(c, o.kind)));
          const chosen = cands.find((c) => c.id === r.candidate)!;
          expect(m.credit(chosen, o.kind)).toBeGreaterThan(0);
          expect(m.delay(chosen, o.kind)).toBe(best);
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
            const best = Math.min(...eligible.map((c) => m.delay(c, o.kind)));
            const chosen = cands.find((c) => c.id === r.candidate)!;
            expect(m.delay(chosen, o.kind)).toBe(best);
            m.take(chosen, o.kind);
          }
          expect(p.credits('a')).toBe(cands.reduce((n, c) => n + m.credit(c, 'a'), 0));
        },
      ),
      100,
    );
  });

  it('breaks ties uniformly over every tied agent, across slot sizes', () => {
    // 5/10 and 10/20 free: equal load factors, equal everything else (measured, so no trial term).
    const cs = [
      cand('s1', { slots: { a: [5, 10] }, latencyEwmaMs: 40 }),
      cand('s2', { slots: { a: [5, 10] }, latencyEwmaMs: 40 }),
      cand('l1', { slots: { a: [10, 20] }, latencyEwmaMs: 40 }),
      cand('l2', { slots: { a: [10, 20] }, latencyEwmaMs: 40 }),
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

  it('5,000 agents of one speed: picks spread over the agents with the most free slots, credits exact', () => {
    const cs = Array.from({ length: 5000 }, (_, i) => cand(`g${i}`, { slots: { a: [4, 4] }, latencyEwmaMs: 50 }));
    const p = picker('node-score', cs);
    const seen = new Set<string>();
    for (let i = 0; i < 5000; i++) {
      const r = p.pick(task());
      expect(r.type).toBe('route');
      if (r.type === 'route') seen.add(r.candidate);
    }
    // Equal speeds: the load factor decides, so every agent took one before any took a second.
    expect(seen.size).toBe(5000);
    expect(p.credits('a')).toBe(15_000);
  });

  it('5,000 agents of two speeds: the fast half fills before the slow half gets a task', () => {
    // 20 ms agents stay ahead of idle 160 ms ones through all 4 slots (20·1.75 < 160).
    const cs = Array.from({ length: 5000 }, (_, i) =>
      cand(`g${i}`, { slots: { a: [4, 4] }, latencyEwmaMs: i % 2 ? 160 : 20 }),
    );
    const p = picker('node-score', cs);
    const got = tally(p, 10_000);
    expect(Object.keys(got).every((id) => Number(id.slice(1)) % 2 === 0)).toBe(true);
    expect(p.pick(task())).toMatchObject({ type: 'route' });
    expect(p.credits('a')).toBe(9_999);
  });
});
