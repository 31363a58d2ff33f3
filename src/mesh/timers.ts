// The cell's timers: two timer wheels (wheel.ts) and the one scheduler timer
// that sweeps them. Leases, retries, task deadlines and route expiries are
// wheel entries, not timers of their own, so a million tasks cost no more
// timers than one; whoever scheduled an entry decides on firing whether it
// still matters (a lease for attempt 3 of a task now on attempt 4 is ignored).
//
// The timer sleeps until the next entry due on either wheel, and at least
// every IDLE_TICK_MS for the periodic sweeps (heartbeats, summaries,
// reconnects, queued deadlines). An idle cell so wakes ~20 times a second,
// not 100 (each wakeup of an idle process costs 100-250 µs of CPU on a loaded
// VM, mostly outside JavaScript).
import type { Scheduler, TimerHandle } from './scheduler.js';
import { TimerWheel } from './wheel.js';

export type WheelEntry =
  | { readonly type: 'lease'; readonly id: string; readonly attempt: number }
  | { readonly type: 'retry'; readonly id: string; readonly attempt: number }
  | { readonly type: 'deadline'; readonly id: string }
  /** Sweep the route table for lapsed routes (relay.ts): one entry at a time per cell, at the next one due. */
  | { readonly type: 'route'; readonly at: number }
  /** A refused attempt's backoff ended (refusal-wait.ts): `key` its route, `at` when it was due. */
  | { readonly type: 'resend'; readonly key: string; readonly at: number };

/** An idle cell's timer fires at least this often (sweeps, periodic summaries, reconnects, queued deadlines). */
const IDLE_TICK_MS = 50;
/** Granularity of the wheel for leases and route expiries. */
const SLOW_TICK_MS = 50;

export class CellTimers {
  /** Retries and deadlines, at tickMs. */
  private readonly wheel: TimerWheel<WheelEntry>;
  /** Route sweeps (seconds away; a few tens of ms late is fine), at SLOW_TICK_MS. */
  private readonly slowWheel: TimerWheel<WheelEntry>;
  /**
   * Leases, at SLOW_TICK_MS: each its task id with its attempt beside it, no entry object. One per attempt
   * sent, for the lease's 30-odd seconds; the entry the fire callback gets is made as it fires.
   */
  private readonly leaseWheel: TimerWheel<string>;
  /** When the armed timer fires (ms on the scheduler's clock); Infinity when none is armed. */
  private armedFor = Infinity;
  /** Armed while started and not closed (a tick re-arms it). */
  private timer: TimerHandle | undefined;
  private closed = false;

  constructor(
    private readonly scheduler: Scheduler,
    private readonly tickMs: number,
    /** An entry came due. */
    private readonly fire: (e: WheelEntry, now: number) => void,
    /** Every tick, after the due entries: the sweeps. */
    private readonly sweep: (now: number) => void,
  ) {
    const now = scheduler.now();
    this.wheel = new TimerWheel(tickMs, now);
    this.slowWheel = new TimerWheel(Math.max(tickMs, SLOW_TICK_MS), now);
    this.leaseWheel = new TimerWheel(Math.max(tickMs, SLOW_TICK_MS), now);
  }

  start(): void {
    this.arm(this.scheduler.now());
  }

  close(): void {
    this.timer?.cancel();
    this.timer = undefined;
    this.armedFor = Infinity;
    this.closed = true;
    this.wheel.clear();
    this.slowWheel.clear();
    this.leaseWheel.clear();
  }

  /** Schedule a wheel entry; wakes the timer earlier if it sleeps past it. */
  schedule(dueMs: number, e: WheelEntry): void {
    if (e.type === 'lease') this.leaseWheel.add(dueMs, e.id, e.attempt);
    else if (e.type === 'route') this.slowWheel.add(dueMs, e);
    else this.wheel.add(dueMs, e);
    if (dueMs < this.armedFor && this.timer !== undefined) this.setTimer(this.scheduler.now(), dueMs);
  }

  /** Fire due entries, then sweep. Called by the timer; tests may call it directly. */
  tick(): void {
    const now = this.scheduler.now();
    this.wheel.advance(now, (e) => this.fire(e, now));
    this.slowWheel.advance(now, (e) => this.fire(e, now));
    this.leaseWheel.advance(now, (id, attempt) => this.fire({ type: 'lease', id, attempt }, now));
    this.sweep(now);
  }

  /** Arm the timer for the next entry due on either wheel, at most IDLE_TICK_MS away. */
  private arm(now: number): void {
    if (this.closed) return;
    let at = now + IDLE_TICK_MS;
    const fine = this.wheel.nextDue(now, IDLE_TICK_MS);
    if (fine !== undefined && fine < at) at = fine;
    const slow = this.slowWheel.nextDue(now, IDLE_TICK_MS);
    if (slow !== undefined && slow < at) at = slow;
    const lease = this.leaseWheel.nextDue(now, IDLE_TICK_MS);
    if (lease !== undefined && lease < at) at = lease;
    this.setTimer(now, at);
  }

  private setTimer(now: number, at: number): void {
    this.timer?.cancel();
    this.armedFor = at;
    // Clamped: a clock injected apart from the scheduler (tests) still ticks at least every IDLE_TICK_MS.
    const delay = Math.min(IDLE_TICK_MS, Math.max(this.tickMs, at - now));
    this.timer = this.scheduler.setTimer(delay, this.onTimer);
  }

  private readonly onTimer = (): void => {
    this.timer = undefined;
    this.armedFor = Infinity;
    this.tick();
    this.arm(this.scheduler.now());
  };
}
