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
import { TaskState } from '../gen/meshlb/v1/task.js';
import type { Ledger } from './ledger.js';
import type { RouteTable } from './routes.js';
import type { CellTimers } from './timers.js';
import { routeKey, type WorkItem } from './types.js';

/** Refusals one attempt keeps its number through; the next takes a new number (the ledger's cap counts it). */
export const KEPT_PER_ATTEMPT = 8;

export interface RefusalDeps {
  readonly ledger: Ledger;
  readonly routes: RouteTable;
  readonly timers: CellTimers;
  readonly leading: () => boolean;
}

export class HomeRefusals {
  /** Refusals of home attempts that kept their number, and those past KEPT_PER_ATTEMPT that took a new one. */
  readonly stats = { kept: 0, renumbered: 0 };

  constructor(private readonly d: RefusalDeps) {}

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

  /** Home attempt `item` is sent again (after a refusal): its lease runs from now. */
  resent(item: WorkItem, now: number): void {
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
