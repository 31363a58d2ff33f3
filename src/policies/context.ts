// Context routing: a task may carry a context key (a session, a conversation, a
// dataset, a prompt prefix). Tasks with the same key should land where the last
// one ran, because that agent's caches are warm, the way cache-aware LLM routers
// send a prompt prefix back to the worker holding its KV cache.
//
// The rule is consistent hashing with bounded loads (Mirrokni, Thorup and
// Zadeh): candidates sit on a hash ring (several points each); a key walks the
// ring from its own hash and takes the first candidate that is eligible and whose
// load after this task stays within LOAD_BOUND times the mean, so
// - the same key keeps going to the same candidate while it has room (warm):
//   within the bound, or, while the candidates are less than half busy, with at
//   least 1 - 1/LOAD_BOUND of its slots still free after this task (loads low or
//   stale: no overload to prevent);
// - a hot key overflows to the next candidates on the ring, never piling onto
//   one agent past the bound;
// - when a candidate leaves, only the keys it held move (about 1/N of them),
//   and when one joins it takes about 1/N, so caches elsewhere stay warm.
// "Soft" keys fall back to the policy's own choice when the walk finds no room;
// "hard" keys go only to their holder (the first candidate on the ring that can
// ever take the task) and wait for it.
//
// The bound is LOAD_BOUND unless a cell's policyConfig sets `contextLoadBound`
// (any policy: splitContextConfig, applied in the registry).
//
// Pure and allocation-free per pick: the ring is built once per picker view, on
// the first pick that carries a key, and walked with a stamped visited array.

import { numberKey } from './config.js';
import type { ContextLookup } from './types.js';

/**
 * No candidate's load (active + routed since the snapshot) goes past this times the mean:
 * the default of the `contextLoadBound` key every policy's config accepts (see
 * splitContextConfig).
 */
export const LOAD_BOUND = 1.25;

/** The policy-independent config key of context routing, accepted by every policy. */
export const CONTEXT_BOUND_KEY = 'contextLoadBound';

/**
 * Split a policy's raw config into the context routing bound (any policy's
 * picker applies it, so it is not the policy's own key) and the rest, for the
 * policy's parser. The bound is at least 1 (below it even an even spread breaks
 * it) and at most 10.
 */
export function splitContextConfig(
  policy: string,
  raw: unknown,
): { readonly loadBound: number; readonly rest: unknown } {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw) || !(CONTEXT_BOUND_KEY in raw))
    return { loadBound: LOAD_BOUND, rest: raw };
  const rest: Record<string, unknown> = { ...(raw as Record<string, unknown>) };
  delete rest[CONTEXT_BOUND_KEY];
  const loadBound = numberKey(policy, raw as Record<string, unknown>, CONTEXT_BOUND_KEY, LOAD_BOUND, {
    min: 1,
    max: 10,
  });
  return { loadBound, rest };
}

/** 32-bit FNV-1a of `s` mixed with murmur3's finalizer (FNV alone clusters short keys). */
export function hash32(s: string, seed = 0): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Points per member: enough to spread keys evenly, fewer for huge views so a build stays cheap. */
export function pointsPerMember(members: number): number {
  return Math.max(4, Math.min(64, Math.floor(32_000 / Math.max(1, members))));
}

/** A hash ring over a view's members: sorted points and, for each, the member position it belongs to. */
export class ContextRing {
  readonly points: Uint32Array;
  readonly owner: Int32Array;
  private readonly seen: Int32Array;
  private stamp = 0;

  /** `ids[p]` names member position p; a candidate keeps its ring points whatever else is in the view. */
  constructor(ids: readonly string[]) {
    const per = pointsPerMember(ids.length);
    const pts: Array<[number, number]> = [];
    for (let p = 0; p < ids.length; p++) for (let r = 0; r < per; r++) pts.push([hash32(`${ids[p]}#${r}`), p]);
    pts.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    this.points = Uint32Array.from(pts, (x) => x[0]);
    this.owner = Int32Array.from(pts, (x) => x[1]);
    this.seen = new Int32Array(ids.length);
  }

  /**
   * Member positions in ring order from `key`'s point, each once, until `visit`
   * returns true (that position is returned) or every member was visited (-1).
   */
  walk(key: string, visit: (pos: number) => boolean): number {
    const n = this.points.length;
    if (n === 0) return -1;
    const h = hash32(key);
    let lo = 0;
    let hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.points[mid]! < h) lo = mid + 1;
      else hi = mid;
    }
    if (++this.stamp === 0x7fffffff) {
      this.seen.fill(0);
      this.stamp = 1;
    }
    for (let i = 0; i < n; i++) {
      const pos = this.owner[(lo + i) % n]!;
      if (this.seen[pos] === this.stamp) continue;
      this.seen[pos] = this.stamp;
      if (visit(pos)) return pos;
    }
    return -1;
  }
}

/**
 * The load bound for one more task: floor(bound × (total + 1) / members), at least 1.
 * Floor, not the paper's ceil: with loads of a few tasks a ceil lets one member reach
 * 1.3-1.5x the mean, and low loads are covered by the roomy rule (picker.ts) anyway.
 */
export function loadCap(totalLoad: number, members: number, bound = LOAD_BOUND): number {
  return Math.max(1, Math.floor((bound * (totalLoad + 1)) / Math.max(1, members)));
}

/**
 * Where `key` goes among a kind's view: its first reported holder that `accept`
 * takes, else the first member on `ring` from the key's point that it takes;
 * -1 if none. `indexById` maps a candidate id to its index, `posOf` an index to
 * its position in the view (-1: not of this kind).
 */
export function contextPick(
  lookup: ContextLookup | undefined,
  ring: ContextRing,
  key: string,
  indexById: ReadonlyMap<string, number>,
  posOf: Int32Array,
  accept: (pos: number) => boolean,
): number {
  const ids = lookup?.holders(key);
  if (ids) {
    for (let i = 0; i < ids.length; i++) {
      const idx = indexById.get(ids[i]!);
      const p = idx === undefined ? -1 : posOf[idx]!;
      if (p >= 0 && accept(p)) return p;
    }
  }
  return ring.walk(key, accept);
}
