// A picker's view of one kind (./picker.ts): its members, their credits, and
// what a policy keeps per kind; and the small pure helpers that build one.
import type { ContextRing } from './context.js';
import type { Candidate, KindSlots } from './types.js';

export class KindView {
  /** Σ min(kind credit, pool credit) over members; 0 ⇒ queue without scanning. */
  creditSum = 0;
  /** Round-robin style cursor, free for the policy to use. */
  cursor = 0;
  /** Reusable buffer of member positions for policies that sample. */
  readonly scratch: Int32Array;
  /** Policy-specific per-kind data (e.g. WRR virtual deadlines). */
  ext: unknown = undefined;
  /** Member position by candidate index (-1: not a member), filled when the view is built. */
  posOf: Int32Array | undefined = undefined;
  /** The members on a hash ring, built on the first pick with a context key. */
  ring: ContextRing | undefined = undefined;

  constructor(
    readonly kind: string,
    /** Candidate indices (into the picker's candidate array). */
    readonly members: Int32Array,
    /** Credit overlay per member position; consumed by routes. */
    readonly credits: Float64Array,
    readonly total: Float64Array,
    /** Per member: free slots at its roomiest agent (Infinity: an agent, avail says), less big routes since. */
    readonly block: Float64Array,
  ) {
    this.scratch = new Int32Array(members.length);
  }
}

export function buildView(cands: readonly Candidate[], kind: string): KindView | null {
  const idx: number[] = [];
  for (let i = 0; i < cands.length; i++) {
    const c = cands[i]!;
    const s = c.slots.get(kind);
    // A candidate with zero total slots of a kind cannot ever take it.
    if (!c.draining && s !== undefined && s.total > 0) idx.push(i);
  }
  if (idx.length === 0) return null;
  const n = idx.length;
  const credits = new Float64Array(n);
  const total = new Float64Array(n);
  const block = new Float64Array(n);
  for (let p = 0; p < n; p++) {
    const s = cands[idx[p]!]!.slots.get(kind)!;
    total[p] = s.total;
    block[p] = s.largestFree ?? Infinity;
    credits[p] = wholeCredits(s);
  }
  return new KindView(kind, Int32Array.from(idx), credits, total, block);
}

/** Summaries can be momentarily inconsistent; credits are whole, within [0, total]. */
export function wholeCredits(s: KindSlots): number {
  return Math.max(0, Math.min(Math.floor(s.free), s.total));
}
