// NumberMap (src/util/number-map.ts) answers as a Map would: the same sets, deletes and clears applied to
// both, over few keys (so runs of colliding slots form, grow and shift back on deletes), keep the same
// size, lookups and contents after every step; keys compare as a Map's do (-0 is 0, NaN is NaN).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { numberHash, NumberMap } from '../../src/util/number-map.js';
import { assertProperty } from '../policies/arbitraries.js';
import { mapOpArb, replayAgainstMap } from './map-model.js';

// Keys as node-score's groups have them (static parts and factors: fractions, a few integers), plus the
// values a Map treats specially; a few dozen so the map grows and churns.
const keyArb = fc.oneof(
  fc.integer({ min: 0, max: 30 }).map((n) => n / 7),
  fc.integer({ min: -3, max: 10 }),
  fc.constantFrom(0, -0, Number.NaN, Infinity, -Infinity, 1e-300, 2 ** 53),
);
const opArb = mapOpArb(keyArb);

const sorted = (xs: [number, number][]): [number, number][] =>
  [...xs].sort((a, b) => String(a[0]).localeCompare(String(b[0])));

function same(m: NumberMap<number>, model: Map<number, number>): void {
  expect(m.size).toBe(model.size);
  for (const [k, v] of model) {
    expect(m.get(k)).toBe(v);
    expect(m.has(k)).toBe(true);
  }
  const got: [number, number][] = [];
  m.forEach((v, k) => got.push([k, v]));
  expect(sorted(got)).toEqual(sorted([...model]));
}

describe('NumberMap', () => {
  it('answers as a Map after every set, delete and clear', () => {
    assertProperty(
      fc.property(fc.array(opArb, { maxLength: 300 }), fc.integer({ min: 1, max: 64 }), (ops, capacity) => {
        replayAgainstMap(new NumberMap<number>(capacity), ops, same);
      }),
    );
  });

  it('keeps the keys of a run that wraps around the end after a delete inside it', () => {
    // Keys whose hashes share the low bits of an 8-slot table: one run that wraps from slot 7.
    const keys: number[] = [];
    for (let n = 1; keys.length < 3; n++) if ((numberHash(n / 3) & 7) === 7) keys.push(n / 3);
    const m = new NumberMap<number>(8);
    for (const k of keys) m.set(k, k);
    m.delete(keys[0]!);
    expect(keys.slice(1).map((k) => m.get(k))).toEqual(keys.slice(1));
    m.delete(keys[1]!);
    expect(m.get(keys[2]!)).toBe(keys[2]);
    expect(m.size).toBe(1);
  });
});
