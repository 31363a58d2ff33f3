// Debounce and singleton keys: the part of the home ledger (src/mesh/ledger.ts)
// that folds submits of one key into one task (docs/flow-control.md,
// "Debounce and singleton"). Deterministic like the ledger: the times come
// from the `accepted` and `dispatched` commands, never from a clock, so every
// replica that applies the same log holds the same keys, and a new leader
// holds a debounced task exactly as the old one did.
//
// Invariants:
// - a debounce key names at most one task, and folds a submit into it only
//   while that task has not started (QUEUED, attempt 0) and the submit's time
//   is before its `untilMs`; `untilMs` never passes `firstMs` + the max wait,
//   so a key submitted to without pause still runs (it cannot starve);
// - a singleton key names at most one live task; the key is freed when that
//   task ends (ended(), called by the ledger's terminal transition).
import type { LedgerKeyed } from '../gen/meshlb/v1/ledger.js';
import { Durability, SingletonMode, TaskState, type TaskSpec } from '../gen/meshlb/v1/task.js';
import { LIMITS, overLimit } from '../util/limits.js';

/** What the keys need of a ledger record (src/mesh/ledger-record.ts TaskRecord). */
export interface KeyedRecord {
  readonly id: string;
  spec: TaskSpec;
  readonly state: TaskState;
  readonly attempt: number;
}

/** debounce_max_wait_ms 0: this many periods after the first submit. */
export const DEFAULT_MAX_WAIT_PERIODS = 10;

/**
 * What a submit of a keyed spec comes to: a new task (which may replace a
 * live singleton, to be cancelled), or folded into a task that exists.
 */
export type Admission =
  | { readonly type: 'new'; readonly replaces?: KeyedRecord }
  | { readonly type: 'merged' | 'skipped'; readonly rec: KeyedRecord };

const NEW: Admission = { type: 'new' };

interface Debounce {
  readonly taskId: string;
  readonly firstMs: number;
  untilMs: number;
}

/** The longest debounce period and max wait a spec may ask for. */
export const MAX_DEBOUNCE_PERIOD_MS = 3_600_000;
export const MAX_DEBOUNCE_WAIT_MS = 86_400_000;

/** Why a spec's debounce or singleton fields are unacceptable, or '' (src/mesh/task-validate.ts). */
export function keyedSpecProblem(spec: TaskSpec): string {
  const { debounceKey: dk, singletonKey: sk } = spec;
  const tooLong =
    overLimit('task.debounce_key', dk, LIMITS.tenant) || overLimit('task.singleton_key', sk, LIMITS.tenant);
  if (tooLong) return tooLong;
  if (!(spec.singletonMode in SingletonMode) || spec.singletonMode < 0)
    return `task.singleton_mode ${spec.singletonMode} is unknown`;
  if (!dk && (spec.debouncePeriodMs || spec.debounceMaxWaitMs)) return 'task.debounce_period_ms needs a debounce_key';
  if (!dk && !sk) return '';
  if (dk && sk) return 'a task names a debounce_key or a singleton_key, not both';
  // The key's task must outlive a leader change: it is in the replicated ledger.
  if (spec.durability === Durability.DURABILITY_NONE)
    return 'a task with a debounce or singleton key must be durability LOGGED';
  if (!dk) return '';
  const p = spec.debouncePeriodMs;
  if (p < 1 || p > MAX_DEBOUNCE_PERIOD_MS)
    return `task.debounce_period_ms must be 1 to ${MAX_DEBOUNCE_PERIOD_MS} with a debounce_key`;
  const w = spec.debounceMaxWaitMs;
  if (w !== 0 && (w < p || w > MAX_DEBOUNCE_WAIT_MS))
    return `task.debounce_max_wait_ms must be 0 (10 periods) or from the period to ${MAX_DEBOUNCE_WAIT_MS}`;
  return '';
}

export const maxWaitMs = (spec: TaskSpec): number =>
  spec.debounceMaxWaitMs || DEFAULT_MAX_WAIT_PERIODS * spec.debouncePeriodMs;

export class KeyedTasks {
  private readonly debounces = new Map<string, Debounce>();
  private readonly singletons = new Map<string, string>();

  /**
   * A task `id` with `spec` is being accepted at `atMs`; `live` finds a live
   * record by id. Registers the new task under its key when it is one.
   */
  admit(id: string, spec: TaskSpec, atMs: number, live: (id: string) => KeyedRecord | undefined): Admission {
    const dk = spec.debounceKey;
    if (dk) {
      const d = this.debounces.get(dk);
      const rec = d ? live(d.taskId) : undefined;
      if (d && rec && rec.state === TaskState.TASK_STATE_QUEUED && rec.attempt === 0 && atMs < d.untilMs) {
        // The last payload wins; the period and the cap are the first submit's.
        rec.spec = { ...rec.spec, payload: spec.payload };
        d.untilMs = Math.min(Math.max(d.untilMs, atMs + rec.spec.debouncePeriodMs), d.firstMs + maxWaitMs(rec.spec));
        return { type: 'merged', rec };
      }
      this.debounces.set(dk, { taskId: id, firstMs: atMs, untilMs: atMs + spec.debouncePeriodMs });
      return NEW;
    }
    const sk = spec.singletonKey;
    if (!sk) return NEW;
    const cur = this.singletons.get(sk);
    const rec = cur !== undefined ? live(cur) : undefined;
    if (rec && spec.singletonMode !== SingletonMode.SINGLETON_MODE_CANCEL) return { type: 'skipped', rec };
    this.singletons.set(sk, id);
    return rec ? { type: 'new', replaces: rec } : NEW;
  }

  /** The time before which the task may not start (its debounce window), or 0. */
  holdUntil(rec: KeyedRecord): number {
    const dk = rec.spec.debounceKey;
    const d = dk ? this.debounces.get(dk) : undefined;
    return d?.taskId === rec.id ? d.untilMs : 0;
  }

  /** The task ended: its keys are free. */
  ended(rec: KeyedRecord): void {
    const { debounceKey: dk, singletonKey: sk } = rec.spec;
    if (dk && this.debounces.get(dk)?.taskId === rec.id) this.debounces.delete(dk);
    if (sk && this.singletons.get(sk) === rec.id) this.singletons.delete(sk);
  }

  /** Keys held now (admin, tests). */
  get size(): { debounces: number; singletons: number } {
    return { debounces: this.debounces.size, singletons: this.singletons.size };
  }

  toProto(): LedgerKeyed {
    return {
      debounces: [...this.debounces].map(([key, d]) => ({ key, ...d })),
      singletons: [...this.singletons].map(([key, taskId]) => ({ key, taskId })),
    };
  }

  /** Replace the state with a snapshot's (absent in snapshots taken before these keys: empty). */
  restore(k: LedgerKeyed | undefined): void {
    this.debounces.clear();
    for (const { key, taskId, firstMs, untilMs } of k?.debounces ?? [])
      this.debounces.set(key, { taskId, firstMs, untilMs });
    this.singletons.clear();
    for (const s of k?.singletons ?? []) this.singletons.set(s.key, s.taskId);
  }
}
