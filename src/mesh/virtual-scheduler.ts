// A Scheduler on virtual time: the in-memory twin of realScheduler, for
// simulations and unit tests. Nothing runs until the driver says so: runDeferred()
// runs work deferred to "the next turn", advance() moves the clock and fires
// due timers in order (ties in the order they were set), running deferred work
// after each, so a cell's timers and pumps replay identically every run.
import type { Scheduler, TimerHandle } from './scheduler.js';

interface VirtualTimer {
  readonly at: number;
  readonly seq: number;
  readonly fn: () => void;
  cancelled: boolean;
}

export class VirtualScheduler implements Scheduler {
  private nowMs: number;
  private seq = 0;
  /** Pending timers, sorted by (at, seq). */
  private timers: VirtualTimer[] = [];
  private deferred: (() => void)[] = [];

  constructor(startMs = 0) {
    this.nowMs = startMs;
  }

  now(): number {
    return this.nowMs;
  }

  setTimer(delayMs: number, fn: () => void): TimerHandle {
    const t: VirtualTimer = { at: this.nowMs + Math.max(0, delayMs), seq: this.seq++, fn, cancelled: false };
    let i = this.timers.length;
    while (i > 0 && this.timers[i - 1]!.at > t.at) i--;
    this.timers.splice(i, 0, t);
    return {
      cancel: () => {
        t.cancelled = true;
      },
    };
  }

  defer(fn: () => void): void {
    this.deferred.push(fn);
  }

  /** Timers set and not yet fired or cancelled. */
  get pendingTimers(): number {
    let n = 0;
    for (const t of this.timers) if (!t.cancelled) n++;
    return n;
  }

  /** Run deferred work, including work it defers, until none is left. Throws past `limit` (a livelock). */
  runDeferred(limit = 1_000_000): number {
    let n = 0;
    while (this.deferred.length > 0) {
      const batch = this.deferred;
      this.deferred = [];
      for (const fn of batch) {
        if (++n > limit) throw new Error(`VirtualScheduler: more than ${limit} deferred calls without rest`);
        fn();
      }
    }
    return n;
  }

  /** Move the clock forward by `ms`, firing every timer due on the way. */
  advance(ms: number): void {
    this.advanceTo(this.nowMs + ms);
  }

  /** Move the clock to `ms`, firing due timers in order; deferred work runs first and after each timer. */
  advanceTo(ms: number): void {
    this.runDeferred();
    for (;;) {
      const t = this.timers[0];
      if (t === undefined || t.at > ms) break;
      this.timers.shift();
      if (t.cancelled) continue;
      if (t.at > this.nowMs) this.nowMs = t.at;
      t.fn();
      this.runDeferred();
    }
    if (ms > this.nowMs) this.nowMs = ms;
  }
}
