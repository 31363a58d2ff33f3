// Per-tenant quotas (topology `security.quotas`, docs/security.md): how fast
// a tenant may submit (a token bucket: submitsPerSecond, burst) and how many
// of its tasks may be unfinished at once (queuedTasks), per home cell. A
// submit over either is answered RESOURCE_EXHAUSTED with the retry hint
// saturation uses (`meshlb-retry-after-ms`), so the SDK's retry of
// RESOURCE_EXHAUSTED applies unchanged.
//
// Checked where the submit is decided, on the cell's leader (followers
// forward writes to it), so a cell's limit holds whichever replica a client
// talks to. Unfinished tasks are counted from the ledger's changes, which
// every replica applies in the same order: a new leader starts with the count
// right. The buckets are soft state: a new leader starts them full.
import { isTerminal, type TaskRecord } from '../mesh/ledger-record.js';

export interface TenantLimits {
  /** Sustained submits per second (token bucket rate). */
  readonly submitsPerSecond?: number | undefined;
  /** Submits allowed at once (bucket size); default max(1, submitsPerSecond). */
  readonly burst?: number | undefined;
  /** Tasks of the tenant not yet finished at this home cell. */
  readonly queuedTasks?: number | undefined;
}

export interface QuotaSpec {
  /** For every tenant not named below (the empty tenant included). */
  readonly default?: TenantLimits | undefined;
  readonly tenants?: Readonly<Record<string, TenantLimits>> | undefined;
}

export interface QuotaRefusal {
  readonly message: string;
  readonly retryAfterMs: number;
}

interface Bucket {
  tokens: number;
  atMs: number;
}

/** When a tenant at its task limit is told to look again (ms). */
const QUEUED_RETRY_MS = 1000;
/** Buckets kept before idle (refilled) ones are dropped: tenant names come from callers. */
const MAX_BUCKETS = 10_000;

export class TenantQuotas {
  private readonly buckets = new Map<string, Bucket>();
  /** Open task id -> tenant, and open tasks per tenant. */
  private readonly open = new Map<string, string>();
  private readonly openBy = new Map<string, number>();

  constructor(
    private readonly spec: QuotaSpec,
    private readonly now: () => number = Date.now,
  ) {}

  limitsOf(tenant: string): TenantLimits | undefined {
    return this.spec.tenants?.[tenant] ?? this.spec.default;
  }

  /** Unfinished tasks of `tenant` as counted. */
  openCount(tenant: string): number {
    return this.openBy.get(tenant) ?? 0;
  }

  /** A ledger change (every replica applies the same ones). */
  changed(rec: TaskRecord): void {
    const was = this.open.get(rec.id);
    if (isTerminal(rec.state)) {
      if (was === undefined) return;
      this.open.delete(rec.id);
      this.openBy.set(was, (this.openBy.get(was) ?? 1) - 1);
    } else if (was === undefined) {
      const tenant = rec.spec.tenant;
      this.open.set(rec.id, tenant);
      this.openBy.set(tenant, (this.openBy.get(tenant) ?? 0) + 1);
    }
  }

  /** The ledger was replaced (a snapshot): count again. */
  rebuild(records: Iterable<TaskRecord>): void {
    this.open.clear();
    this.openBy.clear();
    for (const r of records) this.changed(r);
  }

  /**
   * Take `n` submits of `tenant` (all or none). Undefined when admitted;
   * otherwise why, and when to try again.
   */
  admit(tenant: string, n: number): QuotaRefusal | undefined {
    const l = this.limitsOf(tenant);
    if (!l) return undefined;
    const name = JSON.stringify(tenant.length > 64 ? `${tenant.slice(0, 64)}…` : tenant);
    if (l.queuedTasks !== undefined && this.openCount(tenant) + n > l.queuedTasks) {
      return {
        message: `tenant ${name} has ${this.openCount(tenant)} unfinished tasks here; its limit is ${l.queuedTasks}`,
        retryAfterMs: QUEUED_RETRY_MS,
      };
    }
    const rate = l.submitsPerSecond;
    if (rate === undefined) return undefined;
    const burst = l.burst ?? Math.max(1, rate);
    const now = this.now();
    if (this.buckets.size >= MAX_BUCKETS) this.sweep(now);
    let b = this.buckets.get(tenant);
    if (!b) this.buckets.set(tenant, (b = { tokens: burst, atMs: now }));
    b.tokens = Math.min(burst, b.tokens + ((now - b.atMs) / 1000) * rate);
    b.atMs = now;
    if (b.tokens >= n) {
      b.tokens -= n;
      return undefined;
    }
    const wait = Math.ceil(((Math.min(n, burst) - b.tokens) / rate) * 1000);
    const split = n > burst ? `; send at most ${burst} per call` : '';
    return {
      message: `tenant ${name} is over its rate of ${rate} submits/s (burst ${burst})${split}`,
      retryAfterMs: Math.max(1, wait),
    };
  }

  /** Drop buckets idle long enough to be full again: the same as starting a new one. */
  private sweep(now: number): void {
    for (const [tenant, b] of this.buckets) {
      const l = this.limitsOf(tenant);
      const rate = l?.submitsPerSecond ?? 1;
      const burst = l?.burst ?? Math.max(1, rate);
      if (b.tokens + ((now - b.atMs) / 1000) * rate >= burst) this.buckets.delete(tenant);
    }
  }
}
