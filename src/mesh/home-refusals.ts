// A home attempt refused before it started keeps its number (docs/mesh.md, "Attempt numbers and
// refusals"): a nack, a give-back or a `requeue:` result for the send of a home attempt puts that
// attempt back in the home's queue under the same number, with no ledger command (it was never
// counted, and nothing in the ledger changes: the attempt stays out), and its lease starts again at
// its next send. Taken out of home.ts and relay.ts as one concern.
//
// Why the fence stays exact: an attempt is identified at its agent, and at the home's ledger, by
// (task id, attempt). A refusal is made only by a cell that still held the send and never handed it
// on (a nack at admission, a bounce before the write to an agent or a child, a hand-back or
// give-back from a queue), and that cell drops its route as it refuses, as does every cell the
// refusal passes on its way home: when the home re-sends the attempt, no cell holds the refused send
// and no agent ever had it. So at most one send of (task, attempt) reaches an agent, and a result
// for that pair is that send's. What could still name the earlier send is a late answer on a link
// (an ack held until the child's next summary, a nack, a give-back): those carry Dispatch.send and
// are settled against that send only (child-link.ts, relay.ts `nacked`).
//
// Bounded: an attempt keeps its number through KEPT_PER_ATTEMPT refusals; the next one is recorded
// as before (an uncounted `attemptFailed`, a new number), so the ledger's cap on dispatches
// (max_attempts + 20 numbers) still stops a task that bounces for ever. Gang members are never kept
// (a refused member ends its gang whole at the home: gang.ts).
//
// Sent again after a backoff, and told: refusal-wait.ts. While a kept attempt waits at home, GetTask
// and Watch at the home leader say QUEUED and why (`view`): soft state of the leader, no ledger entry
// per refusal (docs/mesh.md, "What GetTask says of a refused attempt").
import { TaskState, type Task } from '../gen/meshlb/v1/task.js';
import { toProtoTask, type Ledger, type TaskRecord } from './ledger.js';
import { RefusalWait, type RefusalCounts } from './refusal-wait.js';
import type { RouteTable } from './routes.js';
import type { Scheduler } from './scheduler.js';
import { leaseFor, spilledLeaseFor, type CellSettings } from './settings.js';
import type { CellTimers } from './timers.js';
import { routeKey, type WorkItem } from './types.js';

/** Refusals one attempt keeps its number through; the next takes a new number (the ledger's cap counts it). */
export const KEPT_PER_ATTEMPT = 8;

export interface RefusalDeps {
  readonly ledger: Ledger;
  readonly routes: RouteTable;
  readonly timers: CellTimers;
  readonly leading: () => boolean;
  readonly scheduler: Scheduler;
  readonly random: () => number;
  readonly wake: () => void;
  readonly settings: CellSettings;
}

export class HomeRefusals {
  /** Refusals of home attempts that kept their number, and those past KEPT_PER_ATTEMPT that took a new one. */
  readonly stats = { kept: 0, renumbered: 0 };
  /** Refused attempts of every origin waiting to be sent again: backoff, notes, no match below (refusal-wait.ts). */
  readonly wait: RefusalWait;

  constructor(private readonly d: RefusalDeps) {
    this.wait = new RefusalWait(d);
  }

  /** Every count of refusals here (GetCell, metrics). */
  counts(): RefusalCounts & { kept: number; renumbered: number } {
    return { ...this.stats, ...this.wait.counts };
  }

  /**
   * The refusals of home attempt `item`'s task so far, for its backoff: this number's, plus KEPT_PER_ATTEMPT
   * for each earlier number that ended uncounted (refused past the bound, or refused on its way to the
   * ledger), so a new number does not start the backoff over.
   */
  refusalsSoFar(item: WorkItem): number {
    const rec = this.d.ledger.live(item.taskId);
    if (!rec) return item.refusals;
    const uncounted = rec.attempt - rec.attemptBase - 1 - rec.failures - rec.preemptions;
    return item.refusals + KEPT_PER_ATTEMPT * Math.max(0, uncounted);
  }

  /**
   * GetTask's and Watch's answer for `rec` at this replica: the ledger's record, except that an attempt
   * refused before it started and waiting here again says QUEUED and why (`Task.waiting`); only the
   * leader knows (followers and a new leader answer from the ledger: DISPATCHED).
   */
  view(rec: TaskRecord): Task {
    const t = toProtoTask(rec);
    if (rec.attempt === 0 || rec.state !== TaskState.TASK_STATE_DISPATCHED || !this.d.leading()) return t;
    const item = this.d.routes.get(routeKey(rec.id, rec.attempt));
    const why = item?.origin.type === 'home' ? this.wait.waiting(item, this.d.scheduler.now()) : '';
    if (why !== '') {
      t.state = TaskState.TASK_STATE_QUEUED;
      t.waiting = why;
    }
    return t;
  }

  /**
   * A send of home attempt `item` was refused before it started: true when it keeps its number (the
   * caller puts it back in the queue, its route kept); false when the refusal goes to the ledger as before.
   */
  keep(item: WorkItem): boolean {
    if (item.origin.type !== 'home' || item.spec.gangId || !this.d.leading()) return false;
    const rec = this.d.ledger.live(item.taskId);
    if (!rec || rec.attempt !== item.attempt || rec.state === TaskState.TASK_STATE_QUEUED) return false;
    if (item.refusals >= KEPT_PER_ATTEMPT) {
      this.stats.renumbered++;
      return false;
    }
    item.refusals++;
    this.stats.kept++;
    return true;
  }

  /** Attempt `item` is sent again (after a refusal): it waits no more; a home attempt's lease runs from now. */
  resent(item: WorkItem, now: number): void {
    if (item.refused !== undefined) this.wait.sent(item);
    if (item.origin.type !== 'home') return;
    // Handed up this time (its match below refuted, say), it may wait at the top for an agent: the lease covers that.
    const spilled = item.via?.type === 'parent';
    item.leaseMs = spilled ? spilledLeaseFor(item.spec, this.d.settings) : leaseFor(item.spec, this.d.settings);
    item.leaseDue = now + item.leaseMs;
    this.d.timers.schedule(item.leaseDue, { type: 'lease', id: item.taskId, attempt: item.attempt });
  }

  /**
   * A lease entry of a current attempt came due: false when it is not that attempt's lease any more
   * (the attempt was refused since and waits in the queue, or was sent again with a later lease).
   */
  lapsed(id: string, attempt: number, now: number): boolean {
    const item = this.d.routes.get(routeKey(id, attempt));
    if (item === undefined || item.origin.type !== 'home') return true;
    return item.via !== undefined && now >= item.leaseDue;
  }
}
