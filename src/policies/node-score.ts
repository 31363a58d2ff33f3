// Node tier: resource scoring of agents (seed 002's node balancer). Each
// eligible agent gets
//   score = w.availability·(credits/total) + w.success·successEwma
//         + w.speed·ref/(ref + latencyEwmaMs) + w.cpu·(1 − cpu) + w.memory·(1 − memory)
// and the highest score wins (random tie-break). Only availability changes
// between picks, so the rest is computed once per picker.
//
// A node has thousands of agents, so a pick does not scan them. Members of a
// kind are grouped by (total slots, available credits): within a group the
// availability term is the same, so the best member is the one with the
// highest static part. Each group is a bitset over the members in static-rank
// order, and a pick compares only the groups' first members: O(groups) plus a
// word scan, with groups ≤ the distinct (total, credits) pairs, e.g. 16 for
// agents of 16 slots. Building it is O(n) per kind after one sort of the
// static parts per picker. A member moves
// between groups when its availability changes (availChanged). Ties, within a
// group or across groups with equal scores, are broken uniformly at random
// over all tied members, as the scan does. Tasks with affinity or exclusions
// (rare at the node) fall back to the scan.

import { configObject, numberKey, weightKeys } from './config.js';
import { BasePicker, type KindView } from './picker.js';
import { registerPolicy } from './registry.js';
import type { Candidate, Picker, Policy, PolicyDeps, PolicyFactory, TaskInfo } from './types.js';

export interface NodeScoreWeights {
  readonly availability: number;
  readonly success: number;
  readonly speed: number;
  readonly cpu: number;
  readonly memory: number;
}

export interface NodeScoreConfig {
  readonly weights: NodeScoreWeights;
  /** Latency at which the speed term is 0.5; an agent with no data scores 1. */
  readonly latencyRefMs: number;
}

export const NODE_SCORE_DEFAULT_WEIGHTS: NodeScoreWeights = {
  availability: 0.35,
  success: 0.25,
  speed: 0.2,
  cpu: 0.1,
  memory: 0.1,
};

const clamp01 = (x: number): number => (x < 0 ? 0 : x > 1 ? 1 : x);

/**
 * Members of one kind view with equal total slots and equal available credits,
 * as a bitset over the view's members in static-rank order (best first).
 */
class Group {
  size = 0;
  /** No set bit below this word. */
  hint = 0;
  readonly bits: Uint32Array;
  constructor(
    readonly total: number,
    readonly avail: number,
    words: number,
  ) {
    this.bits = new Uint32Array(words);
  }
}

class ScoreIndex {
  /** total → avail → group. */
  readonly groups = new Map<number, Map<number, Group>>();
  readonly nonEmpty = new Set<Group>();
  /** Per member position: its group (undefined: no credit). */
  readonly where: (Group | undefined)[];
  /** Member positions in static-rank order, and each position's index there. */
  readonly sorted: Int32Array;
  readonly slot: Int32Array;
  /** For index j of `sorted`: the end (exclusive) of the run of equal rank holding j. */
  readonly runEnd: Int32Array;
  readonly words: number;
  constructor(sorted: Int32Array, runEnd: Int32Array) {
    const n = sorted.length;
    this.sorted = sorted;
    this.runEnd = runEnd;
    this.slot = new Int32Array(n);
    for (let j = 0; j < n; j++) this.slot[sorted[j]!] = j;
    this.where = new Array<Group | undefined>(n).fill(undefined);
    this.words = (n + 31) >>> 5;
  }
}

/** One group's tied best members: set bits of g in [from, to). */
interface Tie {
  g: Group;
  from: number;
  to: number;
  count: number;
}

class NodeScorePicker extends BasePicker {
  /** Score part that does not change between picks, by candidate index. */
  private readonly staticPart: Float64Array;
  /** Dense rank of staticPart by candidate index (0 = highest; equal parts, equal rank). */
  private readonly rank: Int32Array;
  /** Candidate indices by rank. */
  private readonly order: Int32Array;
  private readonly score: (v: KindView, pos: number) => number;
  private readonly wAvail: number;
  private readonly ties: Tie[] = [];
  private nTies = 0;

  constructor(cands: readonly Candidate[], random: () => number, cfg: NodeScoreConfig) {
    super(cands, random);
    const w = cfg.weights;
    this.wAvail = w.availability;
    this.staticPart = Float64Array.from(cands, (c) => {
      const lat = Math.max(0, c.latencyEwmaMs);
      return (
        w.success * clamp01(c.successEwma) +
        w.speed * (cfg.latencyRefMs / (cfg.latencyRefMs + lat)) +
        w.cpu * (1 - clamp01(c.utilization.cpu)) +
        w.memory * (1 - clamp01(c.utilization.memory))
      );
    });
    const st = this.staticPart;
    this.order = Int32Array.from(cands, (_c, i) => i).sort((a, b) => st[b]! - st[a]! || a - b);
    this.rank = new Int32Array(cands.length);
    let r = -1;
    for (let i = 0; i < this.order.length; i++) {
      if (i === 0 || st[this.order[i]!] !== st[this.order[i - 1]!]) r++;
      this.rank[this.order[i]!] = r;
    }
    // selectMin minimises, so negate.
    this.score = (v, pos) =>
      -(w.availability * (this.avail(v, pos) / v.total[pos]!) + this.staticPart[v.members[pos]!]!);
  }

  protected override initView(v: KindView): void {
    const n = v.members.length;
    const sorted = new Int32Array(n);
    let j = 0;
    for (let i = 0; i < this.order.length; i++) {
      const p = v.posOf![this.order[i]!]!;
      if (p >= 0) sorted[j++] = p;
    }
    const runEnd = new Int32Array(n);
    for (let k = n - 1; k >= 0; k--) {
      runEnd[k] =
        k + 1 < n && this.rank[v.members[sorted[k]!]!] === this.rank[v.members[sorted[k + 1]!]!]
          ? runEnd[k + 1]!
          : k + 1;
    }
    const ix = new ScoreIndex(sorted, runEnd);
    v.ext = ix;
    for (let p = 0; p < n; p++) this.insert(v, ix, p);
  }

  protected override availChanged(v: KindView, pos: number): void {
    const ix = v.ext as ScoreIndex;
    const g = ix.where[pos];
    const a = this.avail(v, pos);
    if (g !== undefined ? g.avail === a : a < 1) return;
    if (g !== undefined) {
      const j = ix.slot[pos]!;
      g.bits[j >>> 5]! &= ~(1 << (j & 31));
      if (--g.size === 0) ix.nonEmpty.delete(g);
      ix.where[pos] = undefined;
    }
    this.insert(v, ix, pos);
  }

  private insert(v: KindView, ix: ScoreIndex, pos: number): void {
    const a = this.avail(v, pos);
    if (a < 1) return;
    const t = v.total[pos]!;
    let byAvail = ix.groups.get(t);
    if (byAvail === undefined) ix.groups.set(t, (byAvail = new Map()));
    let g = byAvail.get(a);
    if (g === undefined) byAvail.set(a, (g = new Group(t, a, ix.words)));
    const j = ix.slot[pos]!;
    const wd = j >>> 5;
    g.bits[wd]! |= 1 << (j & 31);
    if (wd < g.hint) g.hint = wd;
    ix.where[pos] = g;
    if (g.size++ === 0) {
      ix.nonEmpty.add(g);
      g.hint = wd;
    }
  }

  protected select(v: KindView, task: TaskInfo): number {
    // Affinity and exclusions are per task: scan (rare at the node).
    if (
      (task.affinity !== undefined && task.affinity.length > 0) ||
      (task.exclude !== undefined && task.exclude.length > 0)
    ) {
      return this.selectMin(v, this.score);
    }
    const ix = v.ext as ScoreIndex;
    let best = Infinity;
    let count = 0;
    this.nTies = 0;
    for (const g of ix.nonEmpty) {
      const j = firstSet(g);
      const s = -(this.wAvail * (g.avail / g.total) + this.staticPart[v.members[ix.sorted[j]!]!]!);
      if (s > best) continue;
      if (s < best) {
        best = s;
        this.nTies = 0;
        count = 0;
      }
      const to = ix.runEnd[j]!;
      const c = countSet(g.bits, j, to);
      const tie = (this.ties[this.nTies++] ??= { g, from: 0, to: 0, count: 0 });
      tie.g = g;
      tie.from = j;
      tie.to = to;
      tie.count = c;
      count += c;
    }
    if (count === 0) return -1;
    let k = count === 1 ? 0 : Math.floor(this.random() * count);
    for (let i = 0; i < this.nTies; i++) {
      const tie = this.ties[i]!;
      if (k < tie.count) return ix.sorted[nthSet(tie.g.bits, tie.from, tie.to, k)]!;
      k -= tie.count;
    }
    return -1;
  }
}

/** Index of the lowest set bit of a non-empty group (advances its hint). */
function firstSet(g: Group): number {
  const b = g.bits;
  let w = g.hint;
  while (b[w] === 0) w++;
  g.hint = w;
  const x = b[w]!;
  return (w << 5) + (31 - Math.clz32(x & -x));
}

function popcount(x: number): number {
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  return (((x + (x >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24;
}

/** Bits of word w within [from, to). */
function maskedWord(b: Uint32Array, w: number, from: number, to: number): number {
  let x = b[w]!;
  const lo = w << 5;
  if (from > lo) x &= ~0 << (from - lo);
  if (to < lo + 32) x &= (1 << (to - lo)) - 1;
  return x >>> 0;
}

function countSet(b: Uint32Array, from: number, to: number): number {
  let n = 0;
  for (let w = from >>> 5; w <= (to - 1) >>> 5; w++) n += popcount(maskedWord(b, w, from, to));
  return n;
}

/** Index of the k-th (0-based) set bit in [from, to). */
function nthSet(b: Uint32Array, from: number, to: number, k: number): number {
  for (let w = from >>> 5; w <= (to - 1) >>> 5; w++) {
    let x = maskedWord(b, w, from, to);
    const c = popcount(x);
    if (k >= c) {
      k -= c;
      continue;
    }
    while (k-- > 0) x &= x - 1;
    return (w << 5) + (31 - Math.clz32(x & -x));
  }
  return from;
}

export const nodeScorePolicy: PolicyFactory<NodeScoreConfig> = {
  name: 'node-score',
  description: 'weighted score of availability, success rate, speed, cpu and memory (node tier)',
  parseConfig(raw) {
    const o = configObject('node-score', raw, [...Object.keys(NODE_SCORE_DEFAULT_WEIGHTS), 'latencyRefMs']);
    return {
      weights: weightKeys('node-score', o, NODE_SCORE_DEFAULT_WEIGHTS),
      latencyRefMs: numberKey('node-score', o, 'latencyRefMs', 100, { min: 1e-3 }),
    };
  },
  create(config, deps: PolicyDeps): Policy {
    return {
      name: 'node-score',
      buildPicker: (cands: readonly Candidate[]): Picker => new NodeScorePicker(cands, deps.random, config),
    };
  },
};

registerPolicy('node-score', nodeScorePolicy);
