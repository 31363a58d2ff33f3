// Node tier: shortest expected delay over agents, from measured service time,
// success rate, resources and occupied slots. Each eligible agent gets
//   delay = T/p · (1 + cpu·u.cpu + memory·u.memory) · (1 + load·busy/slots)
// T: the agent's latencyEwmaMs (an agent with none yet is assumed a little
//    faster than the fastest measured one, so it gets tried, one task at a
//    time: see delay()); p: successEwma floored at minSuccess (a failed
//    attempt is run again, so 1/p attempts per success); busy: its occupied
//    slots of the kind, counting this picker's own routes (slots − credits).
// The lowest delay wins (random tie-break). With load = 1 an agent more than
// twice as fast with a free slot always beats an idle slow one (the two-speed
// case of issue 11), while agents of about equal speed share work by their
// free slots. Only busy changes between picks, so the rest is computed once
// per picker.
//
// A node has thousands of agents, so a pick does not scan them. Members of a
// kind are grouped by (total slots, available credits, trial flag): within a
// group the load factor is the same, so the best member is the one with the
// lowest static part. Each group is a bitset over the members in static-rank order,
// and a pick compares only the groups' first members: O(groups) plus a word
// scan, with groups ≤ the distinct (total, credits) pairs, e.g. 16 for agents
// of 16 slots. Building it is O(n) per kind after one sort of the static
// parts per picker. A member moves between groups when its availability
// changes (availChanged). Ties, within a group or across groups with equal
// scores, are broken uniformly at random over all tied members, as the scan
// does. Tasks with affinity or exclusions (rare at the node) fall back to the
// scan.

import { configObject, numberKey } from './config.js';
import { BasePicker, type KindView } from './picker.js';
import { registerPolicy } from './registry.js';
import type { Candidate, Picker, Policy, PolicyDeps, PolicyFactory, ScoreRule, TaskInfo } from './types.js';

export interface NodeScoreConfig {
  /** Stretch of the expected service time per occupied fraction of the slots. */
  readonly load: number;
  /** Stretch at full cpu and at full memory use. */
  readonly cpu: number;
  readonly memory: number;
  /** Floor of the success rate in the 1/p retry factor. */
  readonly minSuccess: number;
  /** Service time assumed when no agent has latency data yet. */
  readonly latencyRefMs: number;
}

export const NODE_SCORE_DEFAULTS: NodeScoreConfig = {
  load: 1,
  cpu: 0.2,
  memory: 0.2,
  minSuccess: 0.05,
  latencyRefMs: 100,
};

/** An agent without latency data is assumed this fraction of the fastest measured one. */
export const UNMEASURED_SPEEDUP = 0.9;

const clamp01 = (x: number): number => (x < 0 ? 0 : x > 1 ? 1 : x);

/**
 * Members of one kind view with equal total slots, equal available credits and
 * equal trial flags, as a bitset over the view's members in static-rank order
 * (fastest first).
 */
class Group {
  size = 0;
  /** No set bit below this word. */
  hint = 0;
  readonly bits: Uint32Array;
  constructor(
    readonly total: number,
    readonly avail: number,
    readonly trial: boolean,
    words: number,
  ) {
    this.bits = new Uint32Array(words);
  }
}

class ScoreIndex {
  /** total → 2·avail + trial → group. */
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
  /** Expected service time before the load factor (lower is better), by candidate index. */
  private readonly staticPart: Float64Array;
  /** Dense rank of staticPart by candidate index (0 = lowest; equal parts, equal rank). */
  private readonly rank: Int32Array;
  /** Candidate indices by rank. */
  private readonly order: Int32Array;
  private readonly score: (v: KindView, pos: number) => number;
  private readonly load: number;
  /** 1: no latency data and no slot freed through this picker yet (on trial, see delay()). */
  private readonly trial: Uint8Array;
  /** Views built so far (a member leaving trial moves group in each). */
  private readonly built: KindView[] = [];
  /** What each running task of an agent on trial adds to its delay: the slowest measured time. */
  private readonly trialMs: number;
  private readonly ties: Tie[] = [];
  private nTies = 0;

  constructor(cands: readonly Candidate[], random: () => number, cfg: NodeScoreConfig) {
    super(cands, random);
    this.load = cfg.load;
    let fastest = Infinity;
    let slowest = 0;
    for (const c of cands) {
      if (!(c.latencyEwmaMs > 0)) continue;
      if (c.latencyEwmaMs < fastest) fastest = c.latencyEwmaMs;
      if (c.latencyEwmaMs > slowest) slowest = c.latencyEwmaMs;
    }
    const prior = fastest < Infinity ? fastest * UNMEASURED_SPEEDUP : cfg.latencyRefMs;
    this.trialMs = slowest > 0 ? slowest : cfg.latencyRefMs;
    this.trial = Uint8Array.from(cands, (c) => (c.latencyEwmaMs > 0 ? 0 : 1));
    this.staticPart = Float64Array.from(cands, (c) => {
      const t = c.latencyEwmaMs > 0 ? c.latencyEwmaMs : prior;
      const p = Math.max(cfg.minSuccess, clamp01(c.successEwma));
      return (t / p) * (1 + cfg.cpu * clamp01(c.utilization.cpu) + cfg.memory * clamp01(c.utilization.memory));
    });
    const st = this.staticPart;
    this.order = Int32Array.from(cands, (_c, i) => i).sort((a, b) => st[a]! - st[b]! || a - b);
    this.rank = new Int32Array(cands.length);
    let r = -1;
    for (let i = 0; i < this.order.length; i++) {
      if (i === 0 || st[this.order[i]!] !== st[this.order[i - 1]!]) r++;
      this.rank[this.order[i]!] = r;
    }
    this.score = (v, pos) => {
      const idx = v.members[pos]!;
      return this.delay(this.staticPart[idx]!, v.total[pos]!, this.avail(v, pos), this.trial[idx] === 1);
    };
  }

  /**
   * Expected delay of a member with static part `st`, `total` slots of the
   * kind and `avail` credits. An agent without latency data is tried one
   * task at a time: until it frees a slot (a release through this picker, or
   * a measurement in a later one), each task it runs adds the slowest
   * measured service time, so it takes a second task only when the others
   * are about as loaded. A cold node thus learns which agents answer before
   * it has a single EWMA. Within a group (equal total, avail and trial flag)
   * the order is by `st` alone.
   */
  private delay(st: number, total: number, avail: number, trial: boolean): number {
    const busy = total - avail;
    return st * (1 + this.load * (busy / total)) + (trial ? busy * this.trialMs : 0);
  }

  protected override scoreRule(): ScoreRule {
    return { score: 'expected delay, ms', rule: 'shortest expected delay; ties at random', better: 'lower' };
  }

  protected override scoreOf(v: KindView, pos: number): number {
    return this.score(v, pos);
  }

  override release(candidateId: string, kind: string): void {
    const idx = this.indexOf(candidateId);
    if (idx !== undefined && this.trial[idx] === 1) {
      // It answered: off trial. Move it to the group of its new flag in every view.
      const moving: [KindView, number][] = [];
      for (const v of this.built) {
        const pos = v.posOf![idx]!;
        if (pos >= 0) moving.push([v, pos]);
      }
      for (const [v, pos] of moving) this.unindex(v.ext as ScoreIndex, pos);
      this.trial[idx] = 0;
      for (const [v, pos] of moving) this.insert(v, v.ext as ScoreIndex, pos);
    }
    super.release(candidateId, kind);
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
    this.built.push(v);
    for (let p = 0; p < n; p++) this.insert(v, ix, p);
  }

  protected override availChanged(v: KindView, pos: number): void {
    const ix = v.ext as ScoreIndex;
    const g = ix.where[pos];
    const a = this.avail(v, pos);
    if (g !== undefined ? g.avail === a : a < 1) return;
    this.unindex(ix, pos);
    this.insert(v, ix, pos);
  }

  private unindex(ix: ScoreIndex, pos: number): void {
    const g = ix.where[pos];
    if (g === undefined) return;
    const j = ix.slot[pos]!;
    g.bits[j >>> 5]! &= ~(1 << (j & 31));
    if (--g.size === 0) ix.nonEmpty.delete(g);
    ix.where[pos] = undefined;
  }

  private insert(v: KindView, ix: ScoreIndex, pos: number): void {
    const a = this.avail(v, pos);
    if (a < 1) return;
    const t = v.total[pos]!;
    const um = this.trial[v.members[pos]!] === 1;
    let byAvail = ix.groups.get(t);
    if (byAvail === undefined) ix.groups.set(t, (byAvail = new Map()));
    let g = byAvail.get(2 * a + (um ? 1 : 0));
    if (g === undefined) byAvail.set(2 * a + (um ? 1 : 0), (g = new Group(t, a, um, ix.words)));
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
      const s = this.delay(this.staticPart[v.members[ix.sorted[j]!]!]!, g.total, g.avail, g.trial);
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
  description: 'shortest expected delay from measured service time, success rate, resources and free slots (node tier)',
  parseConfig(raw) {
    const n = 'node-score';
    const o = configObject(n, raw, Object.keys(NODE_SCORE_DEFAULTS));
    const d = NODE_SCORE_DEFAULTS;
    return {
      load: numberKey(n, o, 'load', d.load, { min: 0 }),
      cpu: numberKey(n, o, 'cpu', d.cpu, { min: 0 }),
      memory: numberKey(n, o, 'memory', d.memory, { min: 0 }),
      minSuccess: numberKey(n, o, 'minSuccess', d.minSuccess, { min: 1e-3, max: 1 }),
      latencyRefMs: numberKey(n, o, 'latencyRefMs', d.latencyRefMs, { min: 1e-3 }),
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
