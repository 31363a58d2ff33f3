// Tenant shares, the home leader's side (docs/flow-control.md, "Tenant
// shares"). The ledger decides for good (tenant-shares.ts: a `dispatched`
// command past a tenant's ceiling is refused); this gate keeps the leader from
// proposing such starts, keeps a capped tenant's tasks out of the queue while
// it is at its ceiling, and tells the dispatcher which tenants are under
// their minimum, so their tasks go ahead of weighted sharing:
//   admit     the tenant's count (permits in the ledger + starts admitted and
//             not yet decided + tasks let go for a freed slot) is under its
//             ceiling: the start is reserved (pending) until settled();
//             else the task waits here, first come first, by tenant;
//   freed     a slot of the tenant came back: as many go back to the queue
//             (keeping their age) as fit;
//   underMin  tenants with a minimum whose count is below it, the furthest
//             below first: the dispatcher serves their queued tasks first.
// Soft state, like the queue: a new leader starts empty and counts from its
// ledger.
//
// Invariant: held(tenant) in the ledger + pending(tenant) + promised(tenant)
// <= ceiling(tenant) for every start admitted here.
import type { GateHost, GateItem } from './gate-host.js';
import type { TenantShares } from './tenant-shares.js';

interface Waiting<T> {
  readonly item: T;
  readonly enqueuedAt: number;
}

const NO_TENANTS: readonly string[] = [];

export class TenantGate<T extends GateItem> {
  /** taskId → tenant: starts admitted whose dispatch the ledger has not decided yet. */
  private readonly pending = new Map<string, string>();
  /** taskId → tenant: let go for a freed slot, until admitted (so a second freed slot lets another go). */
  private readonly promised = new Map<string, string>();
  /** Per tenant: pending + promised. */
  private readonly reserved = new Map<string, number>();
  /** Tenant → its tasks waiting for a slot under its ceiling, first come first. */
  private readonly waiting = new Map<string, Map<string, Waiting<T>>>();
  /** taskId → the tenant it waits for. */
  private readonly where = new Map<string, string>();

  constructor(
    private readonly shares: TenantShares,
    private readonly host: GateHost<T>,
  ) {}

  /** Slots of the tenant counted now: held in the ledger (lingering included) and reserved here. */
  count(tenant: string): number {
    return this.shares.permits.held(tenant) + (this.reserved.get(tenant) ?? 0);
  }

  /** The task may start (reserved), or waits here for its tenant's ceiling (false). */
  admit(item: T, enqueuedAt: number): boolean {
    const spec = item.spec;
    if (!this.shares.applies(spec)) return true;
    const tenant = spec.tenant;
    this.unreserve(this.promised, item.taskId);
    const max = this.shares.share(tenant).max;
    if (max > 0 && this.count(tenant) >= max) {
      let list = this.waiting.get(tenant);
      if (!list) this.waiting.set(tenant, (list = new Map()));
      list.set(item.taskId, { item, enqueuedAt });
      this.where.set(item.taskId, tenant);
      return false;
    }
    this.reserve(this.pending, item.taskId, tenant);
    return true;
  }

  /** An admitted start did not leave after all, or the ledger decided it: unreserve (idempotent). */
  settled(item: T): void {
    const tenant = this.unreserve(this.pending, item.taskId);
    if (tenant !== undefined) this.freed(tenant);
  }

  /** Slots of `tenant` may have come back (or its share changed): let as many waiting tasks go as fit. */
  freed(tenant: string): void {
    const list = this.waiting.get(tenant);
    if (!list) return;
    const max = this.shares.share(tenant).max;
    let room = max === 0 ? list.size : max - this.count(tenant);
    for (const [id, w] of list) {
      if (room-- <= 0) break;
      list.delete(id);
      this.where.delete(id);
      this.reserve(this.promised, id, tenant);
      this.host.requeue(w.item, w.enqueuedAt);
    }
    if (list.size === 0) this.waiting.delete(tenant);
  }

  /**
   * Tenants with a minimum and tasks that may wait for it, whose count is
   * below it, the furthest below (count / min) first, then by name. Empty
   * (and cheap) when no tenant has a minimum.
   */
  underMin(): readonly string[] {
    // Asked at every pump for every kind: with no shares, no generator (it allocates even over empty maps).
    if (this.shares.empty) return NO_TENANTS;
    let out: [string, number][] | undefined;
    for (const [tenant, min] of this.shares.withMinimum()) {
      const n = this.count(tenant);
      if (n < min) (out ??= []).push([tenant, n / min]);
    }
    if (!out) return NO_TENANTS;
    return out.sort((a, b) => a[1] - b[1] || (a[0] < b[0] ? -1 : 1)).map(([t]) => t);
  }

  whyWaiting(taskId: string): string | undefined {
    const tenant = this.where.get(taskId);
    return tenant === undefined ? undefined : `tenant ${tenant} at its ceiling of ${this.shares.share(tenant).max}`;
  }

  holds(taskId: string): boolean {
    return this.where.has(taskId);
  }

  /** Tasks waiting for `tenant`'s ceiling. */
  waitingOf(tenant: string): number {
    return this.waiting.get(tenant)?.size ?? 0;
  }

  /** The task ended while waiting or reserved (cancelled, dead-lettered). */
  forget(taskId: string): void {
    // Let go for a freed slot and ended before it was admitted: its room goes to the next waiting
    // task (as the key gate's promises do), or nobody wakes them while nothing of the tenant runs.
    const promised = this.unreserve(this.promised, taskId);
    if (promised !== undefined) this.freed(promised);
    const tenant = this.where.get(taskId);
    if (tenant === undefined) return;
    this.where.delete(taskId);
    const list = this.waiting.get(tenant);
    list?.delete(taskId);
    if (list?.size === 0) this.waiting.delete(tenant);
  }

  /** This replica stopped leading: the new leader counts from its ledger. */
  clear(): void {
    this.pending.clear();
    this.promised.clear();
    this.reserved.clear();
    this.waiting.clear();
    this.where.clear();
  }

  private reserve(m: Map<string, string>, taskId: string, tenant: string): void {
    if (m.has(taskId)) return;
    m.set(taskId, tenant);
    this.reserved.set(tenant, (this.reserved.get(tenant) ?? 0) + 1);
  }

  private unreserve(m: Map<string, string>, taskId: string): string | undefined {
    const tenant = m.get(taskId);
    if (tenant === undefined) return undefined;
    m.delete(taskId);
    const n = (this.reserved.get(tenant) ?? 0) - 1;
    if (n > 0) this.reserved.set(tenant, n);
    else this.reserved.delete(tenant);
    return tenant;
  }
}
