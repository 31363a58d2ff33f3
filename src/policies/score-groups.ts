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
// never needs the other members re-ordered. A bucket knows its place in the
// heap: one that empties leaves the heap at once and is kept for the next new
// key, so a move allocates nothing. At 20,000 agents nearly every load and
// result gives its agent a key of its own; a new bucket per move (and the
// emptied ones left in the heap until compacted) outlived the next scavenge
// and was promoted (docs/performance.md, Scale).
//
// The measured members with no credit are kept the same way in one more group
// (full, never among nonEmpty) by their static part: a hold-back
// (./hold-back.ts) adds up the release rate of the full agents faster than the
// one it would pick, walking them fastest first.

import { NumberMap } from '../util/number-map.js';

export class Bucket {
  /** Member positions in the view (unordered; a removal swaps the last in). */
  readonly members: number[] = [];
  /** Its index in its group's heap while it has members; -1 while kept spare. */
  hi = -1;
  constructor(
    public key: number,
    /** The group whose heap (or spare list) holds it: a member's group is read through its bucket. */
    readonly group: Group,
  ) {}
}

export class Group {
  size = 0;
  /** Min-heap of the buckets with members, by key. */
  readonly heap: Bucket[] = [];
  /** Its buckets by key: a NumberMap, since keys come and go per pick and release (no table per move). */
  readonly byKey = new NumberMap<Bucket>();
  /** Emptied buckets, for the next new key. */
  private readonly spare: Bucket[] = [];
  constructor(
    readonly total: number,
    readonly avail: number,
    readonly trial: boolean,
    /** Keys are static parts (true) or factors of the unmeasured prior (false). */
    readonly measured: boolean,
  ) {}

  /** The bucket of the lowest key (the group is not empty). */
  head(): Bucket {
    return this.heap[0]!;
  }

  /** The bucket of `key`, in the heap (a spare one reused, or a new one). */
  bucket(key: number): Bucket {
    let b = this.byKey.get(key);
    if (b !== undefined) return b;
    b = this.spare.pop();
    if (b === undefined) b = new Bucket(key, this);
    else b.key = key;
    this.byKey.set(key, b);
    pushHeap(this.heap, b);
    return b;
  }

  /** Bucket b has no members left: out of the heap, kept spare. */
  emptied(b: Bucket): void {
    this.byKey.delete(b.key);
    removeHeap(this.heap, b.hi);
    b.hi = -1;
    this.spare.push(b);
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

/** Relative slack under which two delays count as tied (float rounding of the same figures). */
const TIED = 1e-12;

/**
 * Up to `limit` members of `groups` with the lowest `delayOf(group, bucket)` (a delay that grows with the key
 * within each group), plus the members of buckets tied with the last one taken (up to `limit` each): a
 * best-first walk of every group's heap at once, so it reads about `limit` buckets and their children, not
 * `limit` of every group. Appends positions to `out` (unordered).
 */
export function bestOverall(
  groups: Iterable<Group>,
  limit: number,
  out: number[],
  delayOf: (g: Group, b: Bucket) => number,
): void {
  const fg: Group[] = [];
  const fj: number[] = [];
  const fd: number[] = [];
  const push = (g: Group, j: number): void => {
    if (j >= g.heap.length) return;
    fg.push(g);
    fj.push(j);
    fd.push(delayOf(g, g.heap[j]!));
  };
  for (const g of groups) push(g, 0);
  let added = 0;
  let last = -Infinity;
  while (fg.length > 0) {
    let at = 0;
    for (let i = 1; i < fd.length; i++) if (fd[i]! < fd[at]!) at = i;
    const [g, j, d] = [fg[at]!, fj[at]!, fd[at]!];
    if (added >= limit && d > last + Math.abs(last) * TIED) break;
    const n = fg.length - 1;
    [fg[at], fj[at], fd[at]] = [fg[n]!, fj[n]!, fd[n]!];
    fg.pop();
    fj.pop();
    fd.pop();
    const m = g.heap[j]!.members;
    for (let i = 0; i < m.length && i < limit; i++, added++) out.push(m[i]!);
    last = d;
    push(g, 2 * j + 1);
    push(g, 2 * j + 2);
  }
}

/** Per view: the groups, and each member position's place in them. */
export class ScoreGroups {
  /** total → (4·avail + 2·trial + measured) → group. */
  private readonly groups = new Map<number, Map<number, Group>>();
  /**
   * The groups with members, in the order they last became non-empty (as a Set would keep them). An array:
   * groups empty and fill per pick and release, and a Set remade its table each time it emptied.
   */
  readonly nonEmpty: Group[] = [];
  /** Measured members without a credit, keyed by static part (insertFull); not in nonEmpty. */
  readonly full = new Group(0, 0, false, true);
  /** Σ slots of the kind over the view's members (node-score keeps it as totals change). */
  slots = 0;
  /** Per member position, its measured time of the view's kind (0: none); undefined while no member has one. */
  kindMs: Float64Array | undefined = undefined;
  /**
   * Members of `full` by their total slots: the smallest total bounds a full member's delay from below. A
   * total whose count falls to 0 keeps its entry (few distinct totals; no Map table remade per move).
   */
  private readonly fullTotals = new Map<number, number>();
  private readonly totalOf: Int32Array;
  /** Each member position's bucket (its group is the bucket's: one array read per move, not two). */
  private readonly bucketOf: (Bucket | undefined)[];
  private readonly at: Int32Array;

  constructor(n: number) {
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
    if (g.size === 0) this.nonEmpty.push(g);
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
    const b = g.bucket(key);
    this.at[pos] = b.members.length;
    b.members.push(pos);
    this.bucketOf[pos] = b;
    g.size++;
  }

  /** The group member `pos` is in (undefined: none). */
  where(pos: number): Group | undefined {
    return this.bucketOf[pos]?.group;
  }

  remove(pos: number): void {
    const b = this.bucketOf[pos];
    if (b === undefined) return;
    const g = b.group;
    const m = b.members;
    const i = this.at[pos]!;
    const last = m.pop()!;
    if (last !== pos) {
      m[i] = last;
      this.at[last] = i;
    }
    this.bucketOf[pos] = undefined;
    if (m.length === 0) g.emptied(b);
    if (g === this.full) {
      const t = this.totalOf[pos]!;
      this.fullTotals.set(t, this.fullTotals.get(t)! - 1);
    }
    // `full` is never among them.
    if (--g.size === 0 && g !== this.full) this.nonEmpty.splice(this.nonEmpty.indexOf(g), 1);
  }

  /** Members with a credit (every group's size). */
  count(): number {
    let n = 0;
    for (const g of this.nonEmpty) n += g.size;
    return n;
  }
}

function pushHeap(h: Bucket[], b: Bucket): void {
  h.push(b);
  siftUp(h, h.length - 1, b);
}

/** Take the bucket at index i out of heap h. */
function removeHeap(h: Bucket[], i: number): void {
  const last = h.pop()!;
  if (i === h.length) return;
  if (i > 0 && h[(i - 1) >> 1]!.key > last.key) siftUp(h, i, last);
  else siftDown(h, i, last);
}

/** Put b at index i or above, moving larger parents down. */
function siftUp(h: Bucket[], i: number, b: Bucket): void {
  while (i > 0) {
    const p = (i - 1) >> 1;
    const q = h[p]!;
    if (q.key <= b.key) break;
    h[i] = q;
    q.hi = i;
    i = p;
  }
  h[i] = b;
  b.hi = i;
}

/** Put b at index i or below, moving smaller children up. */
function siftDown(h: Bucket[], i: number, b: Bucket): void {
  const n = h.length;
  for (;;) {
    const l = 2 * i + 1;
    if (l >= n) break;
    const r = l + 1;
    const c = r < n && h[r]!.key < h[l]!.key ? r : l;
    const q = h[c]!;
    if (q.key >= b.key) break;
    h[i] = q;
    q.hi = i;
    i = c;
  }
  h[i] = b;
  b.hi = i;
}

/**
 * The lowest and highest of a set of values that change one index at a time
 * (the measured latencies: the prior of the unmeasured and the trial cost).
 * Lazy heaps: an entry counts while its index still holds its value. An entry
 * is two numbers in parallel arrays, not an object: a result moves its agent's
 * latency, and at 20,000 agents an entry object lived until the heaps were
 * rebuilt (past twice the values held), long enough to be promoted.
 */
export class Extremes {
  private readonly value: Float64Array;
  private lo = new Lazy();
  private hi = new Lazy();
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
    this.lo.push(v, i);
    this.hi.push(-v, i);
    if (this.lo.size > 2 * this.live + 16) {
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

  private top(h: Lazy, sign: 1 | -1): number {
    while (h.size > 0 && this.value[h.i[0]!] !== sign * h.k[0]!) h.pop();
    return h.size > 0 ? h.k[0]! : Infinity;
  }

  private rebuilt(sign: 1 | -1): Lazy {
    const h = new Lazy();
    for (let i = 0; i < this.value.length; i++) if (!Number.isNaN(this.value[i]!)) h.push(sign * this.value[i]!, i);
    return h;
  }
}

/** A binary min-heap of (key, index) pairs held in two arrays. */
class Lazy {
  readonly k: number[] = [];
  readonly i: number[] = [];

  get size(): number {
    return this.k.length;
  }

  push(key: number, idx: number): void {
    const { k, i: ix } = this;
    let j = k.length;
    k.push(key);
    ix.push(idx);
    while (j > 0) {
      const p = (j - 1) >> 1;
      if (k[p]! <= key) break;
      k[j] = k[p]!;
      ix[j] = ix[p]!;
      j = p;
    }
    k[j] = key;
    ix[j] = idx;
  }

  pop(): void {
    const { k, i: ix } = this;
    const key = k.pop()!;
    const idx = ix.pop()!;
    const n = k.length;
    if (n === 0) return;
    let j = 0;
    for (;;) {
      const l = 2 * j + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && k[r]! < k[l]! ? r : l;
      if (k[c]! >= key) break;
      k[j] = k[c]!;
      ix[j] = ix[c]!;
      j = c;
    }
    k[j] = key;
    ix[j] = idx;
  }
}
