// The pure permit table and GCRA (src/flow): table tests, and fast-check
// properties that no sequence of operations ever grants a key more than its
// limit, and that GCRA never lets more than burst + elapsed/T units through.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { gcra, type RateRule } from '../../src/flow/gcra.js';
import { PermitTable } from '../../src/flow/permits.js';

/** Seed of every property here; FC_SEED=<n> replays another. Printed on failure. */
const SEED = process.env['FC_SEED'] !== undefined ? Number(process.env['FC_SEED']) : 20261206;

function check<Ts>(prop: fc.IProperty<Ts>, numRuns = 300): void {
  try {
    fc.assert(prop, { seed: SEED, numRuns });
  } catch (e) {
    console.error(`property failed; replay with FC_SEED=${SEED}`);
    throw e;
  }
}

describe('PermitTable', () => {
  it('grants up to the limit, refuses past it, and a release makes room', () => {
    const t = new PermitTable();
    expect(t.acquire('k', 'a#1', 2)).toBe(true);
    expect(t.acquire('k', 'b#1', 2)).toBe(true);
    expect(t.acquire('k', 'c#1', 2)).toBe(false);
    expect(t.held('k')).toBe(2);
    expect(t.acquire('other', 'c#1', 2)).toBe(true);
    expect(t.release('a#1')).toBe('k');
    expect(t.release('a#1')).toBeUndefined();
    expect(t.acquire('k', 'd#1', 2)).toBe(true);
    expect(t.total).toBe(3);
  });

  it('a lingering permit still counts until it is released; due() names it once its time came', () => {
    const t = new PermitTable();
    t.acquire('k', 'a#1', 1);
    expect(t.linger('a#1', 500)).toBe('k');
    expect(t.isLingering('a#1')).toBe(true);
    expect(t.acquire('k', 'a#2', 1)).toBe(false);
    expect(t.due(499)).toEqual([]);
    expect(t.due(500)).toEqual(['a#1']);
    t.release('a#1');
    expect(t.acquire('k', 'a#2', 1)).toBe(true);
    expect(t.due(10_000)).toEqual([]);
  });

  it('entries() and load() round-trip every permit, lingering ones included', () => {
    const t = new PermitTable();
    t.acquire('k', 'a#1', 5);
    t.acquire('k', 'b#2', 5);
    t.acquire('j', 'c#1', 5);
    t.linger('b#2', 77);
    const u = new PermitTable();
    u.load(t.entries());
    expect(u.entries()).toEqual(t.entries());
    expect(u.due(77)).toEqual(['b#2']);
    expect(u.counts()).toEqual(
      new Map([
        ['k', 2],
        ['j', 1],
      ]),
    );
  });

  type Op =
    | { op: 'acquire'; key: number; task: number; limit: number }
    | { op: 'linger'; task: number; until: number }
    | { op: 'release'; task: number }
    | { op: 'sweep'; now: number };
  const opArb: fc.Arbitrary<Op> = fc.oneof(
    fc.record({
      op: fc.constant('acquire' as const),
      key: fc.nat(2),
      task: fc.nat(12),
      limit: fc.integer({ min: 1, max: 4 }),
    }),
    fc.record({ op: fc.constant('linger' as const), task: fc.nat(12), until: fc.nat(100) }),
    fc.record({ op: fc.constant('release' as const), task: fc.nat(12) }),
    fc.record({ op: fc.constant('sweep' as const), now: fc.nat(100) }),
  );

  it('property: no sequence of operations holds more permits of a key than the limit it was acquired under', () => {
    check(
      fc.property(fc.array(opArb, { maxLength: 80 }), (ops) => {
        const t = new PermitTable();
        // The model: ref -> key.
        const model = new Map<string, string>();
        for (const o of ops) {
          if (o.op === 'acquire') {
            const key = `k${o.key}`;
            const ref = `t${o.task}#1`;
            const before = t.held(key);
            const ok = t.acquire(key, ref, o.limit);
            if (model.has(ref)) expect(ok).toBe(true);
            else {
              expect(ok).toBe(before < o.limit);
              if (ok) model.set(ref, key);
            }
            // Never more than the limit of the acquire that just ran, unless it granted nothing new.
            if (ok && before < o.limit) expect(t.held(key)).toBeLessThanOrEqual(o.limit);
          } else if (o.op === 'linger') {
            const ref = `t${o.task}#1`;
            expect(t.linger(ref, o.until + 1)).toBe(model.get(ref));
          } else if (o.op === 'release') {
            const ref = `t${o.task}#1`;
            expect(t.release(ref)).toBe(model.get(ref));
            model.delete(ref);
          } else {
            for (const ref of t.due(o.now)) {
              t.release(ref);
              model.delete(ref);
            }
          }
          const counts = new Map<string, number>();
          for (const k of model.values()) counts.set(k, (counts.get(k) ?? 0) + 1);
          expect(t.counts()).toEqual(counts);
          expect(t.total).toBe(model.size);
        }
      }),
    );
  });

  it('property: with one limit per key, held never passes it whatever the interleaving', () => {
    check(
      fc.property(
        fc.array(opArb, { maxLength: 120 }),
        fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 3, maxLength: 3 }),
        (ops, limits) => {
          const t = new PermitTable();
          for (const o of ops) {
            if (o.op === 'acquire') t.acquire(`k${o.key}`, `t${o.task}#1`, limits[o.key]!);
            else if (o.op === 'linger') t.linger(`t${o.task}#1`, o.until + 1);
            else if (o.op === 'release') t.release(`t${o.task}#1`);
            else for (const ref of t.due(o.now)) t.release(ref);
            for (let k = 0; k < 3; k++) expect(t.held(`k${k}`)).toBeLessThanOrEqual(limits[k]!);
          }
        },
      ),
    );
  });
});

describe('gcra', () => {
  const rule: RateRule = { units: 10, periodMs: 1000, burst: 3 }; // one unit per 100 ms, 3 at once

  it('lets a burst through from idle, then one unit per emission interval', () => {
    let tat = 0;
    const at = (now: number, n = 1) => {
      const a = gcra(tat, now, n, rule);
      if (a.ok) tat = a.tat;
      return a;
    };
    expect(at(1000).ok).toBe(true);
    expect(at(1000).ok).toBe(true);
    expect(at(1000).ok).toBe(true);
    expect(at(1000)).toEqual({ ok: false, retryAtMs: 1100 });
    expect(at(1099).ok).toBe(false);
    expect(at(1100).ok).toBe(true);
    expect(at(1100).ok).toBe(false);
    // Idle long enough: the full burst again, never more.
    expect(at(5000, 3).ok).toBe(true);
    expect(at(5000).ok).toBe(false);
  });

  it('answers a request over the burst with a time, so callers refuse it up front', () => {
    expect(gcra(0, 1000, 4, rule).ok).toBe(false);
  });

  it('property: in every window of any run of requests on an injected clock, units granted ≤ burst + window / T', () => {
    check(
      fc.property(
        fc.record({
          units: fc.integer({ min: 1, max: 50 }),
          periodMs: fc.integer({ min: 1, max: 5000 }),
          burst: fc.integer({ min: 1, max: 10 }),
        }),
        fc.array(fc.record({ dt: fc.nat(300), n: fc.integer({ min: 1, max: 3 }) }), { maxLength: 100 }),
        (r, reqs) => {
          let tat = 0;
          let now = 1_000_000;
          const t = r.periodMs / r.units;
          const grants: { at: number; n: number }[] = [];
          for (const q of reqs) {
            now += q.dt;
            const a = gcra(tat, now, q.n, r);
            if (a.ok) {
              tat = a.tat;
              grants.push({ at: now, n: q.n });
            } else expect(a.retryAtMs).toBeGreaterThan(now);
          }
          // Every window [grants[i].at, grants[j].at]: what started in it fits the burst plus its length's worth.
          for (let i = 0; i < grants.length; i++) {
            let sum = 0;
            for (let j = i; j < grants.length; j++) {
              sum += grants[j]!.n;
              expect(sum).toBeLessThanOrEqual(r.burst + (grants[j]!.at - grants[i]!.at) / t + 1e-6);
            }
          }
        },
      ),
    );
  });
});
