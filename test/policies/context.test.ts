// Context routing (src/policies/context.ts): a key returns to its holder while the
// holder has room, overflows past the load bound, and moves only when its holder
// leaves; hard keys wait for their holder. Every policy gets it through BasePicker.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ContextRing, LOAD_BOUND, hash32, loadCap } from '../../src/policies/context.js';
import { validatePolicyConfig } from '../../src/policies/index.js';
import { cand, picker, task } from './helpers.js';

const ids = (n: number): string[] => Array.from({ length: n }, (_, i) => `agent-${i}`);
const owner = (ring: ContextRing, names: string[], key: string): string => names[ring.walk(key, () => true)]!;

describe('the ring', () => {
  it('spreads keys over members about evenly', () => {
    const names = ids(64);
    const ring = new ContextRing(names);
    const count = new Map<string, number>();
    for (let k = 0; k < 64_000; k++) {
      const o = owner(ring, names, `key-${k}`);
      count.set(o, (count.get(o) ?? 0) + 1);
    }
    expect(count.size).toBe(64);
    const max = Math.max(...count.values());
    expect(max / 1000).toBeLessThan(1.6); // the mean is 1000 keys each
  });

  it('moves only the keys of a member that leaves (about 1/N of them)', () => {
    const names = ids(64);
    const before = new ContextRing(names);
    const gone = 'agent-17';
    const rest = names.filter((n) => n !== gone);
    const after = new ContextRing(rest);
    let moved = 0;
    const keys = 20_000;
    for (let k = 0; k < keys; k++) {
      const key = `key-${k}`;
      const a = owner(before, names, key);
      const b = owner(after, rest, key);
      if (a !== b) {
        moved++;
        expect(a, `${key} moved from ${a}, which did not leave`).toBe(gone);
      }
    }
    expect(moved / keys).toBeGreaterThan(0);
    expect(moved / keys).toBeLessThan(2 / 64);
  });

  it('visits every member once, in ring order, from any key', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 40 }), fc.string(), (n, key) => {
        const ring = new ContextRing(ids(n));
        const seen: number[] = [];
        expect(ring.walk(key, (p) => (seen.push(p), false))).toBe(-1);
        expect(new Set(seen).size).toBe(n);
        expect(seen).toHaveLength(n);
      }),
      { seed: 20261206 },
    );
  });

  it('hashes strings to 32 bits, the same every time', () => {
    expect(hash32('session-1')).toBe(hash32('session-1'));
    expect(hash32('session-1')).not.toBe(hash32('session-2'));
    expect(hash32('x')).toBeGreaterThanOrEqual(0);
    expect(hash32('x')).toBeLessThan(2 ** 32);
  });
});

describe('context keys in a picker (any policy)', () => {
  const agents = (n: number, free = 4): ReturnType<typeof cand>[] =>
    ids(n).map((id) => cand(id, { slots: { a: [free, Math.max(4, free)] } }));

  for (const policy of ['node-score', 'random', 'round-robin', 'least-loaded', 'p2c']) {
    it(`${policy}: the same key goes to the same agent while it has room`, () => {
      const p = picker(policy, agents(16));
      const first = p.pick(task('a', { contextKey: 'conversation-9' }));
      expect(first.type).toBe('route');
      const holder = (first as { candidate: string }).candidate;
      p.release(holder, 'a');
      for (let i = 0; i < 20; i++) {
        const r = p.pick(task('a', { contextKey: 'conversation-9' }));
        expect(r).toEqual({ type: 'route', candidate: holder });
        p.release(holder, 'a'); // it finished
      }
    });
  }

  /** The most a member of `slots` slots may hold after a keyed route: the load bound, or 80% of its slots. */
  const allowed = (total: number, n: number, slots: number): number =>
    Math.max(loadCap(total, n), Math.floor(slots / LOAD_BOUND));

  it('a hot key overflows to the next agents without any passing the load bound', () => {
    const p = picker('node-score', agents(8));
    const load = new Map<string, number>();
    for (let i = 0; i < 24; i++) {
      const r = p.pick(task('a', { contextKey: 'hot' }));
      expect(r.type).toBe('route');
      const c = (r as { candidate: string }).candidate;
      load.set(c, (load.get(c) ?? 0) + 1);
      expect(Math.max(...load.values())).toBeLessThanOrEqual(allowed(i, 8, 4));
    }
    expect(load.size).toBeGreaterThan(1);
  });

  it('never routes past the bound while some member has room within it (property)', () => {
    const slots = 10;
    fc.assert(
      fc.property(
        fc.integer({ min: 4, max: 12 }),
        fc.array(fc.integer({ min: 0, max: 5 }), { minLength: 1, maxLength: 40 }),
        (n, keys) => {
          const p = picker('random', agents(n, slots));
          const load = new Array<number>(n).fill(0);
          let total = 0;
          for (const k of keys) {
            const limit = allowed(total, n, slots);
            const r = p.pick(task('a', { contextKey: `k${k}` }));
            expect(r.type).toBe('route');
            const i = Number((r as { candidate: string }).candidate.split('-')[1]);
            // Past the bound only when no member could stay within it (the policy chose).
            if (load[i]! + 1 > limit) expect(load.every((l) => l + 1 > limit)).toBe(true);
            load[i]!++;
            total++;
          }
        },
      ),
      { seed: 20261206 },
    );
  });

  it('contextLoadBound (any policy) tightens the bound a hot key overflows at', () => {
    // 8 agents of 10 slots, each running 5 (half busy: the bound applies), then 16 tasks of
    // one hot key. Mean after them: 7; the default bound lets its holders reach 8, a bound
    // of 1 keeps every agent at the mean.
    const mostLoaded = (config?: unknown): number => {
      const cands = ids(8).map((id) => cand(id, { slots: { a: [5, 10] }, active: 5 }));
      const p = picker('least-loaded', cands, config);
      const load = new Map<string, number>(ids(8).map((id) => [id, 5]));
      for (let i = 0; i < 16; i++) {
        const r = p.pick(task('a', { contextKey: 'hot' }));
        expect(r.type).toBe('route');
        const c = (r as { candidate: string }).candidate;
        load.set(c, load.get(c)! + 1);
      }
      return Math.max(...load.values());
    };
    expect(mostLoaded()).toBe(8);
    expect(mostLoaded({ contextLoadBound: 1 })).toBe(7);
    expect(mostLoaded({ contextLoadBound: 1.25 })).toBe(8);
  });

  it('contextLoadBound is checked like any key: a number from 1 to 10; other unknown keys still fail', () => {
    expect(() => picker('p2c', agents(2), { contextLoadBound: 0.9 })).toThrow(/"contextLoadBound" must be >= 1/);
    expect(() => picker('p2c', agents(2), { contextLoadBound: 'x' })).toThrow(/"contextLoadBound" must be a finite/);
    expect(() => picker('node-score', agents(2), { contextLoadBound: 1.2, bogus: 1 })).toThrow(
      /unknown config key "bogus"/,
    );
    expect(() => validatePolicyConfig('node-score', { contextLoadBound: 1.2, load: 2 })).not.toThrow();
  });

  it('hard: only the holder takes the key; it waits while the holder is full', () => {
    const p = picker('node-score', agents(4, 1));
    const first = p.pick(task('a', { contextKey: 'dataset-3', contextHard: true }));
    expect(first.type).toBe('route');
    const again = p.pick(task('a', { contextKey: 'dataset-3', contextHard: true }));
    expect(again).toEqual({ type: 'queue', reason: "the context key's holder is full" });
    // A soft key overflows instead.
    expect(p.pick(task('a', { contextKey: 'dataset-3' })).type).toBe('route');
    // Nobody matches: spill up, as without a key.
    const none = p.pick(task('a', { contextKey: 'dataset-3', contextHard: true, exclude: ids(4) }));
    expect(none.type).toBe('spillUp');
  });
});
