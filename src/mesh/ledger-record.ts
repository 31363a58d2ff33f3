// A task's record in the home ledger and the commands that move it: the
// vocabulary the Ledger state machine (ledger.ts), its log entry codec
// (ledger-codec.ts), the logs in front of it and the services reading it share.
// Kept apart from the state machine so ledger.ts holds the transitions and
// their invariants, and the shapes can be read without them; ledger.ts
// re-exports everything here, so importers name one module.
import type { LedgerCellConfig, LedgerRecord } from '../gen/meshlb/v1/ledger.js';
import {
  Durability,
  MeshFailure,
  TaskSpec,
  TaskState,
  type Task,
  type TaskCheckpoint,
  type TaskResult,
} from '../gen/meshlb/v1/task.js';

export interface AcceptedTask {
  readonly id: string;
  readonly spec: TaskSpec;
  readonly homeCell: string;
  readonly atMs: number;
}

export type LedgerCommand =
  | { readonly type: 'accepted'; readonly tasks: readonly AcceptedTask[] }
  /** Attempt `attempt` (= current + 1) was dispatched. */
  | { readonly type: 'dispatched'; readonly refs: readonly { id: string; attempt: number }[]; readonly atMs: number }
  /** An agent acknowledged the assignment (optional, informative). */
  | { readonly type: 'running'; readonly id: string; readonly attempt: number; readonly atMs: number }
  | { readonly type: 'completed'; readonly result: TaskResult; readonly atMs: number }
  /**
   * The current attempt failed: agent error, agent or link lost, lease lapsed.
   * `counted` false = the attempt never started (e.g. refused for capacity):
   * it does not use up max_attempts. `fatal` ends the task at once.
   */
  | {
      readonly type: 'attemptFailed';
      readonly id: string;
      readonly attempt: number;
      readonly reason: string;
      readonly result?: TaskResult;
      readonly counted: boolean;
      readonly fatal?: boolean;
      /** Lease lapses and losses dead-letter when attempts run out; agent errors fail. */
      readonly lapse?: boolean;
      readonly atMs: number;
    }
  | { readonly type: 'cancelled'; readonly id: string; readonly reason: string; readonly atMs: number }
  | { readonly type: 'deadLettered'; readonly id: string; readonly reason: string; readonly atMs: number }
  /**
   * An operator replayed tasks that ended FAILED, DEAD_LETTERED or CANCELLED:
   * each starts a new attempt series (QUEUED, no failures counted, the attempt
   * number goes on growing as the fence). Others are answered and left alone.
   */
  | { readonly type: 'replayed'; readonly ids: readonly string[]; readonly reason: string; readonly atMs: number }
  /** The operator's drain of the cell (false lifts it). */
  | { readonly type: 'cellDrained'; readonly drain: boolean; readonly reason: string; readonly atMs: number }
  /** The operator's routing policy for the cell ('' = the topology's), its config as JSON ('' = defaults). */
  | { readonly type: 'policySet'; readonly policy: string; readonly configJson: string; readonly atMs: number }
  /** An agent of this node cell cordoned (no new assignments; it stays connected) or not. */
  | { readonly type: 'agentCordoned'; readonly agentId: string; readonly cordon: boolean; readonly atMs: number }
  /** A lingering concurrency permit came back: the agent answered, or the linger ended (src/flow). */
  | { readonly type: 'permitReturned'; readonly id: string; readonly attempt: number; readonly atMs: number }
  /** An operator set a concurrency key's limit (0: back to the topology's). */
  | {
      readonly type: 'flowLimitSet';
      readonly key: string;
      readonly limit: number;
      /** '' = the topology's. */
      readonly strategy?: string;
      readonly atMs: number;
    }
  /** An operator set a kind's version ramp at this (node) cell ('' version: removed). */
  | {
      readonly type: 'versionRampSet';
      readonly kind: string;
      readonly version: string;
      readonly percent: number;
      readonly atMs: number;
    }
  /** The current attempt saved its progress (ledger-checkpoint.ts): the record keeps the latest. */
  | { readonly type: 'checkpointed'; readonly checkpoint: TaskCheckpoint; readonly atMs: number }
  /** An operator set a tenant's DRR weight (0: back to 1). */
  | { readonly type: 'tenantWeightSet'; readonly tenant: string; readonly weight: number; readonly atMs: number }
  /** An operator set a tenant's minimum and ceiling of slots (both 0: the topology's). */
  | {
      readonly type: 'tenantShareSet';
      readonly tenant: string;
      readonly min: number;
      readonly max: number;
      readonly atMs: number;
    }
  /** An operator set a concurrency key's weight, minimum and ceiling (all 0: the topology's). */
  | {
      readonly type: 'keyShareSet';
      readonly key: string;
      readonly weight: number;
      readonly min: number;
      readonly max: number;
      readonly atMs: number;
    };

/**
 * What operators set on the cell through its log (AdminService): replicated
 * with the ledger, so every replica and every later leader holds the same.
 */
export interface CellConfig {
  draining: boolean;
  drainReason: string;
  /** '' = the topology's policy. */
  policy: string;
  policyConfigJson: string;
  /** Cordoned agent ids, in the order they were cordoned (at most MAX_CORDONED). */
  readonly cordoned: Set<string>;
  /** Version ramps by kind (at most MAX_RAMPS): src/mesh/version-ramps.ts. */
  readonly versionRamps: Map<string, VersionRamp>;
}

/** A share of a kind's tasks for agents of a new version (docs/flow-control.md, "Version ramps"). */
export interface VersionRamp {
  readonly version: string;
  /** 0 to 100. */
  readonly percent: number;
}

/** Kinds with a ramp a cell remembers. */
export const MAX_RAMPS = 1000;

/** Cordoned agents a cell remembers: about a node's agents, far above a real fleet per node. */
export const MAX_CORDONED = 10_000;

/** What apply() says about one command (or one task of a batch). */
export type ApplyResult =
  | {
      readonly ok: true;
      readonly id: string;
      readonly existing?: boolean;
      readonly state: TaskState;
      readonly attempt: number;
      /** An accepted task's singleton key (CANCEL) cancelled this live task in the same command. */
      readonly replaced?: string;
    }
  | {
      readonly ok: false;
      readonly id: string;
      /**
       * live: a replay of a task that has not ended; full: a cordon past
       * MAX_CORDONED or a ramp past MAX_RAMPS; limited: a dispatch past its
       * concurrency or rate limit, or inside its debounce window.
       */
      readonly why: 'unknown' | 'stale' | 'terminal' | 'live' | 'full' | 'limited';
      readonly state?: TaskState;
    };

/** The ledger's record of one task. Mutable inside the ledger only. */
export interface TaskRecord {
  readonly id: string;
  /** Replaced only by a debounce key folding a later submit's payload in (src/flow/keyed.ts). */
  spec: TaskSpec;
  readonly homeCell: string;
  readonly createdMs: number;
  state: TaskState;
  /** Fencing number of the current attempt; 0 before the first dispatch. */
  attempt: number;
  /** Failed attempts that count against max_attempts. */
  failures: number;
  updatedMs: number;
  result: TaskResult | undefined;
  reason: string;
  /** Times an operator replayed it (each a new attempt series). */
  replays: number;
  /** The attempt number the current series started from: its attempts are attempt - attemptBase. */
  attemptBase: number;
  /** Attempts preempted for a task of higher priority (uncounted), and the task that preempted the latest. */
  preemptions: number;
  preemptedBy: string;
  /** The last checkpoint an attempt saved (ledger-checkpoint.ts); its data is dropped once the task ends. */
  checkpoint: TaskCheckpoint | undefined;
}

/** The record of a task just accepted. */
export function newRecord(t: AcceptedTask): TaskRecord {
  return {
    id: t.id,
    spec: t.spec,
    homeCell: t.homeCell,
    createdMs: t.atMs,
    state: TaskState.TASK_STATE_QUEUED,
    attempt: 0,
    failures: 0,
    updatedMs: t.atMs,
    result: undefined,
    reason: '',
    replays: 0,
    attemptBase: 0,
    preemptions: 0,
    preemptedBy: '',
    checkpoint: undefined,
  };
}

/** A failed attempt's result; a preempted one (its output names the preempting task) is counted as such. */
export function keepResult(rec: TaskRecord, r: TaskResult): void {
  rec.result = r;
  if (r.meshFailure !== MeshFailure.MESH_FAILURE_PREEMPTED) return;
  rec.preemptions++;
  rec.preemptedBy = Buffer.from(r.output).toString('utf8').slice(0, 256);
}

const TERMINAL_STATES: ReadonlySet<TaskState> = new Set([
  TaskState.TASK_STATE_COMPLETED,
  TaskState.TASK_STATE_FAILED,
  TaskState.TASK_STATE_CANCELLED,
  TaskState.TASK_STATE_DEAD_LETTERED,
]);

export const isTerminal = (s: TaskState): boolean => TERMINAL_STATES.has(s);

/** The public view of a record. */
export function toProtoTask(rec: TaskRecord): Task {
  return {
    id: rec.id,
    spec: rec.spec,
    state: rec.state,
    attempt: rec.attempt,
    homeCell: rec.homeCell,
    createdUnixMs: rec.createdMs,
    updatedUnixMs: rec.updatedMs,
    result: rec.result,
    reason: rec.reason,
    // What and when, never the bytes (up to the checkpoint limit each).
    checkpoint: rec.checkpoint && { ...rec.checkpoint, data: NO_DATA },
    waiting: '', // the home leader's to say (home-refusals.ts `view`)
  };
}

const NO_DATA: Buffer = Buffer.alloc(0);

/** Is this task logged (replicated) or kept in the leader's memory only? */
export const isLogged = (spec: TaskSpec): boolean => spec.durability !== Durability.DURABILITY_NONE;

export function emptyConfig(): CellConfig {
  return {
    draining: false,
    drainReason: '',
    policy: '',
    policyConfigJson: '',
    cordoned: new Set(),
    versionRamps: new Map(),
  };
}

/** LedgerRecord has TaskRecord's fields (a record encodes as it is); a spec is always there. */
export const fromLedgerRecord = (r: LedgerRecord): TaskRecord => ({ ...r, spec: r.spec ?? TaskSpec.fromPartial({}) });

/** The operator's settings as a snapshot carries them. */
export const configToProto = (c: CellConfig): LedgerCellConfig => ({
  draining: c.draining,
  drainReason: c.drainReason,
  policy: c.policy,
  policyConfigJson: c.policyConfigJson,
  cordoned: [...c.cordoned],
  versionRamps: [...c.versionRamps].map(([kind, r]) => ({ kind, version: r.version, percent: r.percent })),
});

/** Replace `c` with a snapshot's settings (absent in snapshots taken before them: the defaults). */
export function restoreConfig(c: CellConfig, cfg: LedgerCellConfig | undefined): void {
  c.draining = cfg?.draining ?? false;
  c.drainReason = cfg?.drainReason ?? '';
  c.policy = cfg?.policy ?? '';
  c.policyConfigJson = cfg?.policyConfigJson ?? '';
  c.cordoned.clear();
  for (const id of cfg?.cordoned ?? []) c.cordoned.add(id);
  c.versionRamps.clear();
  for (const r of cfg?.versionRamps ?? []) c.versionRamps.set(r.kind, { version: r.version, percent: r.percent });
}

/** Apply an operator's config command to `c`: undefined when applied, the refusal otherwise. */
export function applyConfig(
  c: CellConfig,
  cmd: Extract<LedgerCommand, { type: 'cellDrained' | 'policySet' | 'agentCordoned' | 'versionRampSet' }>,
): ApplyResult | undefined {
  switch (cmd.type) {
    case 'cellDrained':
      c.draining = cmd.drain;
      c.drainReason = cmd.drain ? cmd.reason : '';
      return undefined;
    case 'policySet':
      c.policy = cmd.policy;
      c.policyConfigJson = cmd.policy ? cmd.configJson : '';
      return undefined;
    case 'agentCordoned':
      if (cmd.cordon && !c.cordoned.has(cmd.agentId) && c.cordoned.size >= MAX_CORDONED) {
        return { ok: false, id: cmd.agentId, why: 'full' };
      }
      if (cmd.cordon) c.cordoned.add(cmd.agentId);
      else c.cordoned.delete(cmd.agentId);
      return undefined;
    case 'versionRampSet':
      if (!cmd.version) c.versionRamps.delete(cmd.kind);
      else if (!c.versionRamps.has(cmd.kind) && c.versionRamps.size >= MAX_RAMPS)
        return { ok: false, id: cmd.kind, why: 'full' };
      else c.versionRamps.set(cmd.kind, { version: cmd.version, percent: cmd.percent });
      return undefined;
  }
}
