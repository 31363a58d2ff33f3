// Tenant shares, the replicated part (docs/flow-control.md, "Tenant shares"):
// per tenant a guaranteed minimum of slots and a ceiling, set in the
// topology's `flow.tenants` or at runtime (a `tenantShareSet` command), and
// the slots each tenant holds now, counted as concurrency keys are: one
// permit per attempt out (`taskId#attempt`, a PermitTable keyed by tenant),
// taken by the `dispatched` command and returned on the attempt's result, or
// lingering after a loss until its agent answers or the task's timeout plus
// `lingerMs` has passed (flow-state.ts). Part of FlowState, so it lives in the
// home cell's ledger: every replica applies the same log and holds the same
// counts, and a new leader starts from them.
//
// Only tasks of tenants with a share and durability LOGGED hold permits (a
// NONE task's dispatch is applied on its leader alone; a count kept there
// would be unknown to the next leader).
//
// Invariant: a tenant never holds more permits than its ceiling at the moment
// each was taken (fits() is asked before take(); a ceiling lowered at runtime
// only stops new starts; attempts already out when a share is first set are
// counted from then on, whatever their number).
import type { LedgerFlow } from '../gen/meshlb/v1/ledger.js';
import { Durability, TaskState, type TaskSpec } from '../gen/meshlb/v1/task.js';
import { PermitTable } from './permits.js';
import { ShareTable } from './shares.js';

export type { Share } from './shares.js';

/** What a share needs to know of a ledger record when it is set (attempts already out). */
export interface OutRecord {
  readonly id: string;
  readonly attempt: number;
  readonly state: TaskState;
  readonly spec: TaskSpec;
}

/** A task whose attempts count against its tenant's share: LOGGED (durability NONE never is). */
export const isLoggedSpec = (spec: TaskSpec): boolean => spec.durability !== Durability.DURABILITY_NONE;

/** The share table (shares.ts) by tenant, with the slots each tenant holds. */
export class TenantShares extends ShareTable {
  readonly permits = new PermitTable();
  private readonly freed: ((tenant: string) => void)[] = [];

  /** Told when a tenant may start more (a permit came back, its share changed). Called on every replica. */
  onFreed(l: (tenant: string) => void): void {
    this.freed.push(l);
  }

  /** The task's attempts count against its tenant's share (LOGGED, tenant with a minimum or a ceiling). */
  applies(spec: TaskSpec): boolean {
    if (this.empty) return false;
    const s = this.share(spec.tenant);
    return (s.min > 0 || s.max > 0) && isLoggedSpec(spec);
  }

  /** Tenants with a minimum or a ceiling, or permits held (admin, gauges), sorted. */
  tenants(): string[] {
    const ts = new Set<string>();
    for (const t of this.subjects()) if (this.share(t).min > 0 || this.share(t).max > 0) ts.add(t);
    for (const t of this.permits.counts().keys()) ts.add(t);
    return [...ts].sort();
  }

  /** Another attempt of the task fits its tenant's ceiling. */
  fits(spec: TaskSpec): boolean {
    if (!this.applies(spec)) return true;
    const max = this.share(spec.tenant).max;
    return max === 0 || this.permits.held(spec.tenant) < max;
  }

  /** The attempt `ref` of a task that fits() starts: it holds one of its tenant's slots. */
  take(spec: TaskSpec, ref: string): void {
    if (this.applies(spec)) this.permits.acquire(spec.tenant, ref, Infinity);
  }

  /**
   * An operator set the tenant's share (both 0: back to the topology's). The
   * attempts of the tenant out now are counted from here on (`records`: the
   * ledger's, in its order, so every replica counts the same).
   */
  setShare(
    tenant: string,
    min: number,
    max: number,
    records: Iterable<OutRecord>,
    ref: (id: string, n: number) => string,
  ): void {
    this.set(tenant, { min, max });
    for (const r of records) {
      const out = r.state === TaskState.TASK_STATE_DISPATCHED || r.state === TaskState.TASK_STATE_RUNNING;
      if (out && r.spec.tenant === tenant && r.attempt > 0) this.take(r.spec, ref(r.id, r.attempt));
    }
    this.tell(tenant);
  }

  /** The permit of `ref` comes back (the attempt ended, or its lingering is over). */
  give(ref: string): void {
    const tenant = this.permits.release(ref);
    if (tenant !== undefined) this.tell(tenant);
  }

  /** The home stopped waiting for `ref`, its agent may still run it: its slot stays counted until `untilMs`. */
  linger(ref: string, untilMs: number): void {
    if (this.permits.has(ref) && !this.permits.isLingering(ref)) this.permits.linger(ref, untilMs);
  }

  toProto(): Pick<LedgerFlow, 'tenantShares' | 'tenantPermits'> {
    return {
      tenantShares: this.runtimeEntries().map(([tenant, s]) => ({ tenant, minSlots: s.min, maxSlots: s.max })),
      tenantPermits: this.permits.entries().map((e) => {
        const i = e.ref.lastIndexOf('#');
        return { key: e.key, taskId: e.ref.slice(0, i), attempt: Number(e.ref.slice(i + 1)), untilMs: e.untilMs };
      }),
    };
  }

  restore(f: LedgerFlow | undefined, ref: (id: string, n: number) => string): void {
    this.load((f?.tenantShares ?? []).map((s) => [s.tenant, { min: s.minSlots, max: s.maxSlots }]));
    this.permits.load(
      (f?.tenantPermits ?? []).map((p) => ({ key: p.key, ref: ref(p.taskId, p.attempt), untilMs: p.untilMs })),
    );
  }

  private tell(tenant: string): void {
    for (const l of this.freed) l(tenant);
  }
}
