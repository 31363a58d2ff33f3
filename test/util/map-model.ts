// The model check NumberMap's and StringMap's property tests share: a run of sets, deletes and clears
// applied to the map under test and to a Map, with `same` comparing the two after every step.
import fc from 'fast-check';
import { expect } from 'vitest';

export type MapOp<K> = { op: 'set'; key: K; value: number } | { op: 'delete'; key: K } | { op: 'clear' };

/** Mostly sets and deletes over `keyArb`'s few keys (so runs of colliding slots form and shift), a clear now and then. */
export const mapOpArb = <K>(keyArb: fc.Arbitrary<K>): fc.Arbitrary<MapOp<K>> =>
  fc.oneof(
    { weight: 6, arbitrary: fc.record({ op: fc.constant('set' as const), key: keyArb, value: fc.integer() }) },
    { weight: 5, arbitrary: fc.record({ op: fc.constant('delete' as const), key: keyArb }) },
    { weight: 1, arbitrary: fc.constant({ op: 'clear' as const }) },
  );

interface MapLike<K> {
  set(key: K, value: number): unknown;
  delete(key: K): boolean;
  has(key: K): boolean;
  get(key: K): number | undefined;
  clear(): void;
}

/** Applies `ops` to `m` and to a Map; after each, a deleted key is gone and `same(m, model)` holds. */
export function replayAgainstMap<K, M extends MapLike<K>>(
  m: M,
  ops: readonly MapOp<K>[],
  same: (m: M, model: Map<K, number>) => void,
): void {
  const model = new Map<K, number>();
  for (const o of ops) {
    if (o.op === 'set') {
      m.set(o.key, o.value);
      model.set(o.key, o.value);
    } else if (o.op === 'delete') {
      expect(m.delete(o.key)).toBe(model.delete(o.key));
      expect(m.has(o.key)).toBe(false);
      expect(m.get(o.key)).toBeUndefined();
    } else {
      m.clear();
      model.clear();
    }
    same(m, model);
  }
}
