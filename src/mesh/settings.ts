// A cell's settings, resolved once: the topology's defaults, then the
// options a replica was started with (tests and `meshlb dev` shorten them).
import type { TaskSpec } from '../gen/meshlb/v1/task.js';
import type { MeshDefaults, Tier } from '../topology/types.js';
import { DEFAULT_BATCHER_OPTIONS, type BatcherOptions } from './batcher.js';
import { FORECAST_SETTINGS, type ForecastSettings } from '../forecast/index.js';
import type { CellOptions } from './types.js';

export interface CellSettings {
  readonly heartbeatIntervalMs: number;
  readonly heartbeatTimeoutMs: number;
  readonly maxPayloadBytes: number;
  readonly maxMessageBytes: number;
  readonly queueCapacity: number;
  readonly forwardBuffer: number;
  readonly taskTimeoutMs: number;
  readonly maxAttempts: number;
  readonly summaryIntervalMs: number;
  readonly linkTimeoutMs: number;
  readonly leaseSlackMs: number;
  readonly backoffBaseMs: number;
  readonly backoffMaxMs: number;
  readonly tickMs: number;
  readonly retention: number;
  readonly maxAgentSlots: number;
  readonly prefetchRatio: number;
  readonly stealBatch: number;
  readonly forecast: ForecastSettings;
  readonly unplaceableTimeoutMs: number;
  /** Checkpoints (docs/agent-protocol.md): the size limit, and at most one log entry per task per interval. */
  readonly checkpointMaxBytes: number;
  readonly checkpointIntervalMs: number;
  readonly batcher: BatcherOptions;
  /** New agent streams a node replica admits per second (agent-admission.ts); 0: no bound. */
  readonly helloRatePerSecond: number;
  /** A node cell (agents connect to it). */
  readonly nodeTier: boolean;
}

/** 1 MiB: a checkpoint's default size limit. */
export const DEFAULT_CHECKPOINT_MAX_BYTES = 1 << 20;

export function resolveSettings(d: MeshDefaults, opts: CellOptions, tier?: Tier): CellSettings {
  return {
    heartbeatIntervalMs: opts.heartbeatIntervalMs ?? d.heartbeatIntervalMs,
    heartbeatTimeoutMs: opts.heartbeatTimeoutMs ?? d.heartbeatTimeoutMs,
    maxPayloadBytes: opts.maxPayloadBytes ?? d.maxPayloadBytes,
    maxMessageBytes: d.maxMessageBytes,
    queueCapacity: opts.queueCapacity ?? d.queueCapacity,
    forwardBuffer: opts.forwardBuffer ?? 4096,
    taskTimeoutMs: opts.taskTimeoutMs ?? d.taskTimeoutMs,
    maxAttempts: opts.maxAttempts ?? d.maxAttempts,
    summaryIntervalMs: opts.summaryIntervalMs ?? d.summaryIntervalMs,
    linkTimeoutMs: opts.linkTimeoutMs ?? d.linkTimeoutMs ?? 2000,
    leaseSlackMs: opts.leaseSlackMs ?? 2000,
    backoffBaseMs: opts.backoffBaseMs ?? 50,
    backoffMaxMs: opts.backoffMaxMs ?? 5000,
    tickMs: opts.tickMs ?? 10,
    retention: opts.retention ?? 100_000,
    maxAgentSlots: opts.maxAgentSlots ?? 10_000,
    prefetchRatio: opts.prefetchRatio ?? 0.5,
    stealBatch: opts.stealBatch ?? 32,
    // The topology's off switch for pre-positioning, then the replica's own options.
    forecast: { ...FORECAST_SETTINGS, ...(d.forecastPrefetch === false ? { prefetchCap: 0 } : {}), ...opts.forecast },
    unplaceableTimeoutMs: opts.unplaceableTimeoutMs ?? d.unplaceableTimeoutMs,
    // Room for the rest of a message: a checkpoint travels in one, with its task's dispatch.
    checkpointMaxBytes: Math.min(opts.checkpointMaxBytes ?? DEFAULT_CHECKPOINT_MAX_BYTES, d.maxMessageBytes / 4),
    checkpointIntervalMs: opts.checkpointIntervalMs ?? 500,
    batcher: { ...DEFAULT_BATCHER_OPTIONS, ...opts.batcher },
    helloRatePerSecond: opts.helloRatePerSecond ?? d.helloRatePerSecond,
    nodeTier: tier === 'node',
  };
}

/** The lease of an attempt of `spec`: its timeout (or the default) plus the slack. */
export function leaseFor(spec: TaskSpec, s: CellSettings): number {
  return (spec.timeoutMs || s.taskTimeoutMs) + s.leaseSlackMs;
}

/**
 * The lease of an attempt handed up to the parent (spilled): it may wait at
 * the top of the tree for an agent of its kind, up to unplaceableTimeoutMs,
 * before it runs or is answered "no agent of kind X".
 */
export function spilledLeaseFor(spec: TaskSpec, s: CellSettings): number {
  return leaseFor(spec, s) + s.unplaceableTimeoutMs;
}

/** The wait before retrying a task after its `failures`-th failure: exponential up to the cap, with jitter (half to all of it). */
export function retryBackoff(s: CellSettings, failures: number, random: () => number): number {
  const cap = Math.min(s.backoffMaxMs, s.backoffBaseMs * 2 ** Math.min(20, Math.max(0, failures - 1)));
  return cap / 2 + random() * (cap / 2);
}
