// The route table of a cell: every attempt it holds for somebody else or has
// sent on, by route key (`taskId#attempt`), and how many forwarded attempts
// wait in its queue. The queue holds home items and forwarded items alike;
// every queue operation on a forwarded item goes through here, so the count
// that bounds the forward buffer cannot drift from the queue.
//
// Invariants:
// - `routes` maps item.key → item for every attempt this cell holds that did
//   not come from its own ledger's queue — queued here (via undefined) or sent
//   on (via set) — and for every home attempt sent on. Home items waiting for
//   their next attempt number (id `taskId#next`, no key yet) are not routes.
// - An attempt leaves `routes` once: its result went back, it was cancelled,
//   failed back, or its route expired. Dropping the route of an attempt that
//   still waits in the queue takes it out of the queue too.
// - A forwarded attempt's route expires a lease and the slack after it came or
//   was last sent on (`lapsed`): the table is swept for them, no timer entry
//   per attempt (one outlived its attempt by the lease, ~30 s, in every cell).
// - `forwardQueued` = forwarded (non-home) items in the queue, plus those the
//   queue found expired and has not reported yet (expired()). admit() refuses
//   nothing by it; the caller checks it against forwardBuffer first.
import type { PushResult, TaskQueue } from '../queue/index.js';
import { StringMap } from '../util/string-map.js';
import type { WorkItem } from './types.js';

export class RouteTable {
  /** No Map: one churned per attempt made its new tables in the old generation (src/util/string-map.ts). */
  private readonly routes = new StringMap<WorkItem>();
  private queuedForward = 0;

  constructor(private readonly queue: TaskQueue<WorkItem>) {}

  get size(): number {
    return this.routes.size;
  }

  /** Forwarded items waiting in the queue (see the invariants). */
  get forwardQueued(): number {
    return this.queuedForward;
  }

  get(key: string): WorkItem | undefined {
    return this.routes.get(key);
  }

  has(key: string): boolean {
    return this.routes.has(key);
  }

  /** Every route, in no particular order; collect before changing the table. */
  values(): IterableIterator<WorkItem> {
    return this.routes.values();
  }

  /** Attempts sent on from here (not waiting in the queue). */
  inFlight(): number {
    let n = 0;
    for (const item of this.routes.values()) if (item.via !== undefined) n++;
    return n;
  }

  /** Forwarded work arrived (its key is known): queue it and hold its route. */
  admit(item: WorkItem, now: number): PushResult {
    const r = this.queue.push(item, now);
    if (!r.ok) return r;
    this.queuedForward++;
    this.routes.set(item.key, item);
    return r;
  }

  /** The dispatcher popped `item` from the queue. */
  taken(item: WorkItem): void {
    if (item.origin.type !== 'home') this.queuedForward--;
  }

  /** The dispatcher puts back a popped item it could not place (it keeps its age). */
  putBack(item: WorkItem, enqueuedAt: number): void {
    this.queue.requeue(item, enqueuedAt);
    if (item.origin.type !== 'home') this.queuedForward++;
  }

  /** `item` was sent on: hold its route under item.key. */
  sent(item: WorkItem): void {
    this.routes.set(item.key, item);
  }

  /** A dispatch of `item` was refused downstream: it waits in the queue here again (same route). */
  requeue(item: WorkItem, now: number): void {
    item.via = undefined;
    if (item.origin.type !== 'home') this.queuedForward++;
    this.queue.requeue(item, now);
  }

  /** Forget the route of `item`; if it still waits in the queue, take it out. */
  drop(item: WorkItem): void {
    this.routes.delete(item.key);
    if (item.via === undefined && this.queue.remove(item.id) !== undefined && item.origin.type !== 'home') {
      this.queuedForward--;
    }
  }

  /**
   * Push to `out` the forwarded routes whose time is up by `now` (`item.sentMs + item.leaseMs + slackMs`:
   * a lease and the slack after the attempt came or was last sent on); returns when the next of the others
   * is due (Infinity: none). O(routes): the caller sweeps only when one may be due.
   */
  lapsed(now: number, slackMs: number, out: WorkItem[]): number {
    let next = Infinity;
    for (const item of this.routes.values()) {
      if (item.origin.type === 'home') continue;
      const due = item.sentMs + item.leaseMs + slackMs;
      if (due <= now) out.push(item);
      else if (due < next) next = due;
    }
    return next;
  }

  /** The queue reported forwarded `item` expired (it is out of the queue already). */
  expired(item: WorkItem): void {
    this.queuedForward--;
    this.routes.delete(item.key);
  }
}
