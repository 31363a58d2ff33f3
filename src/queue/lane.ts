// One lane = the tasks of one (kind, base priority). Inside a lane, tenants
// share service by deficit round robin with unit cost (so an integer quantum
// q lets a tenant take q tasks per round); inside a tenant, tasks go out in
// earliest-deadline-first order of their soft deadline. The lane also keeps
// its tasks in arrival order, so the oldest wait (which drives aging) is O(1).

import { IndexedHeap } from './heap.js';

export interface Entry<T> {
  readonly task: T;
  readonly id: string;
  readonly tenant: string;
  readonly rank: number;
  /** Hard deadline (absolute ms) or Infinity. */
  readonly deadline: number;
  /** EDF key: min(deadline, enqueuedAt + softDeadlineMs). */
  readonly key: number;
  readonly enqueuedAt: number;
  readonly seq: number;
  /** Position in its tenant heap / the deadline heap (-1 = none). */
  hpos: number;
  dpos: number;
  // Lane arrival list.
  prev: Entry<T> | null;
  next: Entry<T> | null;
  sub: TenantQ<T>;
}

export class TenantQ<T> {
  readonly heap = new IndexedHeap<Entry<T>>(
    (a, b) => a.key < b.key || (a.key === b.key && a.seq < b.seq),
    (e, p) => {
      e.hpos = p;
    },
    (e) => e.hpos,
  );
  /** Tasks this tenant may still take in its current turn (0 = turn not begun). */
  deficit = 0;
  /** In the ring (has tasks); an idle one stays in its lane's map, out of the ring, until swept. */
  active = true;
  ringPrev: TenantQ<T> = this;
  ringNext: TenantQ<T> = this;

  constructor(
    readonly tenant: string,
    readonly lane: Lane<T>,
  ) {}
}

export class Lane<T> {
  size = 0;
  /** Oldest (head) and newest (tail) entries by arrival. */
  head: Entry<T> | null = null;
  tail: Entry<T> | null = null;
  /**
   * Active tenants, and up to maxIdle idle ones (their queues emptied): kept so that a tenant whose
   * queue empties and fills with every task (low rates) does not build its queue again each time;
   * memory stays bounded by queued tasks plus maxIdle.
   */
  readonly tenants = new Map<string, TenantQ<T>>();
  private idle = 0;
  /** Whose turn it is; null iff the lane is empty. */
  cur: TenantQ<T> | null = null;

  constructor(
    readonly kind: string,
    readonly rank: number,
    private readonly maxIdle = 0,
  ) {}

  /** The tenant queue for `tenant`, joining the ring at the end of the round if new or idle. */
  tenantQ(tenant: string): TenantQ<T> {
    let t = this.tenants.get(tenant);
    if (t?.active) return t;
    if (t) {
      t.active = true;
      this.idle--;
    } else {
      t = new TenantQ<T>(tenant, this);
      this.tenants.set(tenant, t);
    }
    const c = this.cur;
    if (c === null) {
      this.cur = t;
    } else {
      // Insert just before cur: the newcomer waits at most one round.
      t.ringNext = c;
      t.ringPrev = c.ringPrev;
      c.ringPrev.ringNext = t;
      c.ringPrev = t;
    }
    return t;
  }

  /**
   * Adds e, keeping the arrival list sorted by enqueuedAt. New tasks go at the
   * tail in O(1) (clocks are monotonic); a requeued old task is placed by
   * walking from the head, where it almost always belongs.
   */
  add(e: Entry<T>, fromHead = false): void {
    e.sub.heap.push(e);
    let after: Entry<T> | null; // insert after this one (null = at head)
    if (fromHead) {
      after = null;
      for (let x = this.head; x !== null && x.enqueuedAt <= e.enqueuedAt; x = x.next) after = x;
    } else {
      after = this.tail;
      while (after !== null && after.enqueuedAt > e.enqueuedAt) after = after.prev;
    }
    e.prev = after;
    e.next = after ? after.next : this.head;
    if (e.prev) e.prev.next = e;
    else this.head = e;
    if (e.next) e.next.prev = e;
    else this.tail = e;
    this.size++;
  }

  /** Next entry by DRR over tenants then EDF within the tenant; lane must be non-empty. */
  take(quantum: (tenant: string) => number): Entry<T> {
    const t = this.cur!;
    if (t.deficit <= 0) t.deficit = quantum(t.tenant);
    t.deficit--;
    const e = t.heap.peek()!;
    const wasLastOfTurn = t.deficit <= 0;
    this.delete(e);
    // delete() moves cur on if t emptied; otherwise end the turn when spent.
    if (wasLastOfTurn && this.cur === t) this.cur = t.ringNext;
    return e;
  }

  /** Removes e from the lane (take, cancel or expiry). */
  delete(e: Entry<T>): void {
    const t = e.sub;
    t.heap.remove(e);
    if (e.prev) e.prev.next = e.next;
    else this.head = e.next;
    if (e.next) e.next.prev = e.prev;
    else this.tail = e.prev;
    e.prev = e.next = null;
    this.size--;
    if (t.heap.size === 0) {
      t.active = false;
      if (++this.idle > this.maxIdle) this.sweep();
      t.deficit = 0;
      if (t.ringNext === t) {
        this.cur = null;
      } else {
        if (this.cur === t) this.cur = t.ringNext;
        t.ringPrev.ringNext = t.ringNext;
        t.ringNext.ringPrev = t.ringPrev;
      }
      t.ringNext = t.ringPrev = t;
    }
  }

  /** Drop the idle tenants. */
  private sweep(): void {
    for (const [tenant, t] of this.tenants) if (!t.active) this.tenants.delete(tenant);
    this.idle = 0;
  }
}
