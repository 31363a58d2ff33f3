// murmur3's 32-bit finalizer, shared by the maps' hashes (string-map.ts,
// number-map.ts): it spreads every input bit over the low bits a table masks.
// A plain small function: V8 inlines it into each hash, so a get or set pays
// no call for it.

/** murmur3's fmix32: avalanche a 32-bit value (every input bit moves about half the output bits). */
export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}
