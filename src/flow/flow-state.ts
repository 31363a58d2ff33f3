// The flow-control part of the home ledger (src/mesh/ledger.ts): the
// concurrency permits held per key, the limits operators set at runtime and
// each rate-limit key's GCRA state. Deterministic like the ledger: no clock
// (times come from the commands), no randomness, so every replica of the
// cell that applies the same log holds the same counts, and a new leader
// starts from them (docs/flow-control.md, "Where the counters live").
//
// Invariants:
// - a key never holds more permits than its cap (the lower of its limit and
//   its share's ceiling) at the moment each was taken (start() refuses past
//   it; a limit or ceiling lowered at runtime only stops new starts);
// - a rate key's TAT only grows, and a start is refused rather than let it
//   run more than `burst` units ahead of the command's time.
import type { LedgerFlow } from '../gen/meshlb/v1/ledger.js';
import { ResultStatus, type TaskResult, type TaskSpec } from '../gen/meshlb/v1/task.js';
import type { ConcurrencyStrategy, FlowSpec } from '../topology/types.js';
import { emissionMs, gcra, type RateRule } from './gcra.js';
import { PermitTable } from './permits.js';
import { ShareTable, type Share } from './shares.js';
import { TenantShares, type OutRecord } from './tenant-shares.js';

/** The flow settings of a cell: the topology's `flow:` section and the default task timeout. */
export interface FlowConfig {
  readonly spec: FlowSpec | undefined;
  /** A task with timeout 0 runs up to this (the cell's taskTimeoutMs): its permit lingers past it. */
  readonly defaultTimeoutMs: number;
}

/** The longest retry hint a RATE_LIMITED answer is taken at (a longer one is cut to it). */
export const MAX_RETRY_AFTER_MS = 600_000;

/**
 * The wait a RATE_LIMITED answer asks for, capped; 0 for any other result (or
 * a hint of 0: the cell's retry backoff applies).
 */
export function rateLimitedFor(r: TaskResult | undefined): number {
  if (r?.status !== ResultStatus.RESULT_STATUS_RATE_LIMITED) return 0;
  return Math.min(r.retryAfterMs, MAX_RETRY_AFTER_MS);
}

/** A key's template: `prefix:*` for `prefix:rest` (the part before the first ':'); '' for a key without ':'. */
export function templateOf(key: string): string {
  const i = key.indexOf(':');
  return i > 0 ? `${key.slice(0, i)}:*` : '';
}

const RUNTIME_STRATEGIES: readonly string[] = ['queue', 'cancel-newest', 'cancel-in-progress'];

/** A strategy an operator may set at runtime, or '' (the topology's) for anything else. */
export function strategyOf(s: string): ConcurrencyStrategy | '' {
  return RUNTIME_STRATEGIES.includes(s) ? (s as ConcurrencyStrategy) : '';
}

export const NO_FLOW: FlowConfig = { spec: undefined, defaultTimeoutMs: 30_000 };

/**
 * The queue's DRR subject of the tasks of a key with a share: a name no tenant
 * takes in practice (a NUL first), so a key's lane never merges with a tenant's.
 */
export const keyLane = (key: string): string => `\u0000key:${key}`;
const KEY_LANE = '\u0000key:';

/** `taskId#attempt`, as permits are held. */
export const permitRef = (taskId: string, attempt: number): string => `${taskId}#${attempt}`;

export class FlowState {
  readonly permits = new PermitTable();
  /** Limits set at runtime (AdminService), over the topology's. */
  private readonly runtime = new Map<string, number>();
  /** Strategies set at runtime with their limits (AdminService), over the topology's. */
  private readonly runtimeStrategy = new Map<string, ConcurrencyStrategy>();
  private readonly tats = new Map<string, number>();
  private readonly freed: ((key: string) => void)[] = [];

  /** Round-robin groups of the topology: a task's key `group:member` counts against `group`. */
  private readonly groups: ReadonlySet<string>;

  /** Tenants' minimums and ceilings of slots and the slots each holds (tenant-shares.ts). */
  readonly shares: TenantShares;
  /** Keys' weights, minimums and ceilings (shares.ts); a key's slots are its permits (`permits`). */
  readonly keyShares: ShareTable;

  constructor(private readonly cfg: FlowConfig) {
    this.shares = new TenantShares(cfg.spec?.tenants);
    const keyed = [...(cfg.spec?.concurrency ?? [])].flatMap(([k, c]) => (c.share ? [[k, c.share] as const] : []));
    this.keyShares = new ShareTable(keyed.length > 0 ? new Map(keyed) : undefined);
    const rr = [...(cfg.spec?.concurrency ?? [])].filter(([, k]) => k.strategy === 'round-robin');
    this.groups = new Set(rr.map(([key]) => key));
  }

  /**
   * The key whose permits a task naming concurrency key `ck` holds: its
   * round-robin group when `ck` is `group:member` of one, else `ck` itself.
   */
  counterKey(ck: string): string {
    if (this.groups.size === 0) return ck;
    const i = ck.indexOf(':');
    return i > 0 && this.groups.has(ck.slice(0, i)) ? ck.slice(0, i) : ck;
  }

  /** Told when a key may admit more (a permit came back, a limit changed). Called on every replica. */
  onFreed(l: (key: string) => void): void {
    this.freed.push(l);
  }

  /**
   * The key's limit now: runtime over topology, where the topology's entry is
   * the key's own or its template's (`prefix:*` for a key `prefix:anything`);
   * Infinity for a key with none (counted, not limited).
   */
  limit(key: string): number {
    return this.runtime.get(key) ?? this.concurrencySpec(key)?.limit ?? Infinity;
  }

  /** What a key's permits may not pass: the lower of its limit and its share's ceiling. */
  cap(key: string): number {
    const max = this.keyShares.empty ? 0 : this.keyShares.share(key).max;
    return max > 0 ? Math.min(max, this.limit(key)) : this.limit(key);
  }

  /**
   * The task's subject in the queues' DRR: its concurrency key's lane when the
   * key (its counter: a group for a member) has a share, else its tenant.
   */
  laneOf(spec: TaskSpec): string {
    if (this.keyShares.empty || spec.concurrencyKey === '') return spec.tenant;
    const ck = this.counterKey(spec.concurrencyKey);
    return this.keyShares.has(ck) ? keyLane(ck) : spec.tenant;
  }

  /** The queues' DRR options (src/queue): each task's subject (laneOf) and each subject's quantum (weight). */
  get fairness() {
    return {
      tenantQuantum: (subject: string): number => this.weight(subject),
      subjectOf: (t: { readonly spec: TaskSpec }): string => this.laneOf(t.spec),
    };
  }

  /** An operator set a key's share (all 0: the topology's); a raised ceiling lets waiting tasks go. */
  setKeyShare(key: string, share: Share): void {
    this.keyShares.set(key, share);
    for (const l of this.freed) l(key);
  }

  /** The topology's entry for a concurrency key: its own, else its template's. */
  private concurrencySpec(key: string) {
    const c = this.cfg.spec?.concurrency;
    return c?.get(key) ?? (c && c.size > 0 ? c.get(templateOf(key)) : undefined);
  }

  /** The limit was set at runtime (it overrides the topology's). */
  hasRuntimeLimit(key: string): boolean {
    return this.runtime.has(key);
  }

  /** Rate-limit keys of the topology (templates included) and the dynamic keys with state now. */
  rateKeys(): string[] {
    const ks = new Set(this.cfg.spec?.rateLimits.keys() ?? []);
    for (const k of this.tats.keys()) ks.add(k);
    return [...ks];
  }

  strategy(key: string): ConcurrencyStrategy {
    return this.runtimeStrategy.get(key) ?? this.concurrencySpec(key)?.strategy ?? 'queue';
  }

  /** A round-robin group of the topology (its strategy cannot change at runtime: its members count against it). */
  isGroup(key: string): boolean {
    return this.groups.has(key);
  }

  /** The key's rule: its own, else its template's (`prefix:*`). */
  rateRule(key: string): RateRule | undefined {
    const r = this.cfg.spec?.rateLimits;
    return r?.get(key) ?? (r && r.size > 0 ? r.get(templateOf(key)) : undefined);
  }

  /** The key's theoretical arrival time (0 = unused). */
  tat(key: string): number {
    return this.tats.get(key) ?? 0;
  }

  /** Keys with a limit, a runtime limit or permits held (gauges, admin). */
  keys(): Set<string> {
    const ks = new Set<string>(this.cfg.spec?.concurrency.keys() ?? []);
    for (const k of this.runtime.keys()) ks.add(k);
    for (const k of this.permits.counts().keys()) ks.add(k);
    for (const k of this.keyShares.subjects()) ks.add(k);
    return ks;
  }

  /**
   * Attempt `attempt` of a task with `spec` is dispatched at `atMs`: take its
   * permit and its rate units, or refuse (false, nothing changed).
   */
  start(spec: TaskSpec, taskId: string, attempt: number, atMs: number): boolean {
    if (!this.shares.fits(spec)) return false; // its tenant at its ceiling
    const ck = spec.concurrencyKey;
    const rk = spec.rateLimitKey;
    const rule = rk ? this.rateRule(rk) : undefined;
    let tat = 0;
    if (rule) {
      const a = gcra(this.tat(rk), atMs, spec.rateUnits || 1, rule);
      if (!a.ok) return false;
      tat = a.tat;
    }
    const counter = ck && this.counterKey(ck);
    if (counter && !this.permits.acquire(counter, permitRef(taskId, attempt), this.cap(counter))) return false;
    if (rule) this.setTat(rk, tat, atMs);
    this.shares.take(spec, permitRef(taskId, attempt));
    return true;
  }

  /** The agent is done with the attempt (a result, or it never started): its permit comes back. */
  ended(taskId: string, attempt: number): void {
    this.give(permitRef(taskId, attempt));
  }

  /**
   * The attempt failed (ledger `attemptFailed`): lost or lapsed, its permit
   * lingers (stopped()); otherwise the agent is done with it (ended()). An
   * agent's RATE_LIMITED answer also pauses the task's rate key (pause()).
   */
  failed(spec: TaskSpec, taskId: string, attempt: number, atMs: number, lapse: boolean, r?: TaskResult): void {
    if (lapse) this.stopped(spec, taskId, attempt, atMs);
    else this.ended(taskId, attempt);
    const wait = rateLimitedFor(r);
    if (wait > 0 && spec.rateLimitKey) this.pause(spec.rateLimitKey, atMs + wait);
  }

  /**
   * What the key guards said "too many requests": no unit of it starts before
   * `untilMs`, mesh-wide, and after it the key resumes at its sustained rate
   * rather than with a fresh burst (the provider was just overrun). Done on
   * the GCRA's own state: the TAT moves to untilMs + (burst − 1)·T, the
   * earliest TAT at which one unit is allowed exactly at untilMs. A key with
   * no rule in the topology has no state to pause.
   */
  pause(key: string, untilMs: number): void {
    const rule = this.rateRule(key);
    if (!rule) return;
    this.setTat(key, Math.max(this.tat(key), untilMs + (rule.burst - 1) * emissionMs(rule)), untilMs);
  }

  /**
   * The home stopped waiting for the attempt (lost, lease lapsed, cancelled,
   * dead-lettered while out) but its agent may still run it: the permit stays
   * until the agent answers (returned()) or the task's timeout plus the
   * linger has passed since `atMs`.
   */
  stopped(spec: TaskSpec, taskId: string, attempt: number, atMs: number): void {
    const ref = permitRef(taskId, attempt);
    const until = atMs + (spec.timeoutMs || this.cfg.defaultTimeoutMs) + (this.cfg.spec?.lingerMs ?? 0);
    this.shares.linger(ref, until);
    if (!this.permits.has(ref) || this.permits.isLingering(ref)) return;
    this.permits.linger(ref, until);
  }

  /** The attempt's permit (of its key or of its tenant's share) lingers: it may still run at its agent. */
  isLingering(ref: string): boolean {
    return this.permits.isLingering(ref) || this.shares.permits.isLingering(ref);
  }

  /** Lingering permits (keys' and tenants') whose time has come. */
  due(now: number): string[] {
    const out = this.permits.due(now);
    for (const ref of this.shares.permits.due(now)) if (!this.permits.isLingering(ref)) out.push(ref);
    return out;
  }

  /** An operator set a tenant's minimum and ceiling (both 0: the topology's); attempts out now count. */
  setShare(tenant: string, min: number, max: number, records: Iterable<OutRecord>): void {
    this.shares.setShare(tenant, min, max, records, permitRef);
  }

  /** A lingering permit came back (ledger command permitReturned). */
  returned(taskId: string, attempt: number): void {
    this.give(permitRef(taskId, attempt));
  }

  /**
   * An operator set `key`'s limit and strategy ('' = the topology's); limit 0
   * returns both to the topology's. A round-robin group keeps its strategy.
   */
  setLimit(key: string, limit: number, strategy: ConcurrencyStrategy | '' = ''): void {
    if (limit > 0) this.runtime.set(key, limit);
    else this.runtime.delete(key);
    if (limit > 0 && strategy !== '' && strategy !== 'round-robin' && !this.groups.has(key))
      this.runtimeStrategy.set(key, strategy);
    else this.runtimeStrategy.delete(key);
    for (const l of this.freed) l(key);
  }

  /**
   * Set a key's TAT, and look at the two keys set longest ago: one whose TAT
   * has passed is forgotten (a TAT at or before now is the same as none:
   * gcra() takes max(TAT, now)), one still ahead goes to the back. So dynamic
   * keys (`prefix:*` templates: one key per customer, say) hold state only
   * while they are ahead of their rate, whatever pauses sit among them.
   * Deterministic: the Map's order follows the log (and the snapshot), the
   * same on every replica.
   */
  private setTat(key: string, tat: number, atMs: number): void {
    this.tats.delete(key);
    this.tats.set(key, tat);
    for (let n = 0; n < 2 && this.tats.size > 1; n++) {
      const [k, t] = this.tats.entries().next().value as [string, number];
      this.tats.delete(k);
      if (t > atMs) this.tats.set(k, t);
    }
  }

  private setLimitQuietly(key: string, limit: number, strategy: ConcurrencyStrategy | ''): void {
    this.runtime.set(key, limit);
    if (strategy !== '' && strategy !== 'round-robin' && !this.groups.has(key)) this.runtimeStrategy.set(key, strategy);
  }

  /** Tenant weights set at runtime: each tenant's quantum in the queues' DRR (default 1). */
  readonly weights = new Map<string, number>();

  /**
   * A DRR subject's quantum: its tasks go out this many at a time per turn. A
   * tenant's (runtime over topology), or a key's share's (laneOf).
   */
  weight(subject: string): number {
    if (subject.startsWith(KEY_LANE)) return this.keyShares.share(subject.slice(KEY_LANE.length)).weight || 1;
    return this.weights.get(subject) ?? this.shares.topologyWeight(subject);
  }

  /** An operator set a tenant's weight; 0 returns it to 1. */
  setWeight(tenant: string, weight: number): void {
    if (weight > 0) this.weights.set(tenant, weight);
    else this.weights.delete(tenant);
  }

  private give(ref: string): void {
    this.shares.give(ref);
    const key = this.permits.release(ref);
    if (key !== undefined) for (const l of this.freed) l(key);
  }

  toProto(): LedgerFlow {
    return {
      permits: this.permits.entries().map((e) => {
        const i = e.ref.lastIndexOf('#');
        return { key: e.key, taskId: e.ref.slice(0, i), attempt: Number(e.ref.slice(i + 1)), untilMs: e.untilMs };
      }),
      limits: [...this.runtime].map(([key, limit]) => ({ key, limit, strategy: this.runtimeStrategy.get(key) ?? '' })),
      rates: [...this.tats].map(([key, tatMs]) => ({ key, tatMs })),
      tenantWeights: [...this.weights].map(([tenant, weight]) => ({ tenant, weight })),
      ...this.shares.toProto(),
      keyShares: this.keyShares
        .runtimeEntries()
        .map(([key, s]) => ({ key, weight: s.weight ?? 0, minSlots: s.min, maxSlots: s.max })),
    };
  }

  /** Replace the state with a snapshot's (absent in snapshots taken before flow control: empty). */
  restore(f: LedgerFlow | undefined): void {
    this.permits.load(
      (f?.permits ?? []).map((p) => ({ key: p.key, ref: permitRef(p.taskId, p.attempt), untilMs: p.untilMs })),
    );
    this.runtime.clear();
    this.runtimeStrategy.clear();
    for (const l of f?.limits ?? []) this.setLimitQuietly(l.key, l.limit, strategyOf(l.strategy));
    this.tats.clear();
    for (const r of f?.rates ?? []) this.tats.set(r.key, r.tatMs);
    this.weights.clear();
    for (const w of f?.tenantWeights ?? []) this.weights.set(w.tenant, w.weight);
    this.shares.restore(f, permitRef);
    this.keyShares.load(
      (f?.keyShares ?? []).map((k) => [k.key, { min: k.minSlots, max: k.maxSlots, weight: k.weight }]),
    );
  }
}
