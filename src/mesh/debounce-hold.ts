// The home leader's side of debounce (docs/flow-control.md, "Debounce and
// singleton"). The ledger (src/flow/keyed.ts) says until when a debounced
// task may not start, and refuses a dispatch before then; the leader keeps
// such a task out of its queue until its window ends, with one timer per
// task, so it costs nothing per pump while it waits. Later submits push the
// window: the timer then finds it later and waits again.
//
// The window is held by this replica's timers as well as by its clock: each
// submit accepted here holds the task for what was left of its window at the
// submit's own time, measured from now (accepted()). A clock that jumps
// forward would otherwise end a window early: the ledger's check compares
// clock readings only (sim:mesh seeds 65 and 108, a root whose clock jumped
// 112 and 620 ms started debounced tasks before their windows). A window whose
// latest submit another leader accepted is held a full period from when this
// one queues the task: its clock cannot be compared with that leader's (seed
// 132: a new root leader 280 ms ahead started a task 154 ms early).
//
// Soft state, the leader's: a new leader queues every QUEUED task from its
// ledger (HomeRecovery.resume), and Home.enqueue brings the debounced ones here.
//
// Invariant: a task with timers armed is not in the queue; the last of its
// timers to fire queues it (through hold(), which checks the clock again).
import { TaskState, type TaskSpec } from '../gen/meshlb/v1/task.js';
import type { Ledger, TaskRecord } from './ledger.js';
import type { Scheduler } from './scheduler.js';
import { nextAttemptId, type WorkItem } from './types.js';
import { isoTime } from '../util/iso-time.js';

/** What the hold uses of Home (home.ts). */
export interface DebounceHoldHost {
  readonly ledger: Ledger;
  readonly scheduler: Scheduler;
  readonly d: { leading(): boolean; readonly queue: { remove(id: string): unknown } };
  /** Queue the task's next attempt (Home.enqueue, which asks hold() first). */
  enqueue(rec: TaskRecord): void;
}

/** Entries of `mine` past which those of tasks that moved on are dropped. */
const MINE_MAX = 10_000;

export class DebounceHold {
  /** Tasks held, with the number of their timers still to fire. */
  private readonly armed = new Map<string, number>();
  /** Task → the window end (ledger time) its latest submit accepted here set. */
  private readonly mine = new Map<string, number>();

  constructor(private readonly h: DebounceHoldHost) {}

  /** True when `rec` is held (timers armed) or in its debounce window: a timer queues it later. */
  hold(rec: TaskRecord): boolean {
    if (this.armed.has(rec.id)) return true;
    const until = rec.attempt === 0 ? this.h.ledger.keyed.holdUntil(rec) : 0;
    if (until === 0) return false;
    if (this.mine.get(rec.id) !== until) {
      // Its window was last pushed under another leader (or before this one led again).
      this.remember(rec.id, until);
      this.arm(rec, rec.spec.debouncePeriodMs);
      return true;
    }
    const wait = until - this.h.scheduler.now();
    if (wait <= 0) return false;
    this.arm(rec, wait);
    return true;
  }

  /**
   * A submit stamped `atMs` was accepted here into debounced task `rec` (it made it, or was folded
   * in): hold the task for what was left of its window at `atMs`, from now. One queued already (its
   * earlier window ended) goes back into the hold; one not here (its start proposed, or waiting for
   * a flow key) is left to the ledger, which refuses a start inside the window.
   */
  accepted(rec: TaskRecord | undefined, atMs: number): void {
    if (!rec || rec.state !== TaskState.TASK_STATE_QUEUED || rec.attempt !== 0 || !this.h.d.leading()) return;
    const until = this.h.ledger.keyed.holdUntil(rec);
    this.remember(rec.id, until);
    if (until - atMs <= 0) return;
    if (!this.armed.has(rec.id) && this.h.d.queue.remove(nextAttemptId(rec.id)) === undefined) return;
    this.arm(rec, until - atMs);
  }

  private remember(id: string, until: number): void {
    this.mine.set(id, until);
    if (this.mine.size <= MINE_MAX) return;
    for (const [k] of this.mine) {
      const r = this.h.ledger.live(k);
      if (r?.state !== TaskState.TASK_STATE_QUEUED || r.attempt !== 0) this.mine.delete(k);
    }
  }

  private arm(rec: TaskRecord, ms: number): void {
    this.armed.set(rec.id, (this.armed.get(rec.id) ?? 0) + 1);
    this.h.scheduler.setTimer(ms, () => {
      const left = (this.armed.get(rec.id) ?? 1) - 1;
      if (left > 0) return void this.armed.set(rec.id, left);
      this.armed.delete(rec.id);
      if (!this.h.d.leading()) return;
      const r = this.h.ledger.live(rec.id);
      if (r?.state === TaskState.TASK_STATE_QUEUED && r.attempt === rec.attempt) this.h.enqueue(r);
    });
  }

  /** Why a held task waits ("debounced until T"), or undefined. */
  whyWaiting(rec: TaskRecord): string | undefined {
    if (!this.armed.has(rec.id)) return undefined;
    return `debounced until ${isoTime(this.h.ledger.keyed.holdUntil(rec))}`;
  }

  get size(): number {
    return this.armed.size;
  }
}

/**
 * A debounced item queued before a later submit's payload was folded in
 * (committed between its queueing and its dispatch): send the ledger's spec,
 * the last payload. The item itself takes it: it is the one its child link
 * holds a promised credit for (ChildLink.promise), by identity.
 */
export function withLedgerSpec(item: WorkItem, ledger: Ledger): WorkItem {
  if (!item.spec.debounceKey) return item;
  const rec = ledger.live(item.taskId);
  if (rec && rec.spec !== item.spec) (item as { spec: TaskSpec }).spec = rec.spec;
  return item;
}
