// Shared vocabulary of the mesh core: work items, where they came from, where
// they went, the results the mesh makes itself, and the options of one cell
// replica.
import type { Dispatch, TaskCheckpoint, TaskRef, TaskResult, TaskSpec } from '../gen/meshlb/v1/task.js';
import { MeshFailure, Priority as PbPriority, ResultStatus } from '../gen/meshlb/v1/task.js';
import type { Priority } from '../queue/index.js';
import type { LogFactory } from './leadership.js';
import type { MeterFactory } from './meter.js';
import type { TracerFactory } from './tracer.js';
import type { Logger } from '../util/log.js';
import type { BatcherOptions } from './batcher.js';
import type { Scheduler } from './scheduler.js';
import type { ForecastSettings } from '../forecast/index.js';
import { slotsOf } from './slot-map.js';

/**
 * Where an attempt came from, so its result goes back the same way:
 * home = this cell owns the task (its ledger records the outcome);
 * parent = dispatched to us by the parent; child = spilled up by that child.
 */
export type Origin =
  { readonly type: 'home' } | { readonly type: 'parent' } | { readonly type: 'child'; readonly cell: string };

/** Where this cell sent an attempt. */
export type Via =
  | { readonly type: 'child'; readonly cell: string }
  | { readonly type: 'agent'; readonly agentId: string }
  | { readonly type: 'parent' };

/** The origins and the via that carry no data: shared, not allocated per item. */
export const FROM_HOME: Origin = { type: 'home' };
export const FROM_PARENT: Origin = { type: 'parent' };
export const TO_PARENT: Via = { type: 'parent' };

/**
 * One attempt of one task held by a cell (queued or sent on). Its `id` is the
 * route key `${taskId}#${attempt}`, except for home items that wait for their
 * next attempt number: `${taskId}#next`.
 */
export interface WorkItem {
  /** QueueTask fields (src/queue). */
  readonly id: string;
  readonly kind: string;
  readonly priority: Priority;
  readonly tenant: string;
  readonly deadline?: number;

  readonly taskId: string;
  /** 0 for a home item until dispatch assigns the next attempt. */
  attempt: number;
  /** routeKey(taskId, attempt) once the attempt is known ('' before): computed once per hop. */
  key: string;
  /** The Dispatch this item arrived as (forwarded items): sent on as it is, no copy. */
  readonly wire: Dispatch | undefined;
  readonly homeCell: string;
  readonly spec: TaskSpec;
  /** Set when the item is made; a home attempt handed up to the parent gets a longer one (spilledLeaseFor). */
  leaseMs: number;
  readonly origin: Origin;
  /** A child that spilled this item up (its subtree cannot serve it). */
  readonly exclude: string | undefined;
  /** Where it went; undefined while queued here. */
  via: Via | undefined;
  /** When it was sent on (ms). */
  sentMs: number;
  /** When the task came to this cell (ms): forwarded here, or submitted (home items; metrics measure from it). */
  arrivedMs: number;
  /**
   * The W3C traceparent of this cell's span for the attempt, set when it is
   * sent on by a cell that traces (tracer.ts), '' otherwise: the Dispatch
   * carries it (wire.ts), so the next tier's span is its child.
   */
  traceParent: string;
  /** A home attempt's checkpoint to resume from (set as it leaves, home.ts); forwarded items carry it in `wire`. */
  checkpoint: TaskCheckpoint | undefined;
  /** Why it waits here when the reason is its own (several slots: docs/gang.md), '' otherwise: GetTask says it. */
  waitingFor: string;
  /**
   * Sent for a tenant under its guaranteed minimum (set by the home's dispatcher; forwarded items
   * carry it in `wire`): every queue it waits in serves it ahead of its kind's others (src/queue).
   */
  guaranteed: boolean;
  /**
   * The number of this cell's latest send of it on a link (Dispatch.send; 0: not sent on a link): an
   * ack, nack or give-back naming another send of the attempt is a late answer to an earlier one.
   */
  sendNo: number;
  /** The Dispatch.send it arrived with from the parent or a child (0: none): echoed when it is given back. */
  cameAs: number;
  /** A home attempt: refusals it kept its number through (home-refusals.ts), and when its lease lapses (ms). */
  refusals: number;
  leaseDue: number;
  /** The latest refusal of a send of it, while it waits here again (refusal-wait.ts); undefined: none. */
  refused: RefusalNote | undefined;
}

/**
 * Why a refused attempt waits here again, and until when (refusal-wait.ts): the cell that refused it,
 * the refusal's text, when it may leave again (ms; 0: at once), and the child that said no agent below
 * matches its affinity with that child's label description then ('' / undefined: none said so).
 */
export interface RefusalNote {
  by: string;
  why: string;
  resendAt: number;
  noMatchChild: string;
  noMatchLabels: string | undefined;
}

/** An attempt given back, and the Dispatch.send it came with (GivenBack.sends: the parent ignores an earlier send's). */
export interface GivenRef extends TaskRef {
  readonly send: number;
}

/** Send numbers 1, 2, ... (Dispatch.send; wrapping within uint32, never 0): one counter per cell side. */
export function sendCounter(): () => number {
  let n = 0;
  return () => (n = n >= 0xffffffff ? 1 : n + 1);
}

export const routeKey = (taskId: string, attempt: number): string => `${taskId}#${attempt}`;

/** The id of a home task's item while it waits for its next attempt number. */
export const nextAttemptId = (taskId: string): string => `${taskId}#next`;

export function makeItem(
  taskId: string,
  attempt: number,
  homeCell: string,
  spec: TaskSpec,
  origin: Origin,
  exclude: string | undefined,
  id: string,
  leaseMs: number,
  wire: Dispatch | undefined,
  now: number,
): WorkItem {
  // One object shape for every item (no conditional spread): monomorphic access on the hot path.
  return {
    id,
    kind: spec.kind,
    priority: pbPriorityName(spec.priority),
    tenant: spec.tenant,
    deadline: spec.deadlineUnixMs > 0 ? spec.deadlineUnixMs : undefined,
    taskId,
    attempt,
    key: attempt > 0 ? id : '',
    wire,
    homeCell,
    spec,
    leaseMs,
    origin,
    exclude,
    via: undefined,
    sentMs: now,
    arrivedMs: now,
    traceParent: '',
    checkpoint: undefined,
    waitingFor: '',
    guaranteed: wire?.guaranteed ?? false,
    sendNo: 0,
    cameAs: 0,
    refusals: 0,
    leaseDue: 0,
    refused: undefined,
  };
}

function pbPriorityName(p: PbPriority): Priority {
  switch (p) {
    case PbPriority.PRIORITY_CRITICAL:
      return 'critical';
    case PbPriority.PRIORITY_HIGH:
      return 'high';
    case PbPriority.PRIORITY_LOW:
      return 'low';
    default:
      return 'normal';
  }
}

/**
 * How the mesh itself ends an attempt it cannot run:
 * - lost: it may have run and is gone (agent died, link broke, stream
 *   overflowed); counts as an attempt, retried at once;
 * - requeue: it never started (refused for capacity); not counted;
 * - unplaceable: no agent of its kind anywhere it could go, for
 *   unplaceableTimeoutMs; the home dead-letters the task;
 * - rejected: the task itself is unacceptable; fatal;
 * - preempted: stopped at its node for a task of higher priority (preemptor.ts);
 *   not counted, like requeue.
 */
export type MeshFailureKind = 'lost' | 'requeue' | 'unplaceable' | 'rejected' | 'preempted';

/** Why a task of a kind nobody serves is dead-lettered (unplaceable.ts), at every tier. */
export const noAgentOfKind = (kind: string): string => `no agent of kind ${kind}`;

/** Why a task whose affinity no agent matches is dead-lettered (unplaceable.ts): "no agent of kind X matches k=v, ...". */
export const noAgentMatches = (kind: string, affinity: readonly { key: string; value: string }[]): string =>
  `${noAgentOfKind(kind)} matches ${affinity.map((l) => `${l.key}=${l.value}`).join(', ')}`;

/**
 * Why a task that waited out unplaceableTimeoutMs above its home is
 * dead-lettered: "no agent of kind X", or the reason the cell that gave up
 * sent for a task of several slots ("no agent with N slots") or with affinity
 * ("no agent of kind X matches gpu=h100").
 */
export function unplaceableWhy(spec: TaskSpec, error: string): string {
  const sent = 'unplaceable: ';
  const told = slotsOf(spec) > 1 || spec.affinity.length > 0;
  return told && error.startsWith(sent) ? error.slice(sent.length) : noAgentOfKind(spec.kind);
}

const MESH_FAILURES: Record<MeshFailureKind, MeshFailure> = {
  lost: MeshFailure.MESH_FAILURE_LOST,
  requeue: MeshFailure.MESH_FAILURE_REQUEUE,
  unplaceable: MeshFailure.MESH_FAILURE_UNPLACEABLE,
  preempted: MeshFailure.MESH_FAILURE_PREEMPTED,
  rejected: MeshFailure.MESH_FAILURE_UNSPECIFIED,
};

/**
 * The result the mesh sends toward an attempt's origin when it fails the
 * attempt itself. The kind travels typed (TaskResult.mesh_failure); the error
 * text says the same for people.
 */
export function meshFailure(
  item: { readonly taskId: string; readonly attempt: number },
  kind: MeshFailureKind,
  why: string,
  nodeCell: string,
): TaskResult {
  return {
    taskId: item.taskId,
    attempt: item.attempt,
    status: kind === 'rejected' ? ResultStatus.RESULT_STATUS_FATAL : ResultStatus.RESULT_STATUS_ERROR,
    output: Buffer.alloc(0),
    error: kind === 'rejected' ? `rejected at ${nodeCell}: ${why}` : `${kind}: ${why}`,
    agentId: '',
    nodeCell,
    runMicros: 0,
    meshFailure: MESH_FAILURES[kind],
    retryAfterMs: 0,
  };
}

/** Counters of one cell (tests, the bench). */
export interface CellStats {
  /** Attempts sent on to a child or an agent since this replica started (AdminService GetCell). */
  dispatched: number;
  /** Items handed up to the parent. */
  spilled: number;
  /** Tasks this cell gave back to its parent for an idle sibling (work stealing). */
  givenBack: number;
  /** Pumps that left work of a kind queued for want of credit (at low rates this should stay 0). */
  creditStalls: number;
  /** Pumps that found work queued (dispatched per pump: how much one pump batches). */
  pumps: number;
}

export interface CellOptions {
  /**
   * Clock, timers and deferred turns. Default: the real ones. A virtual
   * scheduler (virtual-scheduler.ts) runs a cell on simulated time.
   */
  readonly scheduler?: Scheduler;
  /** Clock, ms since the epoch: overrides the scheduler's clock only (its timers stay). */
  readonly now?: () => number;
  /** Uniform [0,1). Default: seeded from `seed`, else the platform's. */
  readonly random?: () => number;
  readonly seed?: number;
  readonly log?: Logger;
  /** Terminal tasks kept by the ledger (Get/Watch, idempotency). Default 100,000. */
  readonly retention?: number;
  /** Tasks a non-home cell buffers before it nacks dispatches. Default 4,096. */
  readonly forwardBuffer?: number;
  /** Added to a task's timeout to make its lease. Default 2,000 ms. */
  readonly leaseSlackMs?: number;
  /** Retry backoff: base·2^(n-1), capped, with full jitter. Defaults 50 ms, 5,000 ms. */
  readonly backoffBaseMs?: number;
  readonly backoffMaxMs?: number;
  /** Sweep period of the timer wheel. Default 10 ms. */
  readonly tickMs?: number;
  readonly batcher?: Partial<BatcherOptions>;
  /** Overrides of the topology defaults (tests use short heartbeats). */
  readonly heartbeatIntervalMs?: number;
  readonly heartbeatTimeoutMs?: number;
  readonly maxPayloadBytes?: number;
  readonly queueCapacity?: number;
  readonly taskTimeoutMs?: number;
  readonly maxAttempts?: number;
  readonly summaryIntervalMs?: number;
  /**
   * A parent-child link with no message for this long is dead: the parent ends
   * the child's stream (its attempts fail back as lost), the child cancels and
   * reconnects. Both ends send at least every summaryIntervalMs. Default: the
   * topology's defaults.linkTimeoutMs (2,000 ms).
   */
  readonly linkTimeoutMs?: number;
  /** Addresses of the parent's replicas (dev overrides the topology's). */
  readonly parentAddresses?: () => readonly string[];
  /** A task of a kind no agent serves waits this long where it cannot go further. Default: the topology's defaults.unplaceableTimeoutMs. */
  readonly unplaceableTimeoutMs?: number;
  /** Node tier: extra credits offered upward as a fraction of agent slots (a local prefetch queue). Default 0.5. */
  readonly prefetchRatio?: number;
  /** Work stealing (steal.ts): at most this many tasks taken back from one child per ask; 0 turns it off. Default 32. */
  readonly stealBatch?: number;
  /** Forecasts, pre-positioning and scale recommendations (forecasts.ts); unset keys: the defaults. */
  readonly forecast?: Partial<ForecastSettings>;
  /** Max slots one agent may declare. Default 10,000. */
  readonly maxAgentSlots?: number;
  /** New agent streams a node replica admits per second (agent-admission.ts); 0: no bound. Default: the topology's. */
  readonly helloRatePerSecond?: number;
  /** The largest checkpoint an agent may save (bytes, under the max message size). Default 1 MiB. */
  readonly checkpointMaxBytes?: number;
  /** A logged task's checkpoints go to the log at most once per this interval (ms), the latest winning. Default 500. */
  readonly checkpointIntervalMs?: number;
  /**
   * The cell's log and leadership over its (empty) ledger. Default: one local
   * replica that leads from start() and keeps its ledger in memory. The
   * replica passes the Raft one (raft-cell.ts) for replicated or durable cells.
   */
  readonly replicatedLog?: LogFactory;
  /** Metrics for the cell (src/admin/metrics.ts `meter`). Default: none. */
  readonly meter?: MeterFactory;
  /** Traces of the tasks crossing the cell (src/trace `cellTracer`). Default: none (NO_TRACER). */
  readonly tracer?: TracerFactory;
}
