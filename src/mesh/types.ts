// Shared vocabulary of the mesh core: work items, where they came from, where
// they went, and the options of one cell replica.
import type { Dispatch, TaskResult, TaskSpec } from '../gen/meshlb/v1/task.js';
import { Priority as PbPriority, ResultStatus } from '../gen/meshlb/v1/task.js';
import type { Priority } from '../queue/index.js';
import type { Logger } from '../util/log.js';
import type { BatcherOptions } from './batcher.js';

/**
 * Where an attempt came from, so its result goes back the same way:
 * home = this cell owns the task (its ledger records the outcome);
 * parent = dispatched to us by the parent; child = spilled up by that child.
 */
export type Origin = { readonly t: 'home' } | { readonly t: 'parent' } | { readonly t: 'child'; readonly cell: string };

/** Where this cell sent an attempt. */
export type Via =
  | { readonly t: 'child'; readonly cell: string }
  | { readonly t: 'agent'; readonly agentId: string }
  | { readonly t: 'parent' };

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
  readonly leaseMs: number;
  readonly origin: Origin;
  /** A child that spilled this item up (its subtree cannot serve it). */
  readonly exclude: string | undefined;
  /** Where it went; undefined while queued here. */
  via: Via | undefined;
  /** When it was sent on (ms). */
  sentMs: number;
}

export const routeKey = (taskId: string, attempt: number): string => `${taskId}#${attempt}`;

export function pbPriorityName(p: PbPriority): Priority {
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
 * Results the mesh itself makes when an attempt is lost (agent died, link
 * broke, stream overflowed). `lost:` failures count as an attempt and are
 * retried at once; `requeue:` failures mean the attempt never started
 * (refused for capacity) and do not count against max_attempts.
 */
export const LOST_PREFIX = 'lost: ';
export const REQUEUE_PREFIX = 'requeue: ';

export function meshFailure(
  taskId: string,
  attempt: number,
  error: string,
  where: { agentId?: string; nodeCell?: string } = {},
): TaskResult {
  return {
    taskId,
    attempt,
    status: ResultStatus.RESULT_STATUS_ERROR,
    output: Buffer.alloc(0),
    error,
    agentId: where.agentId ?? '',
    nodeCell: where.nodeCell ?? '',
    runMicros: 0,
  };
}

export interface CellOptions {
  /** Clock, ms since the epoch. Default Date.now. */
  readonly now?: () => number;
  /** Uniform [0,1). Default: seeded from `seed`, else Math.random. */
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
  /** Node tier: extra credits offered upward as a fraction of agent slots (a local prefetch queue). Default 0.5. */
  readonly prefetchRatio?: number;
  /** Max slots one agent may declare. Default 10,000. */
  readonly maxAgentSlots?: number;
}
