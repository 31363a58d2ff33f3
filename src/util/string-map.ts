// A map keyed by strings that allocates nothing per set or delete: open
// addressing with linear probing over arrays made once, grown when half full
// and never shrunk; a delete shifts the entries after it back (no tombstones).
//
// Why not a Map: a V8 Map makes a new table when it grows, when it shrinks to
// a quarter full (at one entry in flight: each time it empties) and when its
// deleted entries fill it, and a Map that lives long has its new tables made
// in the old generation, where each is garbage at the next. A map churned per
// task (a cell's routes, a queue's ids) so put a table every few tasks straight
// into the old generation of every cell, and the old generation filled with
// them between mark-compacts (docs/performance.md, "Half of peak: what outlives a
// scavenge").
//
// Iteration is in slot order (no particular order), and the map must not
// change while it is iterated: callers collect first, then act.

import { fmix32 } from './mix32.js';

/** The least capacity (slots); always a power of two. */
const MIN_CAPACITY = 8;

export class StringMap<V> {
  private keyAt: (string | undefined)[];
  private valueAt: (V | undefined)[];
  /** Each occupied slot's full hash: compared before the strings, and the home slot when entries shift. */
  private hashAt: Int32Array;
  private mask: number;
  private count = 0;

  constructor(capacity = MIN_CAPACITY) {
    let cap = MIN_CAPACITY;
    while (cap < capacity) cap *= 2;
    this.keyAt = new Array<string | undefined>(cap).fill(undefined);
    this.valueAt = new Array<V | undefined>(cap).fill(undefined);
    this.hashAt = new Int32Array(cap);
    this.mask = cap - 1;
  }

  get size(): number {
    return this.count;
  }

  /** The slot holding `key`, or -1. */
  private find(key: string, h: number): number {
    const { keyAt, hashAt, mask } = this;
    for (let i = h & mask; ; i = (i + 1) & mask) {
      const k = keyAt[i];
      if (k === undefined) return -1;
      if (hashAt[i] === h && k === key) return i;
    }
  }

  get(key: string): V | undefined {
    const i = this.find(key, hashOf(key));
    return i < 0 ? undefined : this.valueAt[i];
  }

  has(key: string): boolean {
    return this.find(key, hashOf(key)) >= 0;
  }

  set(key: string, value: V): this {
    this.put(key, value);
    return this;
  }

  /** set() without its subclass's overrides: grow() re-inserts with it (SlotMap counts its sets). */
  private put(key: string, value: V): void {
    const h = hashOf(key);
    const { keyAt, hashAt, mask } = this;
    let i = h & mask;
    for (; ; i = (i + 1) & mask) {
      const k = keyAt[i];
      if (k === undefined) break;
      if (hashAt[i] === h && k === key) {
        this.valueAt[i] = value;
        return;
      }
    }
    if ((this.count + 1) * 2 > keyAt.length) {
      this.grow();
      this.put(key, value);
      return;
    }
    keyAt[i] = key;
    this.valueAt[i] = value;
    hashAt[i] = h;
    this.count++;
  }

  delete(key: string): boolean {
    let i = this.find(key, hashOf(key));
    if (i < 0) return false;
    const { keyAt, valueAt, hashAt, mask } = this;
    // Shift back every entry of the run after i that may sit at i (its home slot is not in (i, j]).
    for (let j = (i + 1) & mask; ; j = (j + 1) & mask) {
      const k = keyAt[j];
      if (k === undefined) break;
      const home = hashAt[j]! & mask;
      if (i <= j ? i < home && home <= j : i < home || home <= j) continue;
      keyAt[i] = k;
      valueAt[i] = valueAt[j];
      hashAt[i] = hashAt[j]!;
      i = j;
    }
    keyAt[i] = undefined;
    valueAt[i] = undefined;
    this.count--;
    return true;
  }

  /** Empty it (its capacity stays). */
  clear(): void {
    this.keyAt.fill(undefined);
    this.valueAt.fill(undefined);
    this.count = 0;
  }

  [Symbol.iterator](): IterableIterator<[string, V]> {
    return this.entries();
  }

  *keys(): IterableIterator<string> {
    const { keyAt } = this;
    for (let i = 0; i < keyAt.length; i++) if (keyAt[i] !== undefined) yield keyAt[i]!;
  }

  *values(): IterableIterator<V> {
    const { keyAt, valueAt } = this;
    for (let i = 0; i < keyAt.length; i++) if (keyAt[i] !== undefined) yield valueAt[i]!;
  }

  *entries(): IterableIterator<[string, V]> {
    const { keyAt, valueAt } = this;
    for (let i = 0; i < keyAt.length; i++) if (keyAt[i] !== undefined) yield [keyAt[i]!, valueAt[i]!];
  }

  private grow(): void {
    const keys = this.keyAt;
    const values = this.valueAt;
    const cap = keys.length * 2;
    this.keyAt = new Array<string | undefined>(cap).fill(undefined);
    this.valueAt = new Array<V | undefined>(cap).fill(undefined);
    this.hashAt = new Int32Array(cap);
    this.mask = cap - 1;
    this.count = 0;
    for (let i = 0; i < keys.length; i++) if (keys[i] !== undefined) this.put(keys[i]!, values[i]!);
  }
}

/** FNV-1a over the UTF-16 code units, then murmur3's finalizer to spread it over the low bits. */
export function hashOf(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return fmix32(h);
}
