// When would a task sent to a node now complete? (issue 11, the zone tier.)
// A node knows its agents' speeds; its parent knows what it sent since the
// node's last summary and how old that summary is. So the node reports its
// agents of a kind in a few speed groups (speedGroups(): service time, slots,
// free slots per group, in KindCapacity's speed_group_* fields), and the
// parent evaluates the estimate at the summary's age (CompletionCurve), which
// zone-least-conn places by. Both halves are pure: the mesh's nodes
// (src/mesh/node-completion.ts) and bench:sched's simulated nodes report with
// the same code, and the same zone-least-conn reads it.
//
// The node (node-score.ts) places a task it did not home at once on a free
// slot, the one of lowest delay, and it runs there in the agent's expected
// service time st = T/p · (1 + cpu·u.cpu + memory·u.memory) (node-score's
// static part: 1/p attempts per success). So the m-th task in line at the
// node (counting what it holds queued first) completes, while m < F free
// slots, in the st of the m-th free slot, fastest first. Past the free slots
// a task waits for a slot to free: with every slot busy slots free at
// R = Σ slots_g/st_g per ms, the (k+1)-th release comes after about (k+1)/R,
// from group g with probability (slots_g/st_g)/R, whose mean service is S/R
// (S all slots); so E(m) = (m − F + 1 + S)/R. Not monotone: a node whose
// last free slot is slow offers that slot at its service time, and a task
// that waits for the next release may complete sooner.
//
// Why groups and not a ladder of E(m) computed at the node: a fast agent
// turns a slot over in tens of ms, less than a summary's age at the parent
// (summaryIntervalMs plus transit), so a ladder said "busy" of fast agents
// that were free again when the parent read it (bench:sched heterogeneous:
// p99 x1.2 worse than placing by load). The curve counts a busy slot of
// group g as free again after age a with probability min(1, a/st_g) (the
// chance its remaining run is shorter than a, for service times of low
// spread; 1 − e^(−a/st), the exponential's, gave p99 +2%), and the releases
// past one per slot (R·a in all) as drained from the queue.
//
// Which slot the m-th task finds is then uncertain: each busy slot of group
// g is back with probability q_g, so the free count up to group g has mean
// cum_g and variance Σ busy·q(1 − q). E(m) is the root mean square of the
// service time over where the task may run: group g with probability
// P(cum_{g−1} ≤ m < cum_g) (normal approximation, with the half-slot
// continuity correction of an integer count), the wait past every free slot
// with the rest. Before, the mean count alone chose the group, so a node whose
// expected free fast slots were just above m said "fast" for sure although
// it was a coin flip against its slow ones (bench:sched heterogeneous, seed
// 4: 145 of the 168 tasks that ran on x1-1.5 agents were sent where the zone
// expected under half that agent's time). The root mean square, not the mean,
// because p99 is the target: a slow outcome weighs more than its share.
// With fresh summaries (q 0 or 1) the count is certain and E(m) is as before.

import { NODE_SCORE_DEFAULTS, UNMEASURED_SPEEDUP, type NodeScoreConfig } from './node-score.js';
import type { SpeedGroups } from './types.js';

export type { SpeedGroups };

/** At most this many groups per kind: speeds binned on a log scale between the node's fastest and slowest. */
export const SPEED_GROUPS = 8;

/** One agent of the kind as its node sees it (the figures node-score reads). */
export interface AgentFigures {
  /** Measured service time EWMA, ms; 0: none yet (assumed 0.9x the fastest measured, as node-score does). */
  readonly latencyEwmaMs: number;
  /** 0..1. */
  readonly successEwma: number;
  readonly cpu: number;
  readonly memory: number;
  /** Slots of the kind (0: takes none, e.g. draining), and how many of them the node could fill now. */
  readonly slots: number;
  readonly free: number;
}

const clamp01 = (x: number): number => (x < 0 ? 0 : x > 1 ? 1 : x);

/**
 * A node's agents of a kind in at most `groups` groups of similar service time, fastest first;
 * undefined without agents of the kind. A group's service time is its slot-weighted harmonic
 * mean (so R = Σ slots/st is exact). O(agents).
 */
export function speedGroups(
  agents: Iterable<AgentFigures>,
  queued: number,
  cfg: NodeScoreConfig = NODE_SCORE_DEFAULTS,
  groups = SPEED_GROUPS,
): SpeedGroups | undefined {
  const list: AgentFigures[] = [];
  let fastest = Infinity;
  for (const a of agents) {
    if (!(a.slots > 0)) continue;
    list.push(a);
    if (a.latencyEwmaMs > 0) fastest = Math.min(fastest, a.latencyEwmaMs);
  }
  if (list.length === 0) return undefined;
  const prior = fastest < Infinity ? fastest * UNMEASURED_SPEEDUP : cfg.latencyRefMs;
  const st = list.map((a) => {
    const t = a.latencyEwmaMs > 0 ? a.latencyEwmaMs : prior;
    const res = 1 + cfg.cpu * clamp01(a.cpu) + cfg.memory * clamp01(a.memory);
    return (t / Math.max(cfg.minSuccess, clamp01(a.successEwma))) * res;
  });
  let lo = Infinity;
  let hi = 0;
  for (const s of st) {
    lo = Math.min(lo, s);
    hi = Math.max(hi, s);
  }
  const width = hi > lo ? Math.log(hi / lo) / groups : 1;
  const slots = new Array<number>(groups).fill(0);
  const free = new Array<number>(groups).fill(0);
  const rate = new Array<number>(groups).fill(0);
  for (let i = 0; i < list.length; i++) {
    const a = list[i]!;
    const g = hi > lo ? Math.min(groups - 1, Math.floor(Math.log(st[i]! / lo) / width)) : 0;
    slots[g]! += a.slots;
    free[g]! += Math.max(0, Math.min(a.slots, Math.floor(a.free)));
    rate[g]! += a.slots / st[i]!;
  }
  const out = { serviceMs: [] as number[], slots: [] as number[], free: [] as number[], queued: Math.max(0, queued) };
  for (let g = 0; g < groups; g++) {
    if (slots[g] === 0) continue;
    out.serviceMs.push(slots[g]! / rate[g]!);
    out.slots.push(slots[g]!);
    out.free.push(free[g]!);
  }
  return out;
}

/**
 * A node's expected completion time (ms from now) of the n-th more task sent to it, from its
 * speed groups (with the tasks it held queued) reported `ageMs` ago.
 */
export class CompletionCurve {
  /** Expected free slots per group now (a busy one has freed after the age with probability min(1, a/st)). */
  private readonly free: number[];
  private readonly freeSum: number;
  /** Tasks ahead of the next one: those queued then, less the releases past one per busy slot since. */
  private readonly ahead: number;
  private readonly rate: number;
  private readonly slots: number;
  /** Standard deviation of the free count up to each group (0 for all: the count is certain). */
  private readonly sdCum: number[];
  private readonly certain: boolean;

  constructor(
    private readonly g: SpeedGroups,
    ageMs: number,
  ) {
    const a = Math.max(0, ageMs);
    let rate = 0;
    let slots = 0;
    let busyRate = 0;
    let released = 0;
    let variance = 0;
    this.sdCum = [];
    this.free = g.serviceMs.map((st, i) => {
      const total = g.slots[i]!;
      const busy = Math.max(0, total - g.free[i]!);
      const q = Math.min(1, a / st);
      const back = busy * q;
      variance += back * (1 - q);
      this.sdCum.push(Math.sqrt(variance));
      rate += total / st;
      slots += total;
      busyRate += busy / st;
      released += back;
      return g.free[i]! + back;
    });
    let sum = 0;
    for (const f of this.free) sum += f;
    this.freeSum = sum;
    this.rate = rate;
    this.slots = slots;
    this.certain = variance === 0;
    this.ahead = Math.max(0, g.queued - Math.max(0, busyRate * a - released));
  }

  /** E(n): the n-th task sent from now (0: the next one). */
  at(n: number): number {
    const m = this.ahead + Math.max(0, n);
    const wait = (Math.max(0, m - this.freeSum) + 1 + this.slots) / this.rate;
    if (this.certain) {
      let cum = 0;
      for (let i = 0; i < this.free.length; i++) {
        cum += this.free[i]!;
        if (m < cum) return this.g.serviceMs[i]!;
      }
      return wait;
    }
    // Root mean square over where it runs: group i with P(free count up to i > m), less the groups before.
    let cum = 0;
    let below = 0;
    let sq = 0;
    for (let i = 0; i < this.free.length; i++) {
      cum += this.free[i]!;
      const sd = this.sdCum[i]!;
      const p = sd > 0 ? normalCdf((cum - m - 0.5) / sd) : cum > m ? 1 : 0;
      if (p > below) {
        const st = this.g.serviceMs[i]!;
        sq += (p - below) * st * st;
        below = p;
      }
    }
    return Math.sqrt(sq + (1 - below) * wait * wait);
  }
}

/** The standard normal CDF (erf by Abramowitz and Stegun 7.1.26, error under 1.5e-7). */
function normalCdf(x: number): number {
  const z = Math.abs(x) / Math.SQRT2;
  const t = 1 / (1 + 0.3275911 * z);
  const poly = ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t;
  const erf = 1 - poly * Math.exp(-z * z);
  return x >= 0 ? 0.5 * (1 + erf) : 0.5 * (1 - erf);
}
