// The index under node-score (src/policies/score-groups.ts) against a plain
// model: after any sequence of inserts, removals and re-keyings, every group's
// head is its lowest key with all of its members, best() lists the lowest keys
// in order, and Extremes has the set's min and max.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { bestOverall, Extremes, ScoreGroups } from '../../src/policies/score-groups.js';
import { assertProperty } from './arbitraries.js';

const N = 40;
const opArb = fc.record({
  pos: fc.nat(N - 1),
  avail: fc.integer({ min: 0, max: 3 }),
  key: fc.constantFrom(1, 2, 2, 3, 5, 8, 13),
});

type Model = Map<number, { avail: number; key: number }>;

const indexAndModel = (): { ix: ScoreGroups; model: Model } => ({ ix: new ScoreGroups(N), model: new Map() });

/** One op on the index and the model alike: the member out, then in again where it has a credit. */
function apply(ix: ScoreGroups, model: Model, o: { pos: number; avail: number; key: number }): void {
  ix.remove(o.pos);
  model.delete(o.pos);
  if (o.avail > 0) {
    ix.insert(o.pos, 4, o.avail, false, true, o.key);
    model.set(o.pos, { avail: o.avail, key: o.key });
  }
}

describe('ScoreGroups', () => {
  it('keeps each group’s head and best members exact through any moves (emptied buckets out of the heap at once)', () => {
    assertProperty(
      fc.property(fc.array(opArb, { maxLength: 400 }), (ops) => {
        const { ix, model } = indexAndModel();
        for (const o of ops) {
          apply(ix, model, o);
          expect(ix.count()).toBe(model.size);
          for (const g of ix.nonEmpty) {
            const mine = [...model].filter(([, m]) => m.avail === g.avail);
            expect(g.size).toBe(mine.length);
            const low = Math.min(...mine.map(([, m]) => m.key));
            const head = g.head();
            expect(head.key).toBe(low);
            expect([...head.members].sort((a, b) => a - b)).toEqual(
              mine
                .filter(([, m]) => m.key === low)
                .map(([p]) => p)
                .sort((a, b) => a - b),
            );
            const out: number[] = [];
            g.best(5, out);
            const keys = out.map((p) => model.get(p)!.key);
            expect(keys).toEqual(
              mine
                .map(([, m]) => m.key)
                .sort((a, b) => a - b)
                .slice(0, 5),
            );
            // An emptied bucket leaves the heap at once: one bucket per distinct key, each knowing its place.
            expect(g.heap.length).toBe(new Set(mine.map(([, m]) => m.key)).size);
            g.heap.forEach((b, i) => expect(b.hi).toBe(i));
          }
        }
      }),
    );
  });
});

describe('bestOverall', () => {
  it('finds the lowest delays over all groups at once (a delay growing with the key in each group)', () => {
    assertProperty(
      fc.property(fc.array(opArb, { maxLength: 200 }), fc.integer({ min: 1, max: 12 }), (ops, limit) => {
        const { ix, model } = indexAndModel();
        for (const o of ops) apply(ix, model, o);
        // The load factor of node-score's delay: fewer credits, longer.
        const delay = (avail: number, key: number): number => key * (1 + (4 - avail) / 4);
        const out: number[] = [];
        bestOverall(ix.nonEmpty, limit, out, (g, b) => delay(g.avail, b.key));
        expect(new Set(out).size).toBe(out.length);
        const got = out.map((p) => delay(model.get(p)!.avail, model.get(p)!.key)).sort((a, b) => a - b);
        const want = [...model.values()].map((m) => delay(m.avail, m.key)).sort((a, b) => a - b);
        // Every one of the best `limit` delays is there; what else is there ties with the last of them.
        expect(got.slice(0, limit)).toEqual(want.slice(0, limit));
        if (got.length > limit) expect(got[got.length - 1]).toBe(want[limit - 1]);
      }),
    );
  });
});

describe('ScoreGroups.full', () => {
  it('holds the members without a credit apart from the groups, fastest first below a bound', () => {
    assertProperty(
      fc.property(fc.array(opArb, { maxLength: 300 }), fc.constantFrom(2, 5, 13, Infinity), (ops, below) => {
        const ix = new ScoreGroups(N);
        const full = new Map<number, number>();
        const present = new Set<number>();
        for (const o of ops) {
          ix.remove(o.pos);
          full.delete(o.pos);
          if (o.avail > 0) ix.insert(o.pos, 4, o.avail, false, true, o.key);
          else {
            ix.insertFull(o.pos, o.key, 1 + (o.key % 4));
            full.set(o.pos, o.key);
          }
          expect(ix.nonEmpty.includes(ix.full)).toBe(false);
          // Each group with members once, and none without.
          expect(new Set(ix.nonEmpty).size).toBe(ix.nonEmpty.length);
          for (const g of ix.nonEmpty) expect(g.size).toBeGreaterThan(0);
          expect(ix.full.size).toBe(full.size);
          expect(ix.fullMinTotal()).toBe(Math.min(...[...full.values()].map((k) => 1 + (k % 4))));
          present.add(o.pos);
          expect(ix.count()).toBe(present.size - full.size);
          const out: number[] = [];
          ix.full.best(6, out, below);
          expect(out.map((p) => full.get(p)!)).toEqual(
            [...full.values()]
              .filter((k) => k < below)
              .sort((a, b) => a - b)
              .slice(0, 6),
          );
        }
      }),
    );
  });
});

describe('Extremes', () => {
  it('has the min and max of what the indices hold now', () => {
    assertProperty(
      fc.property(
        fc.array(fc.tuple(fc.nat(9), fc.option(fc.integer({ min: 1, max: 50 }), { nil: undefined })), {
          maxLength: 300,
        }),
        (ops) => {
          const x = new Extremes(10);
          const held = new Map<number, number>();
          for (const [i, v] of ops) {
            x.set(i, v ?? NaN);
            if (v === undefined) held.delete(i);
            else held.set(i, v);
            const vs = [...held.values()];
            expect(x.min()).toBe(vs.length ? Math.min(...vs) : Infinity);
            expect(x.max()).toBe(vs.length ? Math.max(...vs) : -Infinity);
          }
        },
      ),
    );
  });
});
