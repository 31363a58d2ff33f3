// One agent's stream at its node cell: what the agent declared in its hello,
// what it holds, how it is doing. The node-wide bookkeeping around sessions
// lives in agent-sessions.ts (the streams), agent-capacity.ts (free slots per
// kind) and agent-carry.ts (attempts carried over a reconnect).
//
// Invariant: the slots of assigned + carried attempts (each its TaskSpec.slots,
// slot-map.ts) stay <= slots at all times (the node never exceeds an agent's
// slots; a cancelled attempt keeps its slots until the agent answers or dies,
// since it may still be running).
import type { ServerDuplexStream } from '@grpc/grpc-js';
import type {
  AgentHello,
  Cancels,
  CheckpointAck,
  ConnectRequest,
  ConnectResponse,
  DrainOrder,
  HeartbeatChange,
  Preemption,
} from '../gen/meshlb/v1/agent.js';
import type { Candidate } from '../policies/index.js';
import { LIMITS, overCount, overLimit } from '../util/limits.js';
import type { Dispatch, Label, TaskRef } from '../gen/meshlb/v1/task.js';
import { StreamBatcher, type BatcherOptions, type Lane as BatchLane } from './batcher.js';
import { NO_LINK, type LinkMeter } from './meter.js';
import type { Scheduler } from './scheduler.js';
import { SlotMap, slotsOf } from './slot-map.js';
import type { WorkItem } from './types.js';
import { dispatchSize, wireDispatch } from './wire.js';

const enum Lane {
  Assignments,
  /** Before Cancels: an agent learns why (and its grace) before the plain cancel of the same attempt. */
  Preemptions,
  Cancels,
  Drain,
  Heartbeat,
  CheckpointAcks,
  /** Cancels asking for a hand-back (agent-checkpoint.ts): one message per flush. */
  HandBacks,
}

/** How often an agent sends a load, and how long the node waits for a message before it declares it dead. */
export interface Heartbeat {
  readonly intervalMs: number;
  readonly timeoutMs: number;
}

/**
 * Loads per second the agents of one node replica send together, at most, once
 * there are enough of them to stretch their interval (1,000 agents at the
 * default 1 s). Each costs the node a message and its agent a timer and a
 * write: at 1 s, 20,000 agents cost a node ~30% of a core in heartbeats alone.
 */
export const HEARTBEATS_PER_SECOND = 1000;

/**
 * The heartbeat a node holding `agents` streams asks of each: the configured
 * one while they send at most `perSecond` loads a second together, else
 * stretched by steps of x1.5, each rounded up to a whole multiple of the
 * configured interval (1, 2, 3, 5, 8, 12, 18, 27 s from 1 s), so they send
 * between half of `perSecond` and all of it — as Nomad bounds heartbeats per
 * server. The timeout keeps its ratio to the interval: as many loads may be
 * late before the agent is declared dead, so failure detection takes that
 * ratio times the stretched interval (3 x 27 s = 81 s for 20,000 agents).
 */
export function heartbeatFor(agents: number, base: Heartbeat, perSecond: number): Heartbeat {
  if (!(base.intervalMs > 0) || !(perSecond > 0)) return base;
  let interval = base.intervalMs;
  while ((agents * 1000) / interval > perSecond)
    interval = Math.ceil((interval * 1.5) / base.intervalMs) * base.intervalMs;
  if (interval === base.intervalMs) return base;
  return { intervalMs: interval, timeoutMs: Math.ceil((interval * base.timeoutMs) / base.intervalMs) };
}

const NOT_HANDED_BACK = { handBack: false, graceMs: 0, reason: '' } as const;

function mergeCancels(cs: readonly Cancels[]): Cancels {
  return { ...cs[cs.length - 1]!, refs: cs.flatMap((c) => c.refs) };
}

/** An attempt the agent runs from before its current session, holding a slot. */
export interface Carried {
  /** Its kind when known (the session that assigned it). */
  readonly kind: string | undefined;
  /** The slots it takes (its TaskSpec.slots, or what the agent named; 1 when unknown). */
  readonly slots: number;
  /** Released at this time (ms) if no result came: when its lease would have ended. */
  readonly untilMs: number;
  /** Named by the agent in a `started` ref of this session. */
  confirmed: boolean;
  /**
   * Assigned in this very session (a preempted attempt past its grace: AgentSessions.carryOn). The agent
   * may not have read its assignment when it wrote a load, so a load never trims it: its result or its
   * lease frees the slot (sim:mesh seed 49: a load saying 0 freed it, and the agent went over its slots).
   */
  readonly ownSession?: boolean;
}

/** An attempt assigned in a session as a carried one (its lease bounds it): for a session that lost it. */
export const carriedFrom = (item: WorkItem, confirmed: boolean): Carried => ({
  kind: item.kind,
  slots: slotsOf(item.spec),
  untilMs: item.sentMs + item.leaseMs,
  confirmed,
});

/** Exponentially weighted moving average, seeded by its first sample. */
export class Ewma {
  value: number;
  /** It has had a sample (until then `value` is the initial one). */
  seeded = false;
  constructor(
    private readonly alpha: number,
    initial: number,
  ) {
    this.value = initial;
  }

  add(x: number): void {
    if (!this.seeded) {
      this.value = x;
      this.seeded = true;
    } else this.value += this.alpha * (x - this.value);
  }
}

/** Why a hello's strings and lists are over their limits (LIMITS), or ''; checked before any lookup. */
export function helloOverLimits(h: AgentHello): string {
  const strings =
    overLimit('hello.agent_id', h.agentId, LIMITS.agentId) ||
    overLimit('hello.node_cell', h.nodeCell, LIMITS.cellPath) ||
    overLimit('hello.mesh', h.mesh, LIMITS.meshName) ||
    overLimit('hello.mesh_id', h.meshId, LIMITS.meshName) ||
    overLimit('hello.version', h.version, LIMITS.agentVersion) ||
    overCount('hello.kinds', h.kinds.length, LIMITS.kindsPerAgent) ||
    overCount('hello.labels', h.labels.length, LIMITS.labelsPerAgent);
  if (strings) return strings;
  for (let i = 0; i < h.kinds.length; i++) {
    const why = overLimit(`hello.kinds[${i}]`, h.kinds[i]!, LIMITS.kind);
    if (why) return why;
  }
  for (let i = 0; i < h.labels.length; i++) {
    const l = h.labels[i]!;
    const why =
      overLimit(`hello.labels[${i}].key`, l.key, LIMITS.labelKey) ||
      overLimit(`hello.labels[${i}].value`, l.value, LIMITS.labelValue);
    if (why) return why;
  }
  return '';
}

/**
 * How each lane's items become one message: shared by every session (module-level, so
 * 20,000 sessions do not each hold 13 closures of their own).
 */
const lane = <I>(
  wrap: (items: I[]) => ConnectResponse,
  sizeOf: (item: I) => number,
): BatchLane<never, ConnectResponse> => ({ wrap, sizeOf }) as unknown as BatchLane<never, ConnectResponse>;
/** Lanes whose items all count about the same, in bytes. */
const bytes = (n: number) => (): number => n;
const LANES: readonly BatchLane<never, ConnectResponse>[] = [
  lane((tasks: Dispatch[]) => ({ msg: { $case: 'assignments', value: { tasks } } }), dispatchSize),
  lane((items: Preemption[]) => ({ msg: { $case: 'preemptions', value: { items } } }), bytes(120)),
  lane((refs: TaskRef[]) => ({ msg: { $case: 'cancels', value: { ...NOT_HANDED_BACK, refs } } }), bytes(40)),
  lane((d: DrainOrder[]) => ({ msg: { $case: 'drain', value: d[d.length - 1]! } }), bytes(16)),
  lane((h: HeartbeatChange[]) => ({ msg: { $case: 'heartbeat', value: h[h.length - 1]! } }), bytes(16)),
  lane((acks: CheckpointAck[]) => ({ msg: { $case: 'checkpointAcks', value: { acks } } }), bytes(64)),
  // Hand-backs of one flush share a message: the last one's reason and grace.
  lane((cs: Cancels[]) => ({ msg: { $case: 'cancels', value: mergeCancels(cs) } }), bytes(64)),
];

/** What an attempt costs in an agent's slots: the sessions' SlotMaps share these. */
const itemSlots = (w: WorkItem): number => slotsOf(w.spec);
const carriedSlots = (c: Carried): number => c.slots;

export class AgentSession {
  readonly kinds: readonly string[];
  readonly labels: readonly Label[];
  /** As declared in its hello ('' = none): version ramps place by it (version-ramps.ts). */
  readonly version: string;
  readonly slots: number;
  /** route key → every attempt given to the agent in this session and not yet answered. */
  readonly assigned = new SlotMap<WorkItem>(itemSlots);
  /** route key → attempts the agent still runs from before this session (agent-carry.ts). */
  readonly carried = new SlotMap<Carried>(carriedSlots);
  cpu = 0;
  memory = 0;
  /** It drains (by itself, or told to: it leaves once idle). */
  private drainOrdered = false;
  /** An operator cordoned it (CordonAgent): no new assignments, it stays connected. */
  cordoned = false;
  dead = false;
  lastSeenMs: number;
  /** It has sent a message since its hello (until then its deadline is longer: agent-handshake.ts). */
  heard = false;
  /** What the agent was told (its Welcome, then HeartbeatChange): within a session it only grows. */
  heartbeat: Heartbeat;
  readonly success = new Ewma(0.1, 1);
  readonly latencyMs = new Ewma(0.1, 0);
  /** Per kind, for an agent of several (its latencyMs mixes them: agent-speed.ts); made at its first result. */
  kindLatencyMs: Map<string, Ewma> | undefined = undefined;
  /** Its own run time and the node's overhead, placed by until measured (agent-speed.ts). */
  reported: { runMs: number; overhead: { readonly value: number } } | undefined = undefined;
  readonly batcher: StreamBatcher<ConnectResponse>;
  /** What the node's picker sees of it, refreshed in place (agent-candidate.ts); built at first use. */
  candidate: Candidate | undefined = undefined;

  constructor(
    readonly id: string,
    hello: AgentHello,
    readonly call: ServerDuplexStream<ConnectRequest, ConnectResponse>,
    readonly connectedMs: number,
    heartbeat: Heartbeat,
    batcher: BatcherOptions,
    scheduler: Scheduler,
    onOverflow: (bytes: number) => void,
    /** Counts the messages written to it (the cell's agent-link meter). */
    meter: LinkMeter = NO_LINK,
  ) {
    this.kinds = [...new Set(hello.kinds)];
    this.labels = hello.labels;
    this.version = hello.version;
    this.slots = hello.slots;
    this.lastSeenMs = connectedMs;
    this.heartbeat = heartbeat;
    this.batcher = new StreamBatcher<ConnectResponse>(call, LANES, batcher, scheduler, onOverflow, undefined, meter);
  }

  /** Stop writing and end the stream (the node shuts down). */
  close(): void {
    this.batcher.close();
    try {
      this.call.end();
    } catch {
      // gone
    }
  }

  /** A message came: true if it is the first since the hello. */
  hear(): boolean {
    const first = !this.heard;
    this.heard = true;
    return first;
  }

  /** Takes no new work: it drains, or it is cordoned (capacity and policies see either as draining). */
  get draining(): boolean {
    return this.drainOrdered || this.cordoned;
  }

  set draining(drain: boolean) {
    this.drainOrdered = drain;
  }

  /** Draining by its own word or an order, a cordon aside (a cordoned agent may start draining too). */
  get leaving(): boolean {
    return this.drainOrdered;
  }

  /** Slots taken: by attempts assigned in this session plus those carried from before (each its slots). */
  get inFlight(): number {
    return this.assigned.used + this.carried.used;
  }

  /** Counts toward capacity: alive and taking work. */
  get usable(): boolean {
    return !this.dead && !this.draining;
  }

  sendAssignment(item: WorkItem): void {
    this.batcher.push(Lane.Assignments, wireDispatch(item));
  }

  sendCancel(ref: TaskRef): void {
    this.batcher.push(Lane.Cancels, ref);
  }

  /** A preempted attempt: why and its grace (preemptor.ts), then the plain cancel older agents act on. */
  sendPreemption(p: Preemption): void {
    this.batcher.push(Lane.Preemptions, p);
    if (p.ref) this.batcher.push(Lane.Cancels, p.ref);
  }

  /** `migrateGraceMs` set: hand running attempts back within it (DrainOrder.migrate) instead of finishing them. */
  sendDrain(reason: string, migrateGraceMs?: number): void {
    const migrate = migrateGraceMs !== undefined;
    this.batcher.push(Lane.Drain, { reason, migrate, graceMs: migrate ? migrateGraceMs : 0 });
  }

  sendCheckpointAck(a: CheckpointAck): void {
    this.batcher.push(Lane.CheckpointAcks, a);
  }

  /** Ask the agent to checkpoint these attempts and end them as handed back (agent-checkpoint.ts). */
  sendHandBack(refs: TaskRef[], reason: string, graceMs: number): void {
    this.batcher.push(Lane.HandBacks, { refs, handBack: true, graceMs, reason });
  }

  /**
   * Lengthen the agent's heartbeat (never shorten it: an agent that ignores the
   * message, an older one, keeps its faster interval and stays alive). The
   * longer timeout holds at once; the agent's next load comes within the new
   * interval of reading this, well inside the timeout.
   */
  stretchHeartbeat(h: Heartbeat): void {
    if (h.intervalMs <= this.heartbeat.intervalMs || this.dead) return;
    this.heartbeat = h;
    this.batcher.push(Lane.Heartbeat, h);
  }
}

export const clamp01 = (x: number): number => (Number.isFinite(x) ? Math.min(1, Math.max(0, x)) : 0);

/** Attempts an agent holds per kind (assigned in this session, and carried ones whose kind is known). */
export function heldByKind(s: AgentSession): Map<string, number> {
  const n = new Map<string, number>();
  for (const item of s.assigned.values()) n.set(item.kind, (n.get(item.kind) ?? 0) + slotsOf(item.spec));
  for (const c of s.carried.values()) if (c.kind !== undefined) n.set(c.kind, (n.get(c.kind) ?? 0) + c.slots);
  return n;
}
