// A map keyed by numbers that allocates nothing per set or delete: StringMap's
// open addressing (./string-map.ts: linear probing, arrays grown at half full
// and never shrunk, deletes shift the run back) over a Float64Array of keys.
// A V8 Map keyed by doubles boxes each key (a heap number per entry) and makes
// a new table as it grows, shrinks and fills with deleted entries; one churned
// per task in a long-lived object puts its tables straight into the old
// generation (docs/performance.md, "Half of peak: what outlives a scavenge").
//
// Keys compare as a Map's do (SameValueZero: -0 is 0, NaN is NaN). Iteration
// is in slot order (no particular order), and the map must not change while it
// is iterated.

import { fmix32 } from './mix32.js';

const MIN_CAPACITY = 8;

const scratch = new Float64Array(1);
const words = new Int32Array(scratch.buffer);

/** A double's bits folded to 32, then murmur3's finalizer. -0 hashes as 0 (callers normalize first). */
export function numberHash(k: number): number {
  scratch[0] = k;
  return fmix32(words[0]! ^ Math.imul(words[1]!, 0x9e3779b1));
}

/** SameValueZero as Map uses it: -0 is 0, NaN equals NaN. */
const norm = (k: number): number => (k === 0 ? 0 : k);
const same = (a: number, b: number): boolean => a === b || (a !== a && b !== b);

export class NumberMap<V> {
  private keyAt: Float64Array;
  private used: Uint8Array;
  private valueAt: (V | undefined)[];
  private hashAt: Int32Array;
  private mask: number;
  private count = 0;

  constructor(capacity = MIN_CAPACITY) {
    let cap = MIN_CAPACITY;
    while (cap < capacity) cap *= 2;
    this.keyAt = new Float64Array(cap);
    this.used = new Uint8Array(cap);
    this.valueAt = new Array<V | undefined>(cap).fill(undefined);
    this.hashAt = new Int32Array(cap);
    this.mask = cap - 1;
  }

  get size(): number {
    return this.count;
  }

  private find(key: number, h: number): number {
    const { keyAt, used, hashAt, mask } = this;
    for (let i = h & mask; ; i = (i + 1) & mask) {
      if (used[i] === 0) return -1;
      if (hashAt[i] === h && same(keyAt[i]!, key)) return i;
    }
  }

  get(key: number): V | undefined {
    const k = norm(key);
    const i = this.find(k, numberHash(k));
    return i < 0 ? undefined : this.valueAt[i];
  }

  has(key: number): boolean {
    const k = norm(key);
    return this.find(k, numberHash(k)) >= 0;
  }

  set(key: number, value: V): this {
    const k = norm(key);
    const h = numberHash(k);
    const { keyAt, used, hashAt, mask } = this;
    let i = h & mask;
    for (; used[i] !== 0; i = (i + 1) & mask) {
      if (hashAt[i] === h && same(keyAt[i]!, k)) {
        this.valueAt[i] = value;
        return this;
      }
    }
    if ((this.count + 1) * 2 > keyAt.length) {
      this.grow();
      return this.set(k, value);
    }
    keyAt[i] = k;
    used[i] = 1;
    this.valueAt[i] = value;
    hashAt[i] = h;
    this.count++;
    return this;
  }

  delete(key: number): boolean {
    const k0 = norm(key);
    let i = this.find(k0, numberHash(k0));
    if (i < 0) return false;
    const { keyAt, used, valueAt, hashAt, mask } = this;
    // Shift back every entry of the run after i that may sit at i (its home slot is not in (i, j]).
    for (let j = (i + 1) & mask; used[j] !== 0; j = (j + 1) & mask) {
      const home = hashAt[j]! & mask;
      if (i <= j ? i < home && home <= j : i < home || home <= j) continue;
      keyAt[i] = keyAt[j]!;
      valueAt[i] = valueAt[j];
      hashAt[i] = hashAt[j]!;
      i = j;
    }
    used[i] = 0;
    valueAt[i] = undefined;
    this.count--;
    return true;
  }

  /** Empty it (its capacity stays). */
  clear(): void {
    this.used.fill(0);
    this.valueAt.fill(undefined);
    this.count = 0;
  }

  /** Each entry, in slot order (the map must not change meanwhile). */
  forEach(f: (value: V, key: number) => void): void {
    const { keyAt, used, valueAt } = this;
    for (let i = 0; i < used.length; i++) if (used[i] !== 0) f(valueAt[i]!, keyAt[i]!);
  }

  private grow(): void {
    const { keyAt, used, valueAt } = this;
    const cap = keyAt.length * 2;
    this.keyAt = new Float64Array(cap);
    this.used = new Uint8Array(cap);
    this.valueAt = new Array<V | undefined>(cap).fill(undefined);
    this.hashAt = new Int32Array(cap);
    this.mask = cap - 1;
    this.count = 0;
    for (let i = 0; i < used.length; i++) if (used[i] !== 0) this.set(keyAt[i]!, valueAt[i]!);
  }
}
