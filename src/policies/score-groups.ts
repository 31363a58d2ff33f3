// The index node-score picks from without scanning (./node-score.ts): the
// members of one kind view with a free credit, grouped by what their load
// factor depends on (total slots, available credits, trial flag) and by
// whether their static part is measured or the shared prior times a factor.
// Within a group the best member is the one with the lowest key (its static
// part, or its factor for the unmeasured), so a pick compares only each
// group's head: O(groups).
//
// A group keeps its members in buckets of equal key (exact ties: every agent
// without data shares one) on a binary min-heap of buckets, so moving a member
// (a route, a release, a new heartbeat or latency figure) is O(log n) and
// never needs the other members re-ordered. A bucket that empties stays in
// the heap until it reaches the top (or the heap, past twice its live
// buckets, is compacted), and is dropped then: amortised O(log n).
//
// The measured members with no credit are kept the same way in one more group
// (full, never among nonEmpty) by their static part: a hold-back
// (./hold-back.ts) adds up the release rate of the full agents faster than the
// one it would pick, walking them fastest first.

export class Bucket {
  /** Member positions in the view (unordered; a removal swaps the last in). */
  readonly members: number[] = [];
  inHeap = false;
  constructor(readonly key: number) {}
}

export class Group {
  size = 0;
  /** Min-heap of buckets by key. */
  heap: Bucket[] = [];
  readonly byKey = new Map<number, Bucket>();
  constructor(
    readonly total: number,
    readonly avail: number,
    readonly trial: boolean,
    /** Keys are static parts (true) or factors of the unmeasured prior (false). */
    readonly measured: boolean,
  ) {}

  /** The bucket of the lowest key with members (the group is not empty). */
  head(): Bucket {
    const h = this.heap;
    while (h[0]!.members.length === 0) {
      const b = popHeap(h);
      b.inHeap = false;
      this.byKey.delete(b.key);
    }
    return h[0]!;
  }

  add(b: Bucket): void {
    if (b.inHeap) return;
    b.inHeap = true;
    pushHeap(this.heap, b);
    if (this.heap.length > 2 * this.size + 16) this.compact();
  }

  /** Drop the empty buckets and re-heapify. */
  private compact(): void {
    const live: Bucket[] = [];
    for (const b of this.heap) {
      if (b.members.length > 0) live.push(b);
      else {
        b.inHeap = false;
        this.byKey.delete(b.key);
      }
    }
    live.sort((a, b) => a.key - b.key);
    this.heap = live;
  }

  /**
   * Up to `limit` members with the lowest keys (ties in bucket order), best first: a best-first walk of the heap,
   * keys under `below` only. Appends to `out`; returns how many it added.
   */
  best(limit: number, out: number[], below = Infinity): number {
    const h = this.heap;
    const frontier: number[] = h.length > 0 ? [0] : [];
    let added = 0;
    while (added < limit && frontier.length > 0) {
      let at = 0;
      for (let i = 1; i < frontier.length; i++) if (h[frontier[i]!]!.key < h[frontier[at]!]!.key) at = i;
      const j = frontier[at]!;
      if (h[j]!.key >= below) break;
      frontier[at] = frontier[frontier.length - 1]!;
      frontier.pop();
      const m = h[j]!.members;
      for (let i = 0; i < m.length && added < limit; i++, added++) out.push(m[i]!);
      if (2 * j + 1 < h.length) frontier.push(2 * j + 1);
      if (2 * j + 2 < h.length) frontier.push(2 * j + 2);
    }
    return added;
  }
}

/** Per view: the groups, and each member position's place in them. */
export class ScoreGroups {
  /** total → (4·avail + 2·trial + measured) → group. */
  private readonly groups = new Map<number, Map<number, Group>>();
  readonly nonEmpty = new Set<Group>();
  /** Measured members without a credit, keyed by static part (insertFull); not in nonEmpty. */
  readonly full = new Group(0, 0, false, true);
  /** Σ slots of the kind over the view's members (node-score keeps it as totals change). */
  slots = 0;
  /** Members of `full` by their total slots: the smallest total bounds a full member's delay from below. */
  private readonly fullTotals = new Map<number, number>();
  private readonly totalOf: Int32Array;
  readonly where: (Group | undefined)[];
  private readonly bucketOf: (Bucket | undefined)[];
  private readonly at: Int32Array;

  constructor(n: number) {
    this.where = new Array<Group | undefined>(n).fill(undefined);
    this.bucketOf = new Array<Bucket | undefined>(n).fill(undefined);
    this.at = new Int32Array(n);
    this.totalOf = new Int32Array(n);
  }

  insert(pos: number, total: number, avail: number, trial: boolean, measured: boolean, key: number): void {
    let byFlags = this.groups.get(total);
    if (byFlags === undefined) this.groups.set(total, (byFlags = new Map()));
    const gk = 4 * avail + (trial ? 2 : 0) + (measured ? 1 : 0);
    let g = byFlags.get(gk);
    if (g === undefined) byFlags.set(gk, (g = new Group(total, avail, trial, measured)));
    if (g.size === 0) this.nonEmpty.add(g);
    this.put(g, pos, key);
  }

  /** A measured member with no credit and `total` slots, by its static part (`full`). */
  insertFull(pos: number, key: number, total: number): void {
    this.put(this.full, pos, key);
    this.totalOf[pos] = total;
    this.fullTotals.set(total, (this.fullTotals.get(total) ?? 0) + 1);
  }

  /** The fewest slots a member of `full` has (Infinity: none). O(distinct totals). */
  fullMinTotal(): number {
    let m = Infinity;
    for (const [t, n] of this.fullTotals) if (n > 0 && t < m) m = t;
    return m;
  }

  private put(g: Group, pos: number, key: number): void {
    let b = g.byKey.get(key);
    if (b === undefined) g.byKey.set(key, (b = new Bucket(key)));
    this.at[pos] = b.members.length;
    b.members.push(pos);
    this.where[pos] = g;
    this.bucketOf[pos] = b;
    g.size++;
    g.add(b);
  }

  remove(pos: number): void {
    const g = this.where[pos];
    if (g === undefined) return;
    const b = this.bucketOf[pos]!;
    const m = b.members;
    const i = this.at[pos]!;
    const last = m.pop()!;
    if (last !== pos) {
      m[i] = last;
      this.at[last] = i;
    }
    this.where[pos] = undefined;
    this.bucketOf[pos] = undefined;
    if (g === this.full) {
      const t = this.totalOf[pos]!;
      const n = this.fullTotals.get(t)! - 1;
      if (n > 0) this.fullTotals.set(t, n);
      else this.fullTotals.delete(t);
    }
    if (--g.size === 0) this.nonEmpty.delete(g);
  }

  /** Members with a credit (every group's size). */
  count(): number {
    let n = 0;
    for (const g of this.nonEmpty) n += g.size;
    return n;
  }
}

function pushHeap(h: Bucket[], b: Bucket): void {
  let i = h.length;
  h.push(b);
  while (i > 0) {
    const p = (i - 1) >> 1;
    if (h[p]!.key <= b.key) break;
    h[i] = h[p]!;
    i = p;
  }
  h[i] = b;
}

function popHeap(h: Bucket[]): Bucket {
  const top = h[0]!;
  const last = h.pop()!;
  if (h.length === 0) return top;
  let i = 0;
  const n = h.length;
  for (;;) {
    const l = 2 * i + 1;
    if (l >= n) break;
    const r = l + 1;
    const c = r < n && h[r]!.key < h[l]!.key ? r : l;
    if (h[c]!.key >= last.key) break;
    h[i] = h[c]!;
    i = c;
  }
  h[i] = last;
  return top;
}

/**
 * The lowest and highest of a set of values that change one index at a time
 * (the measured latencies: the prior of the unmeasured and the trial cost).
 * Lazy heaps: an entry counts while its index still holds its value.
 */
export class Extremes {
  private readonly value: Float64Array;
  private lo: Entry[] = [];
  private hi: Entry[] = [];
  private live = 0;

  constructor(n: number) {
    this.value = new Float64Array(n).fill(NaN);
  }

  /** Index i now holds v (NaN: nothing). */
  set(i: number, v: number): void {
    const had = !Number.isNaN(this.value[i]!);
    if (had && this.value[i] === v) return;
    this.value[i] = v;
    const has = !Number.isNaN(v);
    this.live += (has ? 1 : 0) - (had ? 1 : 0);
    if (!has) return;
    pushEntry(this.lo, { k: v, i });
    pushEntry(this.hi, { k: -v, i });
    if (this.lo.length > 2 * this.live + 16) {
      this.lo = this.rebuilt(1);
      this.hi = this.rebuilt(-1);
    }
  }

  /** The lowest value held (Infinity: none). */
  min(): number {
    return this.top(this.lo, 1);
  }

  /** The highest value held (-Infinity: none). */
  max(): number {
    return -this.top(this.hi, -1);
  }

  private top(h: Entry[], sign: 1 | -1): number {
    while (h.length > 0 && this.value[h[0]!.i] !== sign * h[0]!.k) popEntry(h);
    return h.length > 0 ? h[0]!.k : Infinity;
  }

  private rebuilt(sign: 1 | -1): Entry[] {
    const out: Entry[] = [];
    for (let i = 0; i < this.value.length; i++)
      if (!Number.isNaN(this.value[i]!)) out.push({ k: sign * this.value[i]!, i });
    return out.sort((a, b) => a.k - b.k);
  }
}

interface Entry {
  readonly k: number;
  readonly i: number;
}

function pushEntry(h: Entry[], e: Entry): void {
  let i = h.length;
  h.push(e);
  while (i > 0) {
    const p = (i - 1) >> 1;
    if (h[p]!.k <= e.k) break;
    h[i] = h[p]!;
    i = p;
  }
  h[i] = e;
}

function popEntry(h: Entry[]): void {
  const last = h.pop()!;
  const n = h.length;
  if (n === 0) return;
  let i = 0;
  for (;;) {
    const l = 2 * i + 1;
    if (l >= n) break;
    const r = l + 1;
    const c = r < n && h[r]!.k < h[l]!.k ? r : l;
    if (h[c]!.k >= last.k) break;
    h[i] = h[c]!;
    i = c;
  }
  h[i] = last;
}
