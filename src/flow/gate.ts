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
// Soft state, like the queue: a new leader starts empty and admits from its
// ledger's counts.
//
// Invariant: held(key) in the ledger + pending(key) <= limit(key) for every
// start admitted here, so the leader never proposes more than the limit.
import type { TaskSpec } from '../gen/meshlb/v1/task.js';
import type { FlowState } from './flow-state.js';
import { emissionMs, gcra } from './gcra.js';

export type GateAnswer =
  | { readonly type: 'go' }
  | { readonly type: 'held' }
  | { readonly type: 'cancel'; readonly why: string }
  /** Held, and the key's oldest task in progress is to be cancelled to make room (cancel-in-progress). */
  | { readonly type: 'preempt'; readonly victim: string; readonly why: string };

export interface GateItem {
  readonly taskId: string;
  readonly spec: TaskSpec;
}

export interface GateHost<T> {
  /** Back into the queue, keeping its age. */
  requeue(item: T, enqueuedAt: number): void;
  /** Run `fn` in `ms` (the cell's scheduler). */
  later(ms: number, fn: () => void): void;
}

interface Waiting<T> {
  readonly item: T;
  readonly enqueuedAt: number;
}

const GO: GateAnswer = { type: 'go' };
const HELD: GateAnswer = { type: 'held' };

/** Needs flow control: names a key. */
export const isKeyed = (spec: TaskSpec): boolean => spec.concurrencyKey !== '' || spec.rateLimitKey !== '';

export class FlowGate<T extends GateItem> {
  /** Concurrency key → starts admitted whose dispatch the ledger has not applied yet. */
  private readonly pending = new Map<string, number>();
  /** Rate key → the TAT including starts admitted and not yet applied. */
  private readonly shadowTat = new Map<string, number>();
  /** `c:key` / `r:key` → waiting tasks, first come first. */
  private readonly waiting = new Map<string, Map<string, Waiting<T>>>();
  /** taskId → where it waits and why. */
  private readonly where = new Map<string, { readonly wk: string; readonly why: string }>();
  /** Rate keys with a release timer armed. */
  private readonly armed = new Set<string>();
  /** Bumped by clear(): timers armed before it do nothing. */
  private epoch = 0;
  /** Tasks this leader decided to cancel for a newer one (cancel-in-progress): never chosen twice. */
  private readonly victims = new Set<string>();

  constructor(
    private readonly state: FlowState,
    private readonly host: GateHost<T>,
    private readonly now: () => number,
  ) {}

  admit(item: T, enqueuedAt: number, now: number): GateAnswer {
    const spec = item.spec;
    const ck = spec.concurrencyKey;
    if (ck) {
      const limit = this.state.limit(ck);
      if (this.state.permits.held(ck) + (this.pending.get(ck) ?? 0) >= limit) {
        const why = `concurrency key ${ck} at its limit of ${limit}`;
        const strategy = this.state.strategy(ck);
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
        this.hold(`r:${rk}`, item, enqueuedAt, `rate limit ${rk} until ${new Date(a.retryAtMs).toISOString()}`);
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
    const ck = item.spec.concurrencyKey;
    if (!ck) return;
    const n = (this.pending.get(ck) ?? 0) - 1;
    if (n > 0) this.pending.set(ck, n);
    else this.pending.delete(ck);
    if (n >= 0) this.freed(ck);
  }

  /** Permits of `key` may have come back (or its limit changed): let as many waiting tasks go as fit. */
  freed(key: string): void {
    const list = this.waiting.get(`c:${key}`);
    if (!list) return;
    const room = this.state.limit(key) - this.state.permits.held(key) - (this.pending.get(key) ?? 0);
    this.release(`c:${key}`, list, room);
  }

  /** Why the task waits here, or undefined when it does not. */
  whyWaiting(taskId: string): string | undefined {
    return this.where.get(taskId)?.why;
  }

  holds(taskId: string): boolean {
    return this.where.has(taskId);
  }

  /** Tasks waiting per concurrency key (`c:`) and rate key (`r:`). */
  backlog(): Map<string, number> {
    const m = new Map<string, number>();
    for (const [wk, list] of this.waiting) m.set(wk, list.size);
    return m;
  }

  /** The task ended while waiting (cancelled, dead-lettered). */
  forget(taskId: string): void {
    const w = this.where.get(taskId);
    if (!w) return;
    this.where.delete(taskId);
    const list = this.waiting.get(w.wk);
    list?.delete(taskId);
    if (list?.size === 0) this.waiting.delete(w.wk);
  }

  /** This replica stopped leading: the new leader admits from its ledger. */
  clear(): void {
    this.pending.clear();
    this.shadowTat.clear();
    this.waiting.clear();
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

  private release(wk: string, list: Map<string, Waiting<T>>, room: number): void {
    for (const [id, w] of list) {
      if (room-- <= 0) break;
      list.delete(id);
      this.where.delete(id);
      this.host.requeue(w.item, w.enqueuedAt);
    }
    if (list.size === 0) this.waiting.delete(wk);
  }
}
