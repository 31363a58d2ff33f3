// How a home cell gets back on track from its ledger — the part of Home
// (home.ts) that only matters when something went wrong:
// - resume(): this replica started leading; rebuild the queue and the timers
//   from the ledger, and keep the attempts that were out (children relink and
//   claim them with adopt(); reconcile() fails what nobody claims as lost,
//   counted: it may have run);
// - suspend(): this replica stopped leading; drop what only a leader holds;
// - repair(): proposals failed (a timeout under load, an election), so their
//   outcome is unknown; put every live task back on track from what the ledger
//   says, for a few seconds (a late commit may still apply).
//
// Invariants:
// - `unclaimed` holds only attempts that were out when this replica started
//   leading and that no child has claimed yet; it is empty when not leading;
// - a task is in `retrying` (home.ts) exactly while a retry entry is armed for
//   it, so repair() never queues a task twice.
import { TaskState } from '../gen/meshlb/v1/task.js';
import type { TaskQueue } from '../queue/index.js';
import type { Logger } from '../util/log.js';
import { isLogged, type ApplyResult, type Ledger, type LedgerCommand, type TaskRecord } from './ledger.js';
import type { RouteTable } from './routes.js';
import type { Scheduler, TimerHandle } from './scheduler.js';
import { leaseFor, type CellSettings } from './settings.js';
import type { CellTimers } from './timers.js';
import { FROM_HOME, makeItem, nextAttemptId, routeKey, type WorkItem } from './types.js';

/** What recovery uses of Home (home.ts implements it). */
export interface RecoveryHost {
  readonly ledger: Ledger;
  readonly log: Logger;
  readonly scheduler: Scheduler;
  readonly settings: CellSettings;
  /** Tasks with a retry armed. */
  readonly retrying: Set<string>;
  /** Tasks waiting for their flow key (src/flow/gate.ts). */
  readonly flow: { holds(taskId: string): boolean; clear(): void };
  readonly d: {
    readonly queue: TaskQueue<WorkItem>;
    readonly routes: RouteTable;
    readonly timers: CellTimers;
    readonly settings: CellSettings;
    leading(): boolean;
  };
  enqueue(rec: TaskRecord): void;
  afterFailure(res: ApplyResult, immediate: boolean): void;
  commit(cmd: LedgerCommand, logged: boolean, then?: (r: ApplyResult[]) => void): void;
  deadLetter(id: string, reason: string): void;
}

/** After a failed proposal, repair from the ledger this often, for this long (a late commit may still apply). */
const REPAIR_EVERY_MS = 500;
const REPAIR_WINDOW_MS = 5000;

export class HomeRecovery {
  /** Attempts out when this replica started leading, not yet claimed by a child (id → attempt). */
  readonly unclaimed = new Map<string, number>();
  private reconcileTimer: TimerHandle | undefined;
  /** Repairing after failed proposals until then (ms), every REPAIR_EVERY_MS. */
  private repairUntil = 0;
  private repairTimer: TimerHandle | undefined;
  /** Attempts given a lease again by this repair window (once each). */
  private readonly rearmed = new Set<string>();

  constructor(private readonly h: RecoveryHost) {}

  /**
   * This replica started leading: rebuild the queue and the timers from the
   * ledger, which holds every committed decision. Queued tasks wait for
   * dispatch again. A task whose attempt was out when the old leader stopped
   * keeps that attempt: its result may still come back (children keep attempts
   * and re-send results across a change of parent leader), so its lease runs
   * on from when it was dispatched (at least linkTimeoutMs more, for the
   * children to relink), and a lapse retries it as before.
   */
  resume(): { queued: number; out: number } {
    const { settings, timers } = this.h.d;
    const ledger = this.h.ledger;
    const now = this.h.scheduler.now();
    let queued = 0;
    let out = 0;
    this.unclaimed.clear();
    for (const rec of ledger.liveRecords()) {
      if (rec.spec.deadlineUnixMs > 0) timers.schedule(rec.spec.deadlineUnixMs, { type: 'deadline', id: rec.id });
      if (rec.state === TaskState.TASK_STATE_QUEUED) {
        queued++;
        this.h.enqueue(rec);
        continue;
      }
      out++;
      this.unclaimed.set(rec.id, rec.attempt);
      const due = Math.max(now + 2 * settings.linkTimeoutMs, rec.updatedMs + leaseFor(rec.spec, settings));
      timers.schedule(due, { type: 'lease', id: rec.id, attempt: rec.attempt });
    }
    if (this.unclaimed.size > 0) {
      // Children relink within a link timeout or two and say what they hold (adopt()); what none holds is lost.
      this.reconcileTimer?.cancel();
      this.reconcileTimer = this.h.scheduler.setTimer(2 * settings.linkTimeoutMs, () => this.reconcile());
    }
    return { queued, out };
  }

  /**
   * A child that (re)linked holds this attempt of one of our tasks: if it is
   * still the current attempt and out, route its result and cancels through
   * that child again. Returns false when the attempt is not ours or not
   * current (the caller cancels it below).
   */
  adopt(child: string, ref: { readonly taskId: string; readonly attempt: number }): boolean {
    const rec = this.h.ledger.live(ref.taskId);
    if (!rec || rec.attempt !== ref.attempt || rec.state === TaskState.TASK_STATE_QUEUED) {
      return false;
    }
    this.unclaimed.delete(rec.id);
    const key = routeKey(rec.id, rec.attempt);
    if (this.h.d.routes.has(key)) return true;
    const item = makeItem(
      rec.id,
      rec.attempt,
      rec.homeCell,
      rec.spec,
      FROM_HOME,
      undefined,
      key,
      leaseFor(rec.spec, this.h.settings),
      undefined,
      rec.updatedMs,
    );
    item.via = { type: 'child', cell: child };
    this.h.d.routes.sent(item);
    return true;
  }

  /** Attempts out when this replica started leading that no child claims by now: lost (counted), retried if attempts remain. */
  private reconcile(): void {
    this.reconcileTimer = undefined;
    if (!this.h.d.leading()) return;
    const lost = [...this.unclaimed];
    this.unclaimed.clear();
    if (lost.length > 0)
      this.h.log.warn({ attempts: lost.length }, 'attempts out under the old leader that no child holds: retrying');
    const now = this.h.scheduler.now();
    for (const [id, attempt] of lost) {
      const rec = this.h.ledger.live(id);
      if (!rec || rec.attempt !== attempt || rec.state === TaskState.TASK_STATE_QUEUED) continue;
      if (this.h.d.routes.has(routeKey(id, attempt))) continue;
      this.h.commit(
        {
          type: 'attemptFailed',
          id,
          attempt,
          reason: 'lost: no child held it after the cell changed leader',
          // It was dispatched: it may have run, and its result died with the old leader's links.
          // Counted, so a task never runs more than max_attempts times (sim:mesh seed 68).
          counted: true,
          lapse: true,
          atMs: now,
        },
        isLogged(rec.spec),
        (res) => this.h.afterFailure(res[0]!, true),
      );
    }
  }

  /** This replica stopped leading: its queued home items go (the new leader queues them from its ledger). */
  suspend(): void {
    this.reconcileTimer?.cancel();
    this.reconcileTimer = undefined;
    this.repairTimer?.cancel();
    this.repairTimer = undefined;
    this.h.retrying.clear();
    this.h.flow.clear();
    this.rearmed.clear();
    this.unclaimed.clear();
    for (const rec of this.h.ledger.liveRecords()) this.h.d.queue.remove(nextAttemptId(rec.id));
  }

  /** A proposal failed while leading: repair for a few seconds (a late commit may still apply). */
  proposalFailed(err: unknown, what: string): void {
    if (!this.h.d.leading()) return; // stepped down: the new leader rebuilds from the ledger
    this.h.log.warn({ err: String(err), what }, 'ledger proposal failed; repairing from the ledger');
    this.repairUntil = this.h.scheduler.now() + REPAIR_WINDOW_MS;
    this.repairTimer ??= this.h.scheduler.setTimer(REPAIR_EVERY_MS, () => this.repair());
  }

  /**
   * Put every live task back on track from the ledger (after failed
   * proposals): a QUEUED task neither queued here nor waiting for a retry is
   * queued; an attempt out with no route here (its lease lapse or its
   * dispatch did not commit, or committed late) gets a lease again; a passed
   * deadline dead-letters. O(live tasks), and only while repairing.
   */
  private repair(): void {
    this.repairTimer = undefined;
    if (!this.h.d.leading()) return;
    const { queue, routes, settings, timers } = this.h.d;
    const now = this.h.scheduler.now();
    let fixed = 0;
    for (const rec of this.h.ledger.liveRecords()) {
      if (rec.spec.deadlineUnixMs > 0 && rec.spec.deadlineUnixMs <= now) {
        this.h.deadLetter(rec.id, 'deadline passed');
        continue;
      }
      if (rec.state === TaskState.TASK_STATE_QUEUED) {
        if (!queue.has(nextAttemptId(rec.id)) && !this.h.retrying.has(rec.id) && !this.h.flow.holds(rec.id)) {
          this.h.enqueue(rec);
          fixed++;
        }
        continue;
      }
      const key = routeKey(rec.id, rec.attempt);
      if (routes.has(key) || this.unclaimed.has(rec.id) || this.rearmed.has(key)) continue;
      this.rearmed.add(key);
      timers.schedule(Math.max(now + REPAIR_EVERY_MS, rec.updatedMs + leaseFor(rec.spec, settings)), {
        type: 'lease',
        id: rec.id,
        attempt: rec.attempt,
      });
      fixed++;
    }
    if (fixed > 0) this.h.log.info({ fixed }, 'repaired tasks after failed proposals');
    if (now < this.repairUntil) this.repairTimer = this.h.scheduler.setTimer(REPAIR_EVERY_MS, () => this.repair());
    else this.rearmed.clear();
  }
}
