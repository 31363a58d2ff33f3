// The pending-task queue a cell leader keeps before dispatch. Pure: time comes
// in as `now` (ms), nothing here reads a clock or schedules anything.
//
// Layout: kind → 4 lanes (one per base priority) → tenants (DRR) → EDF heap.
// Service order for one pop among the lanes the caller accepts:
//   1. lowest effective rank, where a lane's effective rank is its base rank
//      minus floor(oldest wait / agingMs), floored at 0 (critical): a waiting
//      low task climbs one level per agingMs, so it cannot starve;
//   2. tie: the lane whose oldest task arrived first;
//   3. within the lane, the tenant whose DRR turn it is (or the DRR subject
//      `subjectOf` names: a concurrency key with a share, src/flow);
//   4. within the tenant, the earliest soft deadline
//      min(deadline, enqueuedAt + softDeadlineMs) — EDF that still cannot
//      starve a task without a deadline.
// Expired tasks (deadline <= now) are never returned by pop(); they are moved
// to an expired list the caller drains with takeExpired() or expire(now).
// Costs: push/pop/remove O(log n) + O(kinds) lane scan per pop.

import { StringMap } from '../util/string-map.js';
import { DrainRate } from './drain-rate.js';
import { IndexedHeap } from './heap.js';
import { Lane, type Entry } from './lane.js';
import { PRIORITIES, PRIORITY_RANK, type Priority } from './priority.js';

export interface QueueTask {
  readonly id: string;
  readonly kind: string;
  readonly priority: Priority;
  readonly tenant: string;
  /** Absolute deadline, ms on the same clock as `now`; undefined = none. */
  readonly deadline?: number;
  /** Served ahead of its kind's others by popGuaranteed() (a tenant's guaranteed minimum). */
  readonly guaranteed?: boolean;
}

export interface TaskQueueOptions<T extends QueueTask = QueueTask> {
  /** Max queued tasks (all kinds). */
  readonly capacity: number;
  /** Max queued tasks of one tenant; default capacity (no per-tenant cap). */
  readonly maxPerTenant?: number;
  /** Wait that lifts a task one priority level; default 5000. Infinity disables aging. */
  readonly agingMs?: number;
  /** Soft deadline for EDF ordering inside a tenant; default 30000. */
  readonly softDeadlineMs?: number;
  /** DRR quantum (tasks per turn) per tenant (per DRR subject), integer >= 1; default 1 for all. */
  readonly tenantQuantum?: (tenant: string) => number;
  /** The task's DRR subject, asked once as it is queued; default its tenant. */
  readonly subjectOf?: (task: T) => string;
  /** Bounds of the retry hint returned when full; default 50..5000 ms. */
  readonly minRetryAfterMs?: number;
  readonly maxRetryAfterMs?: number;
  /** Told of every task a push admitted (not requeues): a cell counts arrivals per kind for its forecasts. */
  readonly onPush?: (task: T, now: number) => void;
}

export type PushResult =
  | { readonly ok: true }
  | { readonly ok: false; readonly reason: 'full' | 'tenant-full'; readonly retryAfterMs: number }
  | { readonly ok: false; readonly reason: 'duplicate' | 'expired' };

export interface Popped<T> {
  readonly task: T;
  readonly enqueuedAt: number;
  readonly waitedMs: number;
}

/**
 * Kinds and tenants whose queues emptied are kept, so that at low rates, where a cell's queue empties
 * and fills again with every task, a task does not build its kind's four lanes, its tenant's queue and
 * their maps again each time (allocation that shows up as scavenges every cell pauses for; docs/performance.md,
 * "Allocation at low rate"). Past this many idle ones, the idle ones are dropped, so memory stays bounded
 * by the queued tasks and the kinds and tenants seen last.
 */
const MAX_IDLE = 32;

const OK: PushResult = Object.freeze({ ok: true });
const DUPLICATE: PushResult = Object.freeze({ ok: false, reason: 'duplicate' });
const EXPIRED: PushResult = Object.freeze({ ok: false, reason: 'expired' });

export class TaskQueue<T extends QueueTask> {
  private readonly byId = new StringMap<Entry<T>>();
  /** Every kind with queued tasks, and up to MAX_IDLE without (idleKinds of them). */
  private readonly kindLanes = new Map<string, Lane<T>[]>();
  private idleKinds = 0;
  /** Queued tasks per tenant; up to MAX_IDLE tenants at 0 (idleTenants of them). */
  private readonly perTenant = new Map<string, number>();
  private idleTenants = 0;
  private readonly depth = [0, 0, 0, 0];
  private readonly deadlines = new IndexedHeap<Entry<T>>(
    (a, b) => a.deadline < b.deadline,
    (e, p) => {
      e.dpos = p;
    },
    (e) => e.dpos,
  );
  /** Guaranteed tasks per kind, first come first (popGuaranteed). */
  private readonly guaranteedOf = new Map<string, Set<Entry<T>>>();
  private expiredOut: T[] = [];
  private seq = 0;
  /** Pops per window: the retry hint's drain rate. */
  private readonly drain: DrainRate;

  private readonly capacity: number;
  private readonly maxPerTenant: number;
  private readonly agingMs: number;
  private readonly softDeadlineMs: number;
  private readonly quantum: (tenant: string) => number;
  private readonly subjectOf: ((task: T) => string) | undefined;
  private readonly onPush: ((task: T, now: number) => void) | undefined;

  constructor(opts: TaskQueueOptions<T>) {
    if (!(opts.capacity >= 1)) throw new RangeError(`TaskQueue: capacity must be >= 1, got ${opts.capacity}`);
    this.capacity = opts.capacity;
    this.maxPerTenant = opts.maxPerTenant ?? opts.capacity;
    this.agingMs = opts.agingMs ?? 5000;
    if (!(this.agingMs > 0)) throw new RangeError(`TaskQueue: agingMs must be > 0, got ${this.agingMs}`);
    this.softDeadlineMs = opts.softDeadlineMs ?? 30_000;
    const q = opts.tenantQuantum;
    this.quantum = q ? (t) => Math.max(1, Math.floor(q(t)) || 1) : () => 1;
    this.drain = new DrainRate(this.capacity, opts.minRetryAfterMs ?? 50, opts.maxRetryAfterMs ?? 5000);
    this.onPush = opts.onPush;
    this.subjectOf = opts.subjectOf;
  }

  get size(): number {
    return this.byId.size;
  }

  /** Queued tasks per base priority: [critical, high, normal, low]. */
  depthByPriority(): Readonly<Record<Priority, number>> {
    return { critical: this.depth[0]!, high: this.depth[1]!, normal: this.depth[2]!, low: this.depth[3]! };
  }

  sizeOfKind(kind: string): number {
    const lanes = this.kindLanes.get(kind);
    return lanes ? laneSize(lanes) : 0;
  }

  /**
   * Kinds with queued tasks, a new array (a pump reads it once: kind-order.ts). Not a generator over the map's
   * entries: that made a generator, an entry array per kind and a result per kind at every pump, ~0.4 KB per
   * task at 500/s in every cell (docs/performance.md, "Session 15").
   */
  kinds(): string[] {
    const out: string[] = [];
    for (const kind of this.kindLanes.keys()) if (laneSize(this.kindLanes.get(kind)!) > 0) out.push(kind);
    return out;
  }

  has(id: string): boolean {
    return this.byId.has(id);
  }

  get(id: string): T | undefined {
    return this.byId.get(id)?.task;
  }

  /**
   * Up to `limit` queued tasks of `kind` whose base priority rank is at most
   * `maxRank` (0 = critical), by rank, then oldest first (preemption). O(limit).
   */
  oldestOfKind(kind: string, maxRank: number, limit: number): T[] {
    const out: T[] = [];
    const lanes = this.kindLanes.get(kind);
    if (!lanes) return out;
    for (let r = 0; r <= maxRank && r < 4; r++)
      for (let e = lanes[r]!.head; e !== null && out.length < limit; e = e.next) out.push(e.task);
    return out;
  }

  /** Every queued task with when it was enqueued, in no particular order (queue gauges). */
  *withEnqueuedAt(): IterableIterator<readonly [T, number]> {
    for (const e of this.byId.values()) yield [e.task, e.enqueuedAt];
  }

  /** Every queued task, in no particular order (admin views, the mesh simulator's checks). */
  *values(): IterableIterator<T> {
    for (const e of this.byId.values()) yield e.task;
  }

  push(task: T, now: number): PushResult {
    if (this.byId.has(task.id)) return DUPLICATE;
    if (task.deadline !== undefined && task.deadline <= now) return EXPIRED;
    if (this.byId.size >= this.capacity) return { ok: false, reason: 'full', retryAfterMs: this.drain.hint(now) };
    if ((this.perTenant.get(task.tenant) ?? 0) >= this.maxPerTenant) {
      return { ok: false, reason: 'tenant-full', retryAfterMs: this.drain.hint(now) };
    }
    this.insert(task, now);
    this.onPush?.(task, now);
    return OK;
  }

  /**
   * Puts back a task popped in the same synchronous step (e.g. the picker
   * said `queue` for it), keeping its original enqueue time so it keeps its
   * age. Skips the capacity checks: it only returns a slot it just freed.
   */
  requeue(task: T, enqueuedAt: number): boolean {
    if (this.byId.has(task.id)) return false;
    this.insert(task, enqueuedAt, true);
    return true;
  }

  /**
   * The next task by the service order above, among kinds `accept` allows
   * (e.g. kind => picker.credits(kind) > 0 || !picker.hasKind(kind)).
   */
  pop(now: number, accept?: (kind: string) => boolean): Popped<T> | undefined {
    this.collectExpired(now);
    this.best = null;
    for (const [kind, lanes] of this.kindLanes) if (accept === undefined || accept(kind)) this.bestOf(lanes, now);
    const best = this.best as Lane<T> | null;
    this.best = null;
    return best === null ? undefined : this.takeFrom(best, now);
  }

  /** Scratch of pop() and popKind(): the lane to serve so far, and its effective rank. */
  private best: Lane<T> | null = null;
  private bestRank = 0;

  /** Consider the lanes of one kind for `best`. */
  private bestOf(lanes: readonly Lane<T>[], now: number): void {
    for (let r = 0; r < 4; r++) {
      const lane = lanes[r]!;
      if (lane.head === null) continue;
      const rank = this.effectiveRank(lane, now);
      const best = this.best;
      if (best === null || rank < this.bestRank || (rank === this.bestRank && older(lane.head, best.head!))) {
        this.best = lane;
        this.bestRank = rank;
      }
    }
  }

  /**
   * The next task of `kind` of the first tenant in `tenants` that has one
   * `accept` takes: of that tenant, the highest base priority, earliest soft
   * deadline first (its tenant heap's head; a head `accept` refuses is passed
   * over). Leaves the DRR turns as they are: tenant shares serve a tenant under
   * its minimum this way, ahead of the weights. O(tenants) per call.
   */
  popFirstOf(kind: string, tenants: readonly string[], now: number, accept: (t: T) => boolean): Popped<T> | undefined {
    const lanes = this.kindLanes.get(kind);
    if (!lanes) return undefined;
    this.collectExpired(now);
    for (const tenant of tenants)
      for (const lane of lanes) {
        const e = lane.tenants.get(tenant)?.heap.peek();
        if (e !== undefined && accept(e.task)) return this.takeFrom(lane, now, e);
      }
    return undefined;
  }

  /** The oldest queued guaranteed task of `kind` (a tenant's minimum, sent so by its home), ahead of the order above. */
  popGuaranteed(kind: string, now: number): Popped<T> | undefined {
    const set = this.guaranteedOf.get(kind);
    if (set === undefined) return undefined;
    this.collectExpired(now);
    for (const e of set) return this.takeFrom(e.sub.lane, now, e);
    return undefined;
  }

  /** The next task of one kind (same order, restricted to the kind). */
  popKind(kind: string, now: number): Popped<T> | undefined {
    // As pop(now, (k) => k === kind), without a closure per call (the dispatcher pops per task).
    this.collectExpired(now);
    const best = this.nextLane(kind, now);
    return best === null ? undefined : this.takeFrom(best, now);
  }

  /**
   * Whether pop() would serve kind `a`'s next task before kind `b`'s now (lowest effective rank, then
   * oldest): the order a pump serves its kinds in (src/mesh/kind-order.ts). A kind with none goes last.
   */
  servesBefore(a: string, b: string, now: number): boolean {
    const la = this.nextLane(a, now);
    const rank = this.bestRank;
    const lb = this.nextLane(b, now);
    if (la === null || lb === null) return la !== null;
    return rank < this.bestRank || (rank === this.bestRank && older(la.head!, lb.head!));
  }

  /** The lane of `kind` pop() would serve now (its effective rank left in bestRank), or null. */
  private nextLane(kind: string, now: number): Lane<T> | null {
    const lanes = this.kindLanes.get(kind);
    this.best = null;
    if (lanes !== undefined) this.bestOf(lanes, now);
    const best = this.best as Lane<T> | null;
    this.best = null;
    return best;
  }

  /** Cancel: removes and returns the task, or undefined if not queued. */
  remove(id: string): T | undefined {
    const e = this.byId.get(id);
    if (!e) return undefined;
    this.unlink(e);
    return e.task;
  }

  /** Removes expired tasks (deadline <= now) and returns every expired task not yet reported. */
  expire(now: number): T[] {
    this.collectExpired(now);
    return this.takeExpired();
  }

  /** Expired tasks found by earlier pops, not yet reported. */
  takeExpired(): T[] {
    const out = this.expiredOut;
    this.expiredOut = [];
    return out;
  }

  /** A task's effective priority now (for summaries and tests). */
  effectivePriority(id: string, now: number): Priority | undefined {
    const e = this.byId.get(id);
    if (!e) return undefined;
    return PRIORITIES[Math.max(0, e.rank - Math.floor(Math.max(0, now - e.enqueuedAt) / this.agingMs))];
  }

  private effectiveRank(lane: Lane<T>, now: number): number {
    const waited = now - lane.head!.enqueuedAt;
    return waited <= 0 ? lane.rank : Math.max(0, lane.rank - Math.floor(waited / this.agingMs));
  }

  private insert(task: T, enqueuedAt: number, fromHead = false): void {
    let lanes = this.kindLanes.get(task.kind);
    if (!lanes) {
      lanes = [0, 1, 2, 3].map((r) => new Lane<T>(task.kind, r, MAX_IDLE));
      this.kindLanes.set(task.kind, lanes);
    } else if (laneSize(lanes) === 0) this.idleKinds--;
    const rank = PRIORITY_RANK[task.priority];
    if (rank === undefined) throw new RangeError(`TaskQueue: unknown priority ${String(task.priority)}`);
    const lane = lanes[rank]!;
    const deadline = task.deadline ?? Infinity;
    const e: Entry<T> = {
      task,
      id: task.id,
      tenant: task.tenant,
      rank,
      deadline,
      key: Math.min(deadline, enqueuedAt + this.softDeadlineMs),
      enqueuedAt,
      seq: this.seq++,
      hpos: -1,
      dpos: -1,
      prev: null,
      next: null,
      sub: lane.tenantQ(this.subjectOf ? this.subjectOf(task) : task.tenant),
    };
    lane.add(e, fromHead);
    if (task.guaranteed === true) {
      let set = this.guaranteedOf.get(task.kind);
      if (!set) this.guaranteedOf.set(task.kind, (set = new Set()));
      set.add(e);
    }
    if (deadline !== Infinity) this.deadlines.push(e);
    this.byId.set(e.id, e);
    const n = this.perTenant.get(e.tenant);
    if (n === 0) this.idleTenants--;
    this.perTenant.set(e.tenant, (n ?? 0) + 1);
    this.depth[rank]!++;
  }

  /** Takes `e` out of `lane` and the queue; without `e`, the lane's next by its DRR turns. */
  private takeFrom(lane: Lane<T>, now: number, e?: Entry<T>): Popped<T> {
    if (e === undefined) e = lane.take(this.quantum);
    else lane.delete(e);
    this.forget(e, lane);
    this.drain.popped(now);
    return { task: e.task, enqueuedAt: e.enqueuedAt, waitedMs: Math.max(0, now - e.enqueuedAt) };
  }

  private unlink(e: Entry<T>): void {
    const lane = e.sub.lane;
    lane.delete(e);
    this.forget(e, lane);
  }

  /** Bookkeeping after e left its lane. */
  private forget(e: Entry<T>, lane: Lane<T>): void {
    if (e.dpos >= 0) this.deadlines.remove(e);
    const g = e.task.guaranteed === true ? this.guaranteedOf.get(lane.kind) : undefined;
    if (g?.delete(e) && g.size === 0) this.guaranteedOf.delete(lane.kind);
    this.byId.delete(e.id);
    const n = this.perTenant.get(e.tenant)! - 1;
    this.perTenant.set(e.tenant, n);
    if (n === 0 && ++this.idleTenants > MAX_IDLE) {
      for (const [tenant, c] of this.perTenant) if (c === 0) this.perTenant.delete(tenant);
      this.idleTenants = 0;
    }
    this.depth[e.rank]!--;
    if (this.sizeOfKind(lane.kind) === 0 && ++this.idleKinds > MAX_IDLE) {
      for (const [kind, lanes] of this.kindLanes) if (laneSize(lanes) === 0) this.kindLanes.delete(kind);
      this.idleKinds = 0;
    }
  }

  private collectExpired(now: number): void {
    for (let e = this.deadlines.peek(); e !== undefined && e.deadline <= now; e = this.deadlines.peek()) {
      this.unlink(e);
      this.expiredOut.push(e.task);
    }
  }
}

function laneSize<T>(lanes: readonly Lane<T>[]): number {
  return lanes[0]!.size + lanes[1]!.size + lanes[2]!.size + lanes[3]!.size;
}

function older<T>(a: Entry<T>, b: Entry<T>): boolean {
  return a.enqueuedAt < b.enqueuedAt || (a.enqueuedAt === b.enqueuedAt && a.seq < b.seq);
}
