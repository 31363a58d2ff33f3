// The home leader's side of debounce (docs/flow-control.md, "Debounce and
// singleton"). The ledger (src/flow/keyed.ts) says until when a debounced
// task may not start, and refuses a dispatch before then; the leader keeps
// such a task out of its queue until its window ends, with one timer per
// task, so it costs nothing per pump while it waits. Later submits push the
// window: the timer then finds it later and waits again.
//
// Soft state, the leader's: a new leader queues every QUEUED task from its
// ledger (HomeRecovery.resume), and Home.enqueue brings the debounced ones here.
import { TaskState } from '../gen/meshlb/v1/task.js';
import type { Ledger, TaskRecord } from './ledger.js';
import type { Scheduler } from './scheduler.js';
import type { WorkItem } from './types.js';
import { isoTime } from '../util/iso-time.js';

/** What the hold uses of Home (home.ts). */
export interface DebounceHoldHost {
  readonly ledger: Ledger;
  readonly scheduler: Scheduler;
  readonly d: { leading(): boolean };
  /** Queue the task's next attempt (Home.enqueue, which asks hold() first). */
  enqueue(rec: TaskRecord): void;
}

export class DebounceHold {
  /** Tasks with a timer armed (at most one each). */
  private readonly held = new Set<string>();

  constructor(private readonly h: DebounceHoldHost) {}

  /** True when `rec` is in its debounce window: a timer queues it when the window ends. */
  hold(rec: TaskRecord): boolean {
    const until = this.h.ledger.keyed.holdUntil(rec);
    const now = this.h.scheduler.now();
    if (until <= now) return false;
    if (this.held.has(rec.id)) return true;
    this.held.add(rec.id);
    this.h.scheduler.setTimer(until - now, () => {
      this.held.delete(rec.id);
      if (!this.h.d.leading()) return;
      const r = this.h.ledger.get(rec.id);
      if (r?.state === TaskState.TASK_STATE_QUEUED && r.attempt === rec.attempt) this.h.enqueue(r);
    });
    return true;
  }

  /** Why a held task waits ("debounced until T"), or undefined. */
  whyWaiting(rec: TaskRecord): string | undefined {
    if (!this.held.has(rec.id)) return undefined;
    return `debounced until ${isoTime(this.h.ledger.keyed.holdUntil(rec))}`;
  }

  get size(): number {
    return this.held.size;
  }
}

/**
 * A debounced item queued before a later submit's payload was folded in
 * (committed between its queueing and its dispatch): send the ledger's spec,
 * the last payload.
 */
export function withLedgerSpec(item: WorkItem, ledger: Ledger): WorkItem {
  if (!item.spec.debounceKey) return item;
  const rec = ledger.get(item.taskId);
  return rec && rec.spec !== item.spec ? { ...item, spec: rec.spec } : item;
}
