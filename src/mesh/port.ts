// The cell behind a port. The pieces around a cell — the link up to its
// parent, the links down to its children, the agent sessions of a node — talk
// to it only through CellPort: hand in forwarded work and results, say that a
// dispatch was refused or could not be delivered, cancel, report a lost link
// or agent, and tell it that capacity changed. The cell talks back to them
// through the Side interfaces below. Neither knows the other's class, so each
// piece can be driven by a fake in a test, and no piece imports cell.ts.
//
// Everything here is synchronous: a port call does its work before it returns
// (no promise hops on the hot path).
import type { DispatchAck } from '../gen/meshlb/v1/link.js';
import type { Dispatch, TaskCheckpoint, TaskRef, TaskResult } from '../gen/meshlb/v1/task.js';
import type { Candidate, ContextLookup, SpeedGroups } from '../policies/index.js';
import { notLeader, unavailable, type MeshError } from '../util/errors.js';
import type { Logger } from '../util/log.js';
import type { CellMeter } from './meter.js';
import type { Scheduler } from './scheduler.js';
import type { StallClock } from './stall-clock.js';
import type { CellSettings } from './settings.js';
import type { GivenRef, Origin, Via, WorkItem } from './types.js';
import type { VersionRamps } from './version-ramps.js';
import type { LabelsOfKind, SummaryKinds } from './label-groups.js';

export interface CellPort {
  readonly path: string;
  readonly replicaId: string;
  readonly settings: CellSettings;
  readonly log: Logger;
  /** The cell's clock, timers and deferred turns (virtual in a simulation). */
  readonly scheduler: Scheduler;
  readonly random: () => number;
  /** Where the links count their messages (metrics). */
  readonly meter: CellMeter;
  /**
   * The cell's own stalls, one clock for the parent link and the child links (allowance a quarter
   * linkTimeoutMs, stall-clock.ts): each ticks it before judging a silence, the second at the same time adds nothing.
   */
  readonly linkStalls: StallClock;

  /** Dispatches from the parent (down) or spill-ups from a child (up): queue them; one ack per dispatch, in order. */
  acceptForwarded(tasks: readonly Dispatch[], origin: Origin): DispatchAck[];
  /** A result from an agent, a child, or the parent (of a task we spilled up). `key` is its routeKey when known. */
  deliverResult(r: TaskResult, key?: string): void;
  /** `from`: the link they came on (a refusal from another place than where its attempt went is stale). */
  deliverResults(results: readonly TaskResult[], from?: Via): void;
  /** A running attempt's checkpoint from an agent, a child, or the parent: on toward its home (relay.ts). */
  deliverCheckpoint(cp: TaskCheckpoint): void;
  /** A dispatch we sent (route `key`) was refused downstream: hold the attempt here again. */
  /** `send`: the refused send's number (Dispatch.send; 0 from a peer that predates it). */
  nacked(key: string, reason: string, send?: number): void;
  /** A side could not hand `item` on after all: it goes back to its origin uncounted (requeue). */
  bounce(item: WorkItem, why: string): void;
  /** Cancels from the parent (down) or from a child (of tasks it spilled up). */
  cancelRefs(refs: readonly TaskRef[], why: string): void;

  /** The agent is gone: attempts it held fail back as lost. Returns how many. */
  agentLost(agentId: string, why: string): number;
  /** The child's link is gone: attempts it spilled up are dropped, attempts sent to it fail back as lost. */
  childLost(child: string): void;
  /** The parent link is gone: attempts from the parent are dropped, spill-ups fail back as lost. */
  parentLost(): void;

  /** The candidates below changed (an agent came or went, a summary arrived): re-pick from fresh figures. */
  candidatesChanged(): void;
  /** One slot of `kind` at `candidate` came free (`slots` of them: a multi-slot attempt's). */
  slotFreed(candidate: string, kind: string, slots?: number): void;
  /** An agent's figures changed (a load, results): its candidate is read again (AgentSide.candidate). */
  agentChanged(agentId: string): void;
  /** The capacity this cell reports upward may have changed. */
  capacityChanged(): void;
  /** A drain order from the parent: refuse forwarded work, report no free slots. */
  setDraining(drain: boolean): void;

  /** Whether this replica decides for the cell now, and who does otherwise (links and agents go there). */
  leaderHint(): LeaderHint;
  /** Attempts held here that came from the parent (for the link hello), at most `max`. */
  heldFromParent(max: number): TaskRef[];
  /** A child (re)linked holding these attempts from us: adopt the current ones of our tasks, cancel the rest. */
  childHolds(child: string, refs: readonly TaskRef[]): void;
  /** Tasks of `kind` waiting in this cell's queue. */
  queuedOfKind(kind: string): number;
  /**
   * The parent asks for up to `max` queued tasks of `kind` back (work stealing): the
   * attempts it sent, taken out of the queue (returned), and tasks homed here, spilled up.
   */
  giveBack(kind: string, max: number): GivenRef[];
}

export interface LeaderHint {
  readonly leading: boolean;
  readonly leader: string;
  readonly leaderAddress: string;
}

/** The refusal a replica that does not lead its cell gives a link or an agent: go to the leader. */
export function notLeadingError(path: string, h: LeaderHint): MeshError {
  return h.leader && h.leaderAddress
    ? notLeader(`cell ${path}: this replica does not lead; the leader is ${h.leader}`, h.leader, h.leaderAddress)
    : unavailable(`cell ${path}: no leader ready yet; retry shortly`);
}

/** Slots of one kind in a subtree, and the healthy agents that serve it. */
export interface Capacity {
  free: number;
  total: number;
  healthy: number;
}

/** What a cell's subtree can take and how it is doing, for summaries. */
export interface SubtreeLoad {
  readonly capacity: ReadonlyMap<string, Capacity>;
  readonly healthyAgents: number;
  readonly cpu: number;
  readonly memory: number;
  readonly latencyEwmaMs: number;
  readonly successEwma: number;
  /**
   * Per kind, the most free slots at one agent and the most slots of one agent
   * in the subtree (multi-slot tasks, docs/gang.md); absent: free and total stand in.
   */
  readonly largest?: (kind: string) => { readonly free: number; readonly total: number };
  /** Per kind, the most free slots at one node cell in the subtree, less what waits on the way (gangs). */
  readonly nodeFree?: (kind: string) => number;
  /** Per kind, the label sets its agents offer, bounded (label-groups.ts); absent: not described. */
  readonly labels?: (kind: string) => LabelsOfKind;
  /** A node's: its agents of the kind by speed, with `queued` held here (node-completion.ts). */
  readonly speed?: (kind: string, queued: number) => SpeedGroups | undefined;
}

/** The link to the parent, as the cell uses it. */
export interface ParentSide {
  /** Welcomed by the parent on the current stream. */
  readonly connected: boolean;
  sendResult(r: TaskResult): void;
  /** On toward the home; dropped while unlinked (the agent's next one follows). */
  sendCheckpoint(cp: TaskCheckpoint): void;
  sendCancel(ref: TaskRef): void;
  /** Hand `item` up; bounces it when the parent is unreachable. */
  spillUp(item: WorkItem): void;
  capacityChanged(): void;
  /** From the cell timer: periodic summaries, silence, reconnects. */
  tick(now: number): void;
}

/** The links to the children, as the cell uses them. */
/** What a cell reads of a child's link to send guaranteed attempts past the credits (guaranteed.ts, child-link.ts). */
export interface ChildLinkView {
  readonly cell: string;
  readonly closed: boolean;
  readonly summary: (SummaryKinds & { readonly draining: boolean }) | undefined;
  /** Per kind, from the latest summary: total slots, healthy agents, tasks queued there. */
  readonly total: ReadonlyMap<string, number>;
  readonly healthy: ReadonlyMap<string, number>;
  readonly queued: ReadonlyMap<string, number>;
}

export interface ChildSide {
  readonly links: ReadonlyMap<string, ChildLinkView>;
  /** Send `item` down to `child`; bounces it when there is no link. */
  dispatch(child: string, item: WorkItem): void;
  /** A home attempt routed to `child` waits for its start to commit: it holds the link's credit meanwhile. */
  promise(child: string, item: WorkItem): void;
  /** Its start was decided (sent, refused, or this replica stopped leading): the credit it held goes. */
  unpromise(item: WorkItem): void;
  sendResult(child: string, r: TaskResult): void;
  sendCheckpoint(child: string, cp: TaskCheckpoint): void;
  sendCancel(child: string, ref: TaskRef): void;
  candidates(now: number): Candidate[];
  load(now: number): SubtreeLoad;
  /** From the cell timer: keepalives, silent links, hello deadlines. */
  tick(now: number): void;
}

/** The agents of a node cell, as the cell uses them. */
export interface AgentSide {
  /** Give `item` to the agent; bounces it when the agent cannot take it. */
  assign(agentId: string, item: WorkItem): void;
  cancel(agentId: string, ref: TaskRef, why: string): void;
  candidates(now: number): Candidate[];
  /** Version ramps: the side each candidate is on, each task's side (version-ramps.ts). */
  readonly versions: VersionRamps;
  /** One live agent's candidate, for a picker kept up to date (absent: the picker is rebuilt instead). */
  candidate?(agentId: string, now: number): Candidate | undefined;
  /** Context keys the agents reported holding warm (the picker asks before its ring). */
  readonly contexts?: ContextLookup;
  load(): SubtreeLoad;
  /** From the cell timer: heartbeats, hello deadlines, carried attempts. */
  sweep(now: number): void;
}

/** What is attached below and above a cell (set once, when the replica is wired). */
export interface Links {
  parent: ParentSide | undefined;
  children: ChildSide | undefined;
  agents: AgentSide | undefined;
}
