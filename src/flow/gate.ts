// The home leader's side of flow control: before a home task's next attempt
// leaves the cell (the dispatcher asks admit() before it picks a target), it
// must fit its concurrency key and its rate-limit key. The ledger decides for
// good when it applies the `dispatched` command (flow-state.ts); this gate
// keeps the leader from proposing starts the ledger would refuse, and keeps
// the tasks that must wait out of the queue, so a long backlog of one key
// costs nothing per pump:
//   go       the attempt may start: its key's count is reserved (pending)
//            until the ledger has applied the dispatch (settled());
//   held     it waits here, by key, with the reason (whyWaiting()), until a
//            permit of its key comes back (freed()) or its rate allows;
//   cancel   the key's strategy is cancel-newest: the task ends CANCELLED;
//   preempt  the key's strategy is cancel-in-progress: it waits, and the
//            key's oldest attempt in progress is cancelled (once each); its
//            permit comes back when its agent stops, and then this one goes.
// A round-robin group's tasks (keys `group:member`) count against the group
// and wait in one line per member; freed permits go to the members in turn
// (round-robin.ts).
// Before the keys, a task's tenant must be under its ceiling (tenant-gate.ts:
// tenant shares), and a start admitted there is unreserved when the keys hold it.
// Soft state, like the queue: a new leader starts empty and admits from its
// ledger's counts.
//
// A key's share (FlowState.keyShares) adds a ceiling, held as the limit is
// (cap(): the lower of the two), and a minimum: underMin() names the keys'
// DRR lanes below it beside the tenants below theirs.
//
// Invariant: held(key) in the ledger + pending(key) + promised(key) <=
// cap(key) for every start admitted here, so the leader never proposes more
// than the limit or the ceiling.
import type { TaskSpec } from '../gen/meshlb/v1/task.js';
import { keyLane, type FlowState } from './flow-state.js';
import { emissionMs, gcra } from './gcra.js';
import { RoundRobinWaiters } from './round-robin.js';
import { TenantGate } from './tenant-gate.js';
import type { GateHost, GateItem } from './gate-host.js';
import { isoTime } from '../util/iso-time.js';

export type GateAnswer =
  | { readonly type: 'go' }
  | { readonly type: 'held' }
  | { readonly type: 'cancel'; readonly why: string }
  /** Held, and the key's oldest task in progress is to be cancelled to make room (cancel-in-progress). */
  | { readonly type: 'preempt'; readonly victim: string; readonly why: string };

export type { GateHost, GateItem } from './gate-host.js';

interface Waiting<T> {
  readonly item: T;
  readonly enqueuedAt: number;
}

const GO: GateAnswer = { type: 'go' };
const HELD: GateAnswer = { type: 'held' };

/** Needs flow control: names a key. */
export const isKeyed = (spec: TaskSpec): boolean => spec.concurrencyKey !== '' || spec.rateLimitKey !== '';

/** Goes through the gate: names a key, or its tenant has a share (tenant-shares.ts). */
export const isGated = (spec: TaskSpec, state: FlowState): boolean => isKeyed(spec) || state.shares.applies(spec);

export class FlowGate<T extends GateItem> {
  /** Concurrency key → starts admitted whose dispatch the ledger has not applied yet. */
  private readonly pending = new Map<string, number>();
  /** Rate key → the TAT including starts admitted and not yet applied. */
  private readonly shadowTat = new Map<string, number>();
  /** `c:key` / `r:key` → waiting tasks, first come first. */
  private readonly waiting = new Map<string, Map<string, Waiting<T>>>();
  /**
   * Tasks let go for a permit that came back, until they are admitted (or
   * end): taskId → the key they hold room of. Without this, two permits
   * coming back before the first task let go reached admit() would let go two
   * more, and the one beaten to the room would be held again at the back.
   */
  private readonly promised = new Map<string, string>();
  private readonly promisedPer = new Map<string, number>();
  /** Round-robin group → its waiting tasks, one line per member. */
  private readonly groups = new Map<string, RoundRobinWaiters<Waiting<T>>>();
  /** taskId → where it waits and why (`member`: in a round-robin group's line). */
  private readonly where = new Map<string, { readonly wk: string; readonly why: string; readonly member?: string }>();
  /** Rate keys with a release timer armed. */
  private readonly armed = new Set<string>();
  /** Bumped by clear(): timers armed before it do nothing. */
  private epoch = 0;
  /** Tasks this leader decided to cancel for a newer one (cancel-in-progress): never chosen twice. */
  private readonly victims = new Set<string>();
  /** Tenants' ceilings and minimums (tenant-gate.ts), asked before the keys. */
  readonly tenants: TenantGate<T>;

  constructor(
    private readonly state: FlowState,
    private readonly host: GateHost<T>,
    private readonly now: () => number,
  ) {
    this.tenants = new TenantGate(state.shares, host);
  }

  admit(item: T, enqueuedAt: number, now: number): GateAnswer {
    if (!this.tenants.admit(item, enqueuedAt)) return HELD;
    const a = this.admitKeys(item, enqueuedAt, now);
    if (a.type !== 'go') this.tenants.settled(item);
    return a;
  }

  private admitKeys(item: T, enqueuedAt: number, now: number): GateAnswer {
    this.unpromise(item.taskId);
    const spec = item.spec;
    const named = spec.concurrencyKey;
    const ck = named && this.state.counterKey(named);
    if (ck) {
      const limit = this.state.cap(ck);
      if (this.count(ck) >= limit) {
        const strategy = this.state.strategy(ck);
        if (strategy === 'round-robin') {
          this.holdInGroup(ck, named, item, enqueuedAt, limit);
          return HELD;
        }
        const why = `concurrency key ${ck} at its ${limit < this.state.limit(ck) ? 'ceiling' : 'limit'} of ${limit}`;
        if (strategy === 'cancel-newest') return { type: 'cancel', why: `${why} (cancel-newest)` };
        this.hold(`c:${ck}`, item, enqueuedAt, why);
        return strategy === 'cancel-in-progress' ? this.preempt(ck, why) : HELD;
      }
    }
    const rk = spec.rateLimitKey;
    const rule = rk ? this.state.rateRule(rk) : undefined;
    if (rule) {
      const a = gcra(Math.max(this.state.tat(rk), this.shadowTat.get(rk) ?? 0), now, spec.rateUnits || 1, rule);
      if (!a.ok) {
        this.hold(`r:${rk}`, item, enqueuedAt, `rate limit ${rk} until ${isoTime(a.retryAtMs)}`);
        this.arm(rk, a.retryAtMs - now);
        return HELD;
      }
      this.shadowTat.set(rk, a.tat);
    }
    if (ck) this.pending.set(ck, (this.pending.get(ck) ?? 0) + 1);
    return GO;
  }

  /** An admitted start did not leave after all (no target this pump), or the ledger applied it: unreserve. */
  settled(item: T): void {
    this.tenants.settled(item);
    const ck = item.spec.concurrencyKey && this.state.counterKey(item.spec.concurrencyKey);
    if (!ck) return;
    const n = (this.pending.get(ck) ?? 0) - 1;
    if (n > 0) this.pending.set(ck, n);
    else this.pending.delete(ck);
    if (n >= 0) this.freed(ck);
  }

  /** Permits of `key` may have come back (or its limit changed): let as many waiting tasks go as fit. */
  freed(key: string): void {
    const list = this.waiting.get(`c:${key}`);
    const group = this.groups.get(key);
    if (!list && !group) return;
    const room = this.state.cap(key) - this.count(key);
    if (list) this.release(`c:${key}`, list, room, key);
    else if (group && room > 0) {
      for (const [id, w] of group.take(room)) {
        this.where.delete(id);
        this.promise(id, key);
        this.host.requeue(w.item, w.enqueuedAt);
      }
      if (group.size === 0) this.groups.delete(key);
    }
  }

  /** A key's slots counted now: permits in the ledger (lingering included), starts pending and promised here. */
  count(key: string): number {
    return this.state.permits.held(key) + (this.pending.get(key) ?? 0) + (this.promisedPer.get(key) ?? 0);
  }

  /**
   * The DRR subjects (the queue's lanes) under their minimum, the furthest
   * below (count / min) first: tenants (tenant-gate.ts) and keys with a share
   * (their lanes, keyLane). The dispatcher serves their queued tasks first.
   */
  underMin(): readonly string[] {
    const tenants = this.tenants.underMin();
    if (this.state.keyShares.empty) return tenants;
    let out: [string, number][] | undefined;
    for (const [key, min] of this.state.keyShares.withMinimum()) {
      const n = this.count(key);
      if (n < min) (out ??= []).push([keyLane(key), n / min]);
    }
    if (!out) return tenants;
    for (const t of tenants) out.push([t, this.tenants.count(t) / this.state.shares.share(t).min]);
    return out.sort((a, b) => a[1] - b[1] || (a[0] < b[0] ? -1 : 1)).map(([s]) => s);
  }

  /** Why the task waits here, or undefined when it does not. */
  whyWaiting(taskId: string): string | undefined {
    return this.where.get(taskId)?.why ?? this.tenants.whyWaiting(taskId);
  }

  holds(taskId: string): boolean {
    return this.where.has(taskId) || this.tenants.holds(taskId);
  }

  /** Tasks waiting per concurrency key (`c:`) and rate key (`r:`). */
  backlog(): Map<string, number> {
    const m = new Map<string, number>();
    for (const [wk, list] of this.waiting) m.set(wk, list.size);
    for (const [key, group] of this.groups) m.set(`c:${key}`, group.size);
    return m;
  }

  /** When the longest-waiting task of each `c:` / `r:` key was enqueued (gauges; O(waiting)). */
  oldestWaiting(): Map<string, number> {
    const m = new Map<string, number>();
    const min = (wk: string, ws: Iterable<{ readonly enqueuedAt: number }>) => {
      for (const w of ws) m.set(wk, Math.min(m.get(wk) ?? Infinity, w.enqueuedAt));
    };
    for (const [wk, list] of this.waiting) min(wk, list.values());
    for (const [key, group] of this.groups) min(`c:${key}`, group.waiting());
    return m;
  }

  /** The task ended while waiting (cancelled, dead-lettered). */
  forget(taskId: string): void {
    this.tenants.forget(taskId);
    // Let go for a permit and ended before it was admitted (queued behind a multi-slot hold until
    // its deadline, sim:mesh seed 116; cancelled, seed 114 with debounce bursts): the room it held
    // goes to the next waiting task, or no one wakes them while nothing of the key runs.
    const promised = this.promised.get(taskId);
    this.unpromise(taskId);
    if (promised !== undefined) this.freed(promised);
    const w = this.where.get(taskId);
    if (!w) return;
    this.where.delete(taskId);
    if (w.member !== undefined) {
      const group = this.groups.get(w.wk);
      if (group?.delete(w.member, taskId) && group.size === 0) this.groups.delete(w.wk);
      return;
    }
    const list = this.waiting.get(w.wk);
    list?.delete(taskId);
    if (list?.size === 0) this.waiting.delete(w.wk);
  }

  /** This replica stopped leading: the new leader admits from its ledger. */
  clear(): void {
    this.tenants.clear();
    this.pending.clear();
    this.promised.clear();
    this.promisedPer.clear();
    this.shadowTat.clear();
    this.waiting.clear();
    this.groups.clear();
    this.where.clear();
    this.armed.clear();
    this.victims.clear();
    this.epoch++;
  }

  private preempt(ck: string, why: string): GateAnswer {
    const ref = this.state.permits.oldestLive(ck, (r) => this.victims.has(r.slice(0, r.lastIndexOf('#'))));
    if (ref === undefined) return HELD;
    const victim = ref.slice(0, ref.lastIndexOf('#'));
    // Bounded: a leader that cancelled this many keeps no older names (their permits linger by now).
    if (this.victims.size >= 10_000) this.victims.clear();
    this.victims.add(victim);
    return { type: 'preempt', victim, why: `${why}: cancelled for a newer task (cancel-in-progress)` };
  }

  /** Wait in `member`'s line of round-robin group `group` (its `where` names the group, not `c:`). */
  private holdInGroup(group: string, member: string, item: T, enqueuedAt: number, limit: number): void {
    let g = this.groups.get(group);
    if (!g) this.groups.set(group, (g = new RoundRobinWaiters()));
    g.add(member, item.taskId, { item, enqueuedAt });
    const why = `concurrency group ${group} at its limit of ${limit} (${member} waits its turn, round-robin)`;
    this.where.set(item.taskId, { wk: group, why, member });
  }

  private hold(wk: string, item: T, enqueuedAt: number, why: string): void {
    let list = this.waiting.get(wk);
    if (!list) this.waiting.set(wk, (list = new Map()));
    list.set(item.taskId, { item, enqueuedAt });
    this.where.set(item.taskId, { wk, why });
  }

  /** Release a rate key's waiting tasks when its rate allows again (one timer per key). */
  private arm(rk: string, ms: number): void {
    if (this.armed.has(rk)) return;
    this.armed.add(rk);
    const epoch = this.epoch;
    this.host.later(Math.max(1, Math.ceil(ms)), () => {
      if (epoch !== this.epoch) return;
      this.armed.delete(rk);
      const list = this.waiting.get(`r:${rk}`);
      const rule = this.state.rateRule(rk);
      if (!list || !rule) return;
      // As many as the rate lets through now (at least one: it re-arms if it must wait again).
      const now = this.now();
      const t = emissionMs(rule);
      const base = Math.max(this.state.tat(rk), this.shadowTat.get(rk) ?? 0, now);
      this.release(`r:${rk}`, list, Math.max(1, Math.floor((now + rule.burst * t - base) / t)));
      // Those let go take the rate as they start; the rest wait for the next unit (the gate holds
      // nobody again until they are admitted, so it is this timer that comes back for them).
      if (this.waiting.has(`r:${rk}`)) this.arm(rk, t);
    });
  }

  private promise(taskId: string, key: string): void {
    this.promised.set(taskId, key);
    this.promisedPer.set(key, (this.promisedPer.get(key) ?? 0) + 1);
  }

  private unpromise(taskId: string): void {
    const key = this.promised.get(taskId);
    if (key === undefined) return;
    this.promised.delete(taskId);
    const n = (this.promisedPer.get(key) ?? 0) - 1;
    if (n > 0) this.promisedPer.set(key, n);
    else this.promisedPer.delete(key);
  }

  /** Let go up to `room` of a line, first come first; for a concurrency key (`key`), each holds room until admitted. */
  private release(wk: string, list: Map<string, Waiting<T>>, room: number, key?: string): void {
    for (const [id, w] of list) {
      if (room-- <= 0) break;
      list.delete(id);
      this.where.delete(id);
      if (key !== undefined) this.promise(id, key);
      this.host.requeue(w.item, w.enqueuedAt);
    }
    if (list.size === 0) this.waiting.delete(wk);
  }
}
