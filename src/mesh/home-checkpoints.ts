// The home leader's side of checkpoints: what reaches the ledger, and how often.
//
// An agent may checkpoint as often as it likes; the home logs at most one
// `checkpointed` command per task per `checkpointIntervalMs` (default 500 ms),
// the latest winning: a checkpoint that comes sooner waits here (replacing any
// that waited) and goes to the log when the interval is up, or at once, in
// the same entry and before it, when the task's next attempt is dispatched
// (takePending), so that attempt resumes from it. A task of durability NONE
// lives in the leader's memory: its checkpoints apply at once.
//
// Soft state, the leader's: waiting checkpoints die with its leadership (the
// agent's next checkpoint reaches the new leader); what the log holds stays.
import type { TaskCheckpoint } from '../gen/meshlb/v1/task.js';
import { clip } from '../util/limits.js';
import type { Logger } from '../util/log.js';
import { checkpointable, resumable } from './ledger-checkpoint.js';
import { isLogged, type ApplyResult, type Ledger, type LedgerCommand, type TaskRecord } from './ledger.js';
import type { Scheduler } from './scheduler.js';
import type { CellSettings } from './settings.js';
import type { WorkItem } from './types.js';

/** What HomeCheckpoints uses of Home (home.ts). */
export interface CheckpointHost {
  readonly ledger: Ledger;
  readonly settings: CellSettings;
  readonly scheduler: Scheduler;
  readonly log: Logger;
  readonly d: { leading(): boolean };
  commit(cmd: LedgerCommand, logged: boolean, then?: (r: ApplyResult[]) => void, failed?: (err: unknown) => void): void;
}

export interface CheckpointStats {
  /** Checkpoints that reached the home. */
  received: number;
  /** `checkpointed` commands proposed (logged tasks) or applied (NONE). */
  recorded: number;
  /** Replaced by a later one before they were logged (coalesced). */
  coalesced: number;
  /** Of an attempt that is not current, or a task that ended: dropped. */
  stale: number;
  /** Over checkpointMaxBytes: dropped. */
  oversize: number;
}

/** What a new attempt of the task resumes from (ledger-checkpoint.ts). */
export const resumableOf = (rec: TaskRecord | undefined): TaskCheckpoint | undefined => rec && resumable(rec);

export class HomeCheckpoints {
  /** Task id → the latest checkpoint not logged yet. */
  private readonly pending = new Map<string, TaskCheckpoint>();
  /** Task id → when its last checkpoint was proposed (ms); dropped once the interval is over. */
  private readonly lastMs = new Map<string, number>();
  /** Tasks with a flush timer armed. */
  private readonly armed = new Set<string>();
  readonly stats: CheckpointStats = { received: 0, recorded: 0, coalesced: 0, stale: 0, oversize: 0 };

  constructor(private readonly h: CheckpointHost) {
    h.ledger.onTerminal((rec) => {
      this.pending.delete(rec.id);
      this.lastMs.delete(rec.id);
    });
  }

  /** A checkpoint of one of our tasks arrived (from an agent, through the tree). */
  offer(cp: TaskCheckpoint): void {
    const h = this.h;
    if (!h.d.leading()) return;
    this.stats.received++;
    const rec = h.ledger.live(cp.taskId);
    if (!checkpointable(rec, cp.attempt)) {
      this.stats.stale++;
      return;
    }
    if (cp.data.length > h.settings.checkpointMaxBytes) {
      this.stats.oversize++;
      const fields = { task: clip(cp.taskId), attempt: cp.attempt, bytes: cp.data.length };
      h.log.warn({ ...fields, max: h.settings.checkpointMaxBytes }, 'checkpoint over the size limit; dropped');
      return;
    }
    const now = h.scheduler.now();
    if (!isLogged(rec.spec)) {
      this.stats.recorded++;
      h.ledger.apply({ type: 'checkpointed', checkpoint: cp, atMs: now });
      return;
    }
    const prev = this.pending.get(cp.taskId);
    if (prev && prev.attempt === cp.attempt && prev.seq > cp.seq) return;
    if (prev) this.stats.coalesced++;
    this.pending.set(cp.taskId, cp);
    const last = this.lastMs.get(cp.taskId);
    const interval = h.settings.checkpointIntervalMs;
    if (last === undefined || now - last >= interval) this.flush(cp.taskId);
    else this.arm(cp.taskId, last + interval - now);
  }

  /** Before new attempts of `items` are dispatched: their waiting checkpoints, to log first. */
  takePending(items: readonly WorkItem[]): LedgerCommand[] {
    if (this.pending.size === 0) return [];
    const out: LedgerCommand[] = [];
    const atMs = this.h.scheduler.now();
    for (const it of items) {
      const cp = this.pending.get(it.taskId);
      if (!cp) continue;
      this.pending.delete(it.taskId);
      this.lastMs.set(it.taskId, atMs);
      this.stats.recorded++;
      out.push({ type: 'checkpointed', checkpoint: cp, atMs });
    }
    return out;
  }

  /** This replica stopped leading: what waited is the new leader's to receive again. */
  clear(): void {
    this.pending.clear();
    this.lastMs.clear();
  }

  /** Waiting checkpoints (tests, metrics). */
  get waiting(): number {
    return this.pending.size;
  }

  private arm(id: string, ms: number): void {
    if (this.armed.has(id)) return;
    this.armed.add(id);
    this.h.scheduler.setTimer(Math.max(1, ms), () => {
      this.armed.delete(id);
      if (this.h.d.leading() && this.pending.has(id)) this.flush(id);
    });
  }

  private flush(id: string): void {
    const cp = this.pending.get(id);
    if (!cp) return;
    this.pending.delete(id);
    const h = this.h;
    const atMs = h.scheduler.now();
    this.lastMs.set(id, atMs);
    this.stats.recorded++;
    // Forget the task's time once its interval is over, so the map holds only tasks checkpointing now.
    const interval = h.settings.checkpointIntervalMs;
    const forget = (): void => {
      if (this.lastMs.get(id) === atMs && !this.pending.has(id)) this.lastMs.delete(id);
    };
    const cmd: LedgerCommand = { type: 'checkpointed', checkpoint: cp, atMs };
    h.commit(cmd, true, () => void h.scheduler.setTimer(interval, forget), forget);
  }
}
