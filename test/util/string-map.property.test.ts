// StringMap (src/util/string-map.ts) answers as a Map would: the same sets, deletes and clears applied
// to both, over few keys (so runs of colliding slots form, grow and shift back on deletes), keep the same
// size, lookups and contents after every step.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { hashOf, StringMap } from '../../src/util/string-map.js';
import { assertProperty } from '../policies/arbitraries.js';
import { mapOpArb, replayAgainstMap } from './map-model.js';

// Keys as the mesh's are (task ids with an attempt), a few dozen of them so the map grows and churns.
const keyArb = fc.integer({ min: 0, max: 40 }).map((n) => `0${n.toString(36)}task#${n % 3}`);
const opArb = mapOpArb(keyArb);

function same(m: StringMap<number>, model: Map<string, number>): void {
  expect(m.size).toBe(model.size);
  for (const [k, v] of model) {
    expect(m.get(k)).toBe(v);
    expect(m.has(k)).toBe(true);
  }
  expect([...m.entries()].sort()).toEqual([...model.entries()].sort());
  expect([...m].sort()).toEqual([...model].sort());
  expect([...m.keys()].sort()).toEqual([...model.keys()].sort());
  expect([...m.values()].sort()).toEqual([...model.values()].sort());
}

describe('StringMap', () => {
  it('answers as a Map after every set, delete and clear', () => {
    assertProperty(
      fc.property(fc.array(opArb, { maxLength: 300 }), fc.integer({ min: 1, max: 64 }), (ops, capacity) => {
        replayAgainstMap(new StringMap<number>(capacity), ops, same);
      }),
    );
  });

  it('keeps an entry at or after its home slot when a delete shifts a run that wraps around the end', () => {
    // A 16-slot table: a and b home at slots 14 and 15, c and d both at 0 (d sits at 1). Deleting a
    // must leave c and d where they are: slot 14 lies before their home, cyclically.
    const at = (slot: number, skip = 0): string => {
      for (let n = 0; ; n++) if ((hashOf(`k${n}`) & 15) === slot && skip-- === 0) return `k${n}`;
    };
    const [a, b, c, d] = [at(14), at(15), at(0), at(0, 1)];
    const m = new StringMap<string>(16);
    for (const k of [a, b, c, d]) m.set(k, k);
    m.delete(a);
    expect([b, c, d].map((k) => m.get(k))).toEqual([b, c, d]);
    m.delete(b);
    expect([c, d].map((k) => m.get(k))).toEqual([c, d]);
    m.delete(c);
    expect(m.get(d)).toBe(d);
    expect(m.size).toBe(1);
  });

  it('finds every key of a long run of one home slot after deletes inside it', () => {
    // Keys whose hashes share the low bits of an 8-slot table: one run that wraps around the end.
    const keys: string[] = [];
    for (let n = 0; keys.length < 3; n++) if ((hashOf(`k${n}`) & 7) === 7) keys.push(`k${n}`);
    const m = new StringMap<string>(8);
    for (const k of keys) m.set(k, k);
    m.delete(keys[0]!);
    expect(keys.slice(1).map((k) => m.get(k))).toEqual(keys.slice(1));
    m.delete(keys[1]!);
    expect(m.get(keys[2]!)).toBe(keys[2]);
    expect(m.size).toBe(1);
  });
});
