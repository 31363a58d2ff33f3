// Free, total and healthy slots per kind over a node's live agents, kept
// incrementally so summaries and credits cost O(kinds), not O(agents).
//
// Invariant: for every kind, `free` = Σ over live, non-draining agents of that
// kind of (slots − inFlight), `total` = Σ slots and `healthy` = the number of
// live agents of that kind (draining ones count in total and healthy, with no
// free slots). Every change of an agent's state goes through account() (around
// a change of dead/draining/load) or slotsTaken() (the slots of one attempt).
// Beside the sums, per kind a count of agents by free slots (free > 0) and by
// slots, so the largest free block and the largest agent (what a task of N
// slots needs: docs/gang.md) cost O(distinct values), not O(agents).
import type { SpeedGroups } from '../policies/index.js';
import type { AgentSession } from './agent-session.js';
import { latencyOf } from './agent-speed.js';
import { nodeSpeedGroups } from './node-completion.js';
import type { Capacity, SubtreeLoad } from './port.js';
import { NodeLabels, type LabelsOfKind } from './label-groups.js';

/**
 * A kind's speed groups (node-completion.ts, O(agents)) are computed again for a summary when the
 * capacity changed since (an agent came, went or drained, a slot was taken or freed: every result),
 * else at most this often: what changes alone is agents' cpu and memory (their loads, each already up
 * to an interval old) and reported speeds. A node sends its parent a summary every summaryIntervalMs
 * (150 ms): with 12,500 idle agents that was ~1 ms of CPU per summary, 7 a second, for the same groups.
 */
export const SPEED_REFRESH_MS = 1000;

/** The largest free slots at one agent, and the most slots of one agent, of a kind. */
export interface Largest {
  readonly free: number;
  readonly total: number;
}

// A count that falls to 0 keeps its entry: the keys are slot counts (few), and a Map set and deleted per
// task remakes its table, in the old generation where the map lives (docs/performance.md, "Half of peak").
const bump = (m: Map<number, number>, k: number, d: number): void => {
  m.set(k, (m.get(k) ?? 0) + d);
};

// Over the keys, not the entries: an entry array per key per call was ~2 KB per task at a node at 500/s (the
// summary judgement reads it at every flush toward the parent; docs/performance.md, "Session 15").
const maxKey = (m: Map<number, number> | undefined): number => {
  let best = 0;
  if (m) for (const k of m.keys()) if (k > best && m.get(k)! > 0) best = k;
  return best;
};

export class AgentCapacity {
  readonly byKind = new Map<string, Capacity>();
  /** Per kind: agents by their free slots (> 0 only). */
  private readonly byFree = new Map<string, Map<number, number>>();
  /** Per kind: live agents by their slots. */
  private readonly bySize = new Map<string, Map<number, number>>();
  /** Bumped by every change of the sums (account, slotsTaken): cached speed groups are stale. */
  private version = 0;
  private readonly speeds = new Map<string, { version: number; atMs: number; groups: SpeedGroups | undefined }>();
  /** Per kind, the agents' label sets with their slots (label-groups.ts: what a task with affinity may find here). */
  readonly labels = new NodeLabels();

  /** Add (sign 1) or remove (sign -1) an agent's contribution. */
  account(s: AgentSession, sign: 1 | -1): void {
    if (s.dead) return;
    this.version++;
    const free = s.draining ? 0 : Math.max(0, s.slots - s.inFlight);
    this.labels.account(s, sign, free);
    for (const k of s.kinds) {
      let c = this.byKind.get(k);
      if (!c) this.byKind.set(k, (c = { free: 0, total: 0, healthy: 0 }));
      c.free += sign * free;
      c.total += sign * s.slots;
      c.healthy += sign;
      if (free > 0) bump(this.counts(this.byFree, k), free, sign);
      bump(this.counts(this.bySize, k), s.slots, sign);
      if (c.total === 0 && c.healthy === 0) {
        this.byKind.delete(k);
        this.byFree.delete(k);
        this.bySize.delete(k);
        this.speeds.delete(k);
      }
    }
  }

  /** Change what a session offers (`change`: draining, cordoned), its slots counted out before and in after. */
  update(s: AgentSession, change: () => void): void {
    this.account(s, -1);
    change();
    this.account(s, 1);
  }

  /**
   * `delta` slots of a live agent were taken (> 0) or freed (< 0), after its
   * attempts changed: its free slots per kind move by -delta (what account(-1),
   * change, account(1) would do; assigned + carried never exceeds slots, so
   * free = slots - inFlight needs no clamp).
   */
  slotsTaken(s: AgentSession, delta: number): void {
    if (s.dead || s.draining) return;
    this.version++;
    const after = s.slots - s.inFlight;
    const before = after + delta;
    this.labels.taken(s, delta);
    for (const k of s.kinds) {
      this.byKind.get(k)!.free -= delta;
      const m = this.counts(this.byFree, k);
      if (before > 0) bump(m, before, -1);
      if (after > 0) bump(m, after, 1);
    }
  }

  /** `kind`'s speed groups from `compute`, or as computed last if nothing but figures changed since, within SPEED_REFRESH_MS. */
  speedGroups(kind: string, now: number, compute: () => SpeedGroups | undefined): SpeedGroups | undefined {
    const c = this.speeds.get(kind);
    if (c !== undefined && c.version === this.version && now - c.atMs < SPEED_REFRESH_MS) return c.groups;
    const groups = compute();
    this.speeds.set(kind, { version: this.version, atMs: now, groups });
    return groups;
  }

  /** The largest free block at one agent and the largest agent of `kind` (0, 0: none). */
  largest(kind: string): Largest {
    return { free: maxKey(this.byFree.get(kind)), total: maxKey(this.bySize.get(kind)) };
  }

  private counts(m: Map<string, Map<number, number>>, kind: string): Map<number, number> {
    let c = m.get(kind);
    if (!c) m.set(kind, (c = new Map()));
    return c;
  }
}

/**
 * What a node reports of its agents: capacity per kind, and load averages over
 * at most 64 agents (kept cheap). The parent link reads the capacity twice per
 * task at low rates to judge whether a summary is due (summary-pacer.ts), and
 * the averages only for a summary that goes out: they are taken when read.
 */
export function subtreeLoad(agents: ReadonlyMap<string, AgentSession>, cap: AgentCapacity, now: number): SubtreeLoad {
  return new NodeLoad(agents, cap, now);
}

class NodeLoad implements SubtreeLoad {
  readonly capacity: ReadonlyMap<string, Capacity>;
  readonly healthyAgents: number;
  private avg: { cpu: number; memory: number; lat: number; succ: number } | undefined;

  constructor(
    private readonly agents: ReadonlyMap<string, AgentSession>,
    private readonly cap: AgentCapacity,
    private readonly now: number,
  ) {
    this.capacity = cap.byKind;
    this.healthyAgents = agents.size;
  }

  largest(kind: string): Largest {
    return this.cap.largest(kind);
  }

  labels(kind: string): LabelsOfKind {
    return this.cap.labels.describe(kind);
  }

  speed(kind: string, queued: number): SpeedGroups | undefined {
    const g = this.cap.speedGroups(kind, this.now, () => nodeSpeedGroups(this.agents, kind, 0));
    return g && { ...g, queued: Math.max(0, queued) };
  }

  get cpu(): number {
    return this.averages().cpu;
  }
  get memory(): number {
    return this.averages().memory;
  }
  get latencyEwmaMs(): number {
    return this.averages().lat;
  }
  get successEwma(): number {
    return this.averages().succ;
  }

  private averages(): { cpu: number; memory: number; lat: number; succ: number } {
    if (this.avg) return this.avg;
    let cpu = 0;
    let memory = 0;
    let lat = 0;
    let succ = 0;
    let n = 0;
    for (const s of this.agents.values()) {
      if (n >= 64) break;
      cpu += s.cpu;
      memory += s.memory;
      lat += latencyOf(s);
      succ += s.success.value;
      n++;
    }
    return (this.avg = n ? { cpu: cpu / n, memory: memory / n, lat: lat / n, succ: succ / n } : NO_AGENTS);
  }
}

const NO_AGENTS = Object.freeze({ cpu: 0, memory: 0, lat: 0, succ: 1 });
