// Circuit breakers: one per agent (at a node cell) or per child cell (at the
// cells above), fed with the outcomes of the attempts sent there. Pure: no
// timers, no Date.now; the clock is injected, so a test or a simulation moves
// time by hand.
//
//   closed ──(consecutiveFailures in a row, or errorRate over windowMs with
//             at least minRequests)──▶ open
//   open ──(cooldownMs)──▶ half-open: at most halfOpenProbes attempts go
//   half-open ──(halfOpenProbes successes)──▶ closed, slow start: its credit
//               ramps from one task to all its slots over slowStartMs
//   half-open ──(a failure)──▶ open again (a new cool-down)
//
// A breaker never holds a task: it only lowers the credit a picker sees
// (allowance), so an open target looks full and work waits in the queue or
// goes to another candidate; it never spills or dead-letters work by itself.
// Any outcome that arrives while half-open counts as a probe's (an attempt
// sent before the trip may answer then): the breaker needs no task ids.
import { configObject, numberKey, PolicyConfigError } from './config.js';

export type BreakerState = 'closed' | 'open' | 'half-open';

export interface BreakerConfig {
  /** false: no breaker ever opens (outcomes are not even counted). */
  readonly enabled: boolean;
  /** Failures in a row that open it (0: this rule is off). */
  readonly consecutiveFailures: number;
  /** Failed share of the outcomes in the window that opens it (0: this rule is off). */
  readonly errorRate: number;
  readonly windowMs: number;
  /** Outcomes the window must hold before errorRate applies. */
  readonly minRequests: number;
  /** Open this long before probing. */
  readonly cooldownMs: number;
  /** Attempts let through while half-open; as many successes close it. */
  readonly halfOpenProbes: number;
  /** After closing, its credit ramps up over this long (0: at once). */
  readonly slowStartMs: number;
  /**
   * At most this share of a cell's targets may be open or half-open at once
   * (rounded down): a breaker that would pass it stays closed. 1 lets every
   * target open; with 0.5 a cell with one child never shuts it off, so a
   * failure deep down never trips every tier above it.
   */
  readonly maxOpenShare: number;
}

export const BREAKER_DEFAULTS: BreakerConfig = {
  enabled: true,
  consecutiveFailures: 5,
  errorRate: 0.5,
  windowMs: 10_000,
  minRequests: 20,
  cooldownMs: 5_000,
  halfOpenProbes: 2,
  slowStartMs: 10_000,
  maxOpenShare: 0.5,
};

const KEYS = Object.keys(BREAKER_DEFAULTS);
const WHAT = 'breaker';

/** Read a breaker section (YAML), over `base`; throws PolicyConfigError naming the key. */
export function parseBreakerConfig(raw: unknown, base: BreakerConfig = BREAKER_DEFAULTS): BreakerConfig {
  const o = configObject(WHAT, raw, KEYS);
  const enabled = o.enabled ?? base.enabled;
  if (typeof enabled !== 'boolean') throw new PolicyConfigError(WHAT, `"enabled" must be true or false`);
  const int = (k: keyof BreakerConfig, min: number): number =>
    numberKey(WHAT, o, k, base[k] as number, { min, integer: true });
  return {
    enabled,
    consecutiveFailures: int('consecutiveFailures', 0),
    errorRate: numberKey(WHAT, o, 'errorRate', base.errorRate, { min: 0, max: 1 }),
    windowMs: int('windowMs', 10),
    minRequests: int('minRequests', 1),
    cooldownMs: int('cooldownMs', 1),
    halfOpenProbes: int('halfOpenProbes', 1),
    slowStartMs: int('slowStartMs', 0),
    maxOpenShare: numberKey(WHAT, o, 'maxOpenShare', base.maxOpenShare, { min: 0, max: 1 }),
  };
}

/** The window is kept as this many buckets of windowMs/BUCKETS each. */
const BUCKETS = 10;

export interface BreakerInfo {
  readonly state: BreakerState;
  readonly consecutiveFailures: number;
  /** Failed share in the window now (0 with no outcomes). */
  readonly errorRate: number;
  readonly outcomes: number;
  /** When it last opened (0: never). */
  readonly openedAtMs: number;
  /** Closed and ramping up: the share of its slots it may fill now (1 when not ramping). */
  readonly share: number;
  readonly trips: number;
}

/** One target's breaker. */
export class Breaker {
  private st: BreakerState = 'closed';
  private consecutive = 0;
  /**
   * The window's outcomes: bucket i's successes at [i], failures at [BUCKETS + i]. One small-integer
   * array literal, not two typed arrays: a node makes a breaker per agent at its first outcome, and at
   * 20,000 agents that is most tasks' (a typed array and its buffer cost several times as much to make).
   */
  // prettier-ignore
  private readonly n: number[] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
  private epoch = 0;
  openedAt = 0;
  private closedAt = Number.NEGATIVE_INFINITY;
  private halfOpenAt = 0;
  private probesSent = 0;
  private probesOk = 0;
  trips = 0;
  /** Grows with every change of what it allows (a transition, probes renewed): a picker built before is stale. */
  version = 0;

  constructor(private readonly c: BreakerConfig) {}

  /**
   * The state at `now`: an open breaker whose cool-down ended is half-open.
   * Half-open, its probes are renewed every cool-down, so a probe that never
   * answers (its lease ran out somewhere, or it was handed back) cannot leave
   * it half-open and shut for good.
   */
  state(now: number): BreakerState {
    if (this.st === 'open' && now - this.openedAt >= this.c.cooldownMs) {
      this.st = 'half-open';
      this.halfOpenAt = now;
      this.probesSent = 0;
      this.probesOk = 0;
      this.version++;
    } else if (this.st === 'half-open' && now - this.halfOpenAt >= this.c.cooldownMs && this.probesSent > 0) {
      this.halfOpenAt = now;
      this.probesSent = 0;
      this.version++;
    }
    return this.st;
  }

  /** Closed and past its slow start: nothing to limit. */
  free(now: number): boolean {
    return this.state(now) === 'closed' && now - this.closedAt >= this.c.slowStartMs;
  }

  /** An outcome; true if the state changed. `mayTrip`: opening from closed is allowed now (maxOpenShare). */
  record(ok: boolean, now: number, mayTrip = true): boolean {
    const s = this.state(now);
    if (s === 'open') return false; // what was sent before the trip: already judged
    if (s === 'half-open') {
      if (!ok) return this.open(now);
      if (++this.probesOk < this.c.halfOpenProbes) return false;
      this.st = 'closed';
      this.version++;
      this.closedAt = now;
      this.consecutive = 0;
      this.n.fill(0);
      return true;
    }
    this.roll(now);
    const b = this.epoch % BUCKETS;
    if (ok) {
      this.consecutive = 0;
      this.n[b]!++;
      return false;
    }
    this.consecutive++;
    this.n[BUCKETS + b]!++;
    if (!mayTrip) return false;
    const cf = this.c.consecutiveFailures;
    if (cf > 0 && this.consecutive >= cf) return this.open(now);
    if (this.c.errorRate > 0) {
      const { bad, total } = this.window();
      if (total >= this.c.minRequests && bad >= this.c.errorRate * total) return this.open(now);
    }
    return false;
  }

  /** An attempt was sent to the target. */
  sent(now: number): void {
    if (this.state(now) === 'half-open') this.probesSent++;
  }

  /** An attempt sent was handed back unrun (refused for capacity): a probe it took is free again. */
  unsent(now: number): void {
    if (this.state(now) === 'half-open' && this.probesSent > 0) {
      this.probesSent--;
      this.version++;
    }
  }

  /**
   * How many more attempts the target may be sent now, given `total` slots of
   * which `free` are free: 0 open, the probes left half-open, a growing share
   * of the slots in slow start, Infinity otherwise.
   */
  allowance(now: number, total: number, free: number): number {
    const s = this.state(now);
    if (s === 'open') return 0;
    if (s === 'half-open') return Math.max(0, this.c.halfOpenProbes - this.probesSent);
    const share = this.share(now);
    if (share >= 1) return Infinity;
    // At least one task at a time from the moment it closes: the ramp starts from a trickle, not from nothing.
    return Math.max(0, Math.max(1, Math.ceil(total * share)) - (total - free));
  }

  /** The share of its slots a closed breaker may fill (slow start); 1 once ramped. */
  share(now: number): number {
    if (this.st !== 'closed' || this.c.slowStartMs <= 0) return 1;
    return Math.min(1, Math.max(0, now - this.closedAt) / this.c.slowStartMs);
  }

  info(now: number): BreakerInfo {
    const state = this.state(now);
    this.roll(now);
    const { bad, total } = this.window();
    return {
      state,
      consecutiveFailures: this.consecutive,
      errorRate: total > 0 ? bad / total : 0,
      outcomes: total,
      openedAtMs: this.openedAt,
      share: this.share(now),
      trips: this.trips,
    };
  }

  private open(now: number): boolean {
    this.st = 'open';
    this.version++;
    this.openedAt = now;
    this.trips++;
    return true;
  }

  /** Zero the buckets that fell out of the window since the last outcome. */
  private roll(now: number): void {
    const e = Math.floor(now / Math.max(1, this.c.windowMs / BUCKETS));
    const steps = Math.min(BUCKETS, e - this.epoch);
    for (let i = 1; i <= steps; i++) {
      const b = (this.epoch + i) % BUCKETS;
      this.n[b] = 0;
      this.n[BUCKETS + b] = 0;
    }
    if (e > this.epoch) this.epoch = e;
  }

  private window(): { bad: number; total: number } {
    let bad = 0;
    let total = 0;
    for (let i = 0; i < BUCKETS; i++) {
      bad += this.n[BUCKETS + i]!;
      total += this.n[BUCKETS + i]! + this.n[i]!;
    }
    return { bad, total };
  }
}

export interface BreakerCounts {
  closed: number;
  open: number;
  halfOpen: number;
}

/**
 * The breakers of one cell, by target id. An entry exists only for a target
 * with outcomes; `prune` drops those of targets gone and closed, so the map
 * stays within the targets present plus those that left open.
 */
export class Breakers {
  private readonly byId = new Map<string, Breaker>();
  /** Targets not plainly closed (open, half-open, slow start), with the version last seen: the only ones that limit. */
  private readonly limiting = new Map<string, number>();
  /** Openings, ever (trips and re-trips from half-open). */
  trips = 0;

  constructor(
    readonly config: BreakerConfig,
    private readonly clock: () => number,
  ) {}

  get enabled(): boolean {
    return this.config.enabled;
  }

  /** True if some breaker may limit its target now: only then do pickers need caps. */
  get active(): boolean {
    return this.limiting.size > 0;
  }

  /** An outcome of an attempt sent to `id`; true if its breaker changed state. */
  record(id: string, ok: boolean): boolean {
    if (!this.config.enabled) return false;
    let b = this.byId.get(id);
    if (b === undefined) this.byId.set(id, (b = new Breaker(this.config)));
    const before = b.trips;
    const changed = b.record(ok, this.clock(), ok || this.mayTrip());
    this.trips += b.trips - before;
    if (changed) this.limiting.set(id, b.version);
    return changed;
  }

  /** An attempt was sent to `id` (counts probes while half-open). */
  sent(id: string): void {
    if (this.limiting.size === 0 || !this.limiting.has(id)) return;
    this.byId.get(id)?.sent(this.clock());
  }

  /** Targets known (set by prune): maxOpenShare is a share of them. */
  private targets = 0;

  /** Another breaker may open without passing maxOpenShare of the targets. */
  private mayTrip(): boolean {
    const now = this.clock();
    let shut = 0;
    for (const id of this.limiting.keys()) if (this.byId.get(id)?.state(now) !== 'closed') shut++;
    return shut + 1 <= Math.floor(this.config.maxOpenShare * Math.max(1, this.targets));
  }

  /** The breaker of `id` may limit it now (callers then rebuild rather than hand credits back). */
  limits(id: string): boolean {
    return this.limiting.has(id);
  }

  /** Extra attempts `id` may take now (see Breaker.allowance); Infinity when unlimited. */
  allowance(id: string, total: number, free: number): number {
    if (!this.limiting.has(id)) return Infinity;
    return this.byId.get(id)?.allowance(this.clock(), total, free) ?? Infinity;
  }

  state(id: string): BreakerState {
    return this.byId.get(id)?.state(this.clock()) ?? 'closed';
  }

  info(id: string): BreakerInfo | undefined {
    return this.byId.get(id)?.info(this.clock());
  }

  /**
   * Move the time-driven transitions along (cool-downs ending, slow starts
   * done); true if a state changed since the last call, so a picker built
   * before it is stale.
   */
  advance(): boolean {
    if (this.limiting.size === 0) return false;
    const now = this.clock();
    let changed = false;
    for (const [id, seen] of this.limiting) {
      const b = this.byId.get(id);
      if (b === undefined || b.free(now)) {
        this.limiting.delete(id);
        changed = true;
        continue;
      }
      if (b.version !== seen) {
        this.limiting.set(id, b.version);
        changed = true;
      }
    }
    return changed;
  }

  /** Some target is in slow start (closed, still limited): its allowance grows with time alone. */
  ramping(): boolean {
    const now = this.clock();
    for (const id of this.limiting.keys()) if (this.byId.get(id)?.state(now) === 'closed') return true;
    return false;
  }

  /** An attempt sent to `id` came back unrun (a requeue): it was no probe after all. */
  unsent(id: string): void {
    if (this.limiting.has(id)) this.byId.get(id)?.unsent(this.clock());
  }

  /** Forget the breakers of targets not in `present` that are closed (those that left open stay). */
  prune(present: ReadonlySet<string>): void {
    const now = this.clock();
    this.targets = present.size;
    for (const [id, b] of this.byId) {
      if (present.has(id)) continue;
      if (b.state(now) !== 'open') {
        this.byId.delete(id);
        this.limiting.delete(id);
      }
    }
  }

  /**
   * Targets per state, among `ids` (those without a breaker are closed). Only
   * limiting targets can be open or half-open, so for a set of ids this
   * looks at those alone: O(limiting), not O(targets), on every summary.
   */
  counts(ids: Iterable<string>): BreakerCounts {
    const present = ids instanceof Set ? (ids as ReadonlySet<string>) : new Set(ids);
    const out: BreakerCounts = { closed: present.size, open: 0, halfOpen: 0 };
    const now = this.clock();
    for (const id of this.limiting.keys()) {
      if (!present.has(id)) continue;
      const s = this.byId.get(id)?.state(now) ?? 'closed';
      if (s === 'closed') continue;
      out.closed--;
      if (s === 'open') out.open++;
      else out.halfOpen++;
    }
    return out;
  }
}
