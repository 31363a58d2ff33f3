// Friendly task input -> the wire TaskSpec, and helpers to read a Task's outcome.
import {
  Durability,
  Priority,
  SingletonMode,
  TaskState,
  type Label,
  type Task,
  type TaskSpec,
} from '../gen/meshlb/v1/task.js';

export type PriorityName = 'critical' | 'high' | 'normal' | 'low';
export type DurabilityName = 'logged' | 'none';

export interface TaskInput {
  /** Required: agents declare the kinds they run. */
  kind: string;
  /** Bytes as-is, a string as UTF-8, anything else as JSON. */
  payload?: Uint8Array | string | object | number | boolean | null;
  labels?: Record<string, string>;
  /** Labels an agent must carry to be eligible. */
  affinity?: Record<string, string>;
  priority?: PriorityName | Priority;
  tenant?: string;
  /** Same key -> same task (never a second one). Set it to make submits safe to retry. */
  idempotencyKey?: string;
  /** Absolute deadline: a Date or unix ms. Past it the task is dead-lettered. */
  deadline?: Date | number;
  /** Per-attempt run timeout (ms); 0/absent = the cell default. */
  timeoutMs?: number;
  /** 0/absent = the cell default. */
  maxAttempts?: number;
  /** 'logged' (default: never lost) or 'none' (fire-and-forget, opt-in). */
  durability?: DurabilityName | Durability;
  /**
   * The W3C traceparent (and tracestate) the task continues, e.g. from an
   * incoming request's headers. Unset: the submit's context decides (CallOpts.context).
   */
  traceParent?: string;
  traceState?: string;
  /**
   * Tasks with the same context key (a session, a conversation, a dataset, a prompt
   * prefix) return to the agent that ran the key last while it has room (docs/policies.md).
   */
  contextKey?: string;
  /** Only the key's holder may run it; the task waits for it (default: overflow allowed). */
  contextHard?: boolean;
  /** Flow control (docs/flow-control.md): at most the key's limit of its tasks run at once, mesh-wide. */
  concurrencyKey?: string;
  /** A rate-limit key of the topology, and the units this task spends of it (default 1). */
  rateLimitKey?: string;
  rateUnits?: number;
  /**
   * Debounce (docs/flow-control.md): submits with the same key within `periodMs` of
   * the last one make one task, run with the last payload, at most `maxWaitMs`
   * (default 10 periods) after the first. Every submit gets that task's id.
   */
  debounce?: { key: string; periodMs: number; maxWaitMs?: number };
  /**
   * Singleton: at most one live task per key. 'skip' (default): a submit while one
   * is live gets its id (`existing`); 'cancel': the live one is cancelled, this one runs.
   */
  singleton?: { key: string; mode?: 'skip' | 'cancel' };
  /** Slots it takes at once on one agent (docs/gang.md): it lands only where that many are free. Default 1. */
  slots?: number;
  /**
   * A gang (docs/gang.md): every member names the same id and size and is submitted in one
   * submitBatch (at a node cell, or above one: it goes down whole to one node); the members
   * start together on one node or not at all, and run once.
   */
  gang?: { id: string; size: number };
}

const PRIORITIES: Record<PriorityName, Priority> = {
  critical: Priority.PRIORITY_CRITICAL,
  high: Priority.PRIORITY_HIGH,
  normal: Priority.PRIORITY_NORMAL,
  low: Priority.PRIORITY_LOW,
};

const DURABILITIES: Record<DurabilityName, Durability> = {
  logged: Durability.DURABILITY_LOGGED,
  none: Durability.DURABILITY_NONE,
};

const EMPTY: Buffer = Buffer.alloc(0);

export function toPriority(p: TaskInput['priority']): Priority {
  if (p === undefined) return Priority.PRIORITY_UNSPECIFIED;
  if (typeof p === 'number') return p;
  const v = PRIORITIES[p];
  if (v === undefined) throw new TypeError(`unknown priority "${String(p)}" (critical, high, normal, low)`);
  return v;
}

export function toDurability(d: TaskInput['durability']): Durability {
  if (d === undefined) return Durability.DURABILITY_UNSPECIFIED;
  if (typeof d === 'number') return d;
  const v = DURABILITIES[d];
  if (v === undefined) throw new TypeError(`unknown durability "${String(d)}" (logged, none)`);
  return v;
}

export function toSingletonMode(m: 'skip' | 'cancel' | undefined): SingletonMode {
  if (m === undefined) return SingletonMode.SINGLETON_MODE_UNSPECIFIED;
  if (m === 'skip') return SingletonMode.SINGLETON_MODE_SKIP;
  if (m === 'cancel') return SingletonMode.SINGLETON_MODE_CANCEL;
  throw new TypeError(`unknown singleton mode "${String(m)}" (skip, cancel)`);
}

export function encodePayload(p: TaskInput['payload']): Buffer {
  if (p === undefined) return EMPTY;
  if (Buffer.isBuffer(p)) return p;
  if (p instanceof Uint8Array) return Buffer.from(p.buffer, p.byteOffset, p.byteLength);
  if (typeof p === 'string') return Buffer.from(p, 'utf8');
  return Buffer.from(JSON.stringify(p), 'utf8');
}

function labels(rec: Record<string, string> | undefined): Label[] {
  if (!rec) return [];
  const out: Label[] = [];
  for (const key in rec) out.push({ key, value: String(rec[key]) });
  return out;
}

/** Friendly input -> wire spec. Throws TypeError on input that cannot be converted. */
export function toTaskSpec(t: TaskInput): TaskSpec {
  if (!t || typeof t.kind !== 'string') throw new TypeError('task.kind (a string) is required');
  const deadline = t.deadline instanceof Date ? t.deadline.getTime() : (t.deadline ?? 0);
  if (t.slots !== undefined && !(Number.isInteger(t.slots) && t.slots >= 1))
    throw new TypeError(`task.slots must be an integer >= 1, got ${String(t.slots)}`);
  return {
    idempotencyKey: t.idempotencyKey ?? '',
    kind: t.kind,
    labels: labels(t.labels),
    affinity: labels(t.affinity),
    priority: toPriority(t.priority),
    tenant: t.tenant ?? '',
    deadlineUnixMs: deadline,
    timeoutMs: t.timeoutMs ?? 0,
    maxAttempts: t.maxAttempts ?? 0,
    payload: encodePayload(t.payload),
    durability: toDurability(t.durability),
    traceParent: t.traceParent ?? '',
    traceState: t.traceState ?? '',
    contextKey: t.contextKey ?? '',
    contextHard: t.contextHard ?? false,
    concurrencyKey: t.concurrencyKey ?? '',
    rateLimitKey: t.rateLimitKey ?? '',
    rateUnits: t.rateUnits ?? 0,
    debounceKey: t.debounce?.key ?? '',
    debouncePeriodMs: t.debounce?.periodMs ?? 0,
    debounceMaxWaitMs: t.debounce?.maxWaitMs ?? 0,
    singletonKey: t.singleton?.key ?? '',
    singletonMode: toSingletonMode(t.singleton?.mode),
    slots: t.slots ?? 0,
    gangId: t.gang?.id ?? '',
    gangSize: t.gang?.size ?? 0,
  };
}

const TERMINAL_STATES: ReadonlySet<TaskState> = new Set([
  TaskState.TASK_STATE_COMPLETED,
  TaskState.TASK_STATE_FAILED,
  TaskState.TASK_STATE_CANCELLED,
  TaskState.TASK_STATE_DEAD_LETTERED,
]);

export function isTerminal(state: TaskState): boolean {
  return TERMINAL_STATES.has(state);
}

export type TaskStateName =
  'unspecified' | 'queued' | 'dispatched' | 'running' | 'completed' | 'failed' | 'cancelled' | 'dead_lettered';

export function taskStateName(state: TaskState): TaskStateName {
  const n = TaskState[state];
  return (n ? n.replace('TASK_STATE_', '').toLowerCase() : 'unspecified') as TaskStateName;
}

/**
 * A task record as the client returns it: the protocol's `Task`, with its state also by
 * name, so a record printed or logged says `completed` where `state` says 4.
 */
export interface TaskRecord extends Task {
  readonly stateName: TaskStateName;
}

/** `task` with its `stateName` set (the same object). */
export function withStateName(task: Task): TaskRecord {
  return Object.assign(task, { stateName: taskStateName(task.state) });
}

/** The task's result output as UTF-8 text ('' when none). */
export function outputText(task: Task): string {
  return task.result ? Buffer.from(task.result.output).toString('utf8') : '';
}

/** The task's result output parsed as JSON (undefined when empty). */
export function outputJson<T = unknown>(task: Task): T | undefined {
  const s = outputText(task);
  return s ? (JSON.parse(s) as T) : undefined;
}
