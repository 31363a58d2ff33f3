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
  /** Pending timers: a binary min-heap on (at, seq); cancelled ones are dropped when they surface. */
  private heap: VirtualTimer[] = [];
  private live = 0;
  private deferred: (() => void)[] = [];

  constructor(startMs = 0) {
    this.nowMs = startMs;
  }

  now(): number {
    return this.nowMs;
  }

  setTimer(delayMs: number, fn: () => void): TimerHandle {
    const t: VirtualTimer = { at: this.nowMs + Math.max(0, delayMs), seq: this.seq++, fn, cancelled: false };
    this.push(t);
    this.live++;
    return {
      cancel: () => {
        if (t.cancelled) return;
        t.cancelled = true;
        this.live--;
      },
    };
  }

  defer(fn: () => void): void {
    this.deferred.push(fn);
  }

  /** Timers set and not yet fired or cancelled. */
  get pendingTimers(): number {
    return this.live;
  }

  /** When the next pending timer is due (undefined if none). */
  nextAt(): number | undefined {
    this.dropCancelled();
    return this.heap[0]?.at;
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
      this.dropCancelled();
      const t = this.heap[0];
      if (t === undefined || t.at > ms) break;
      this.pop();
      t.cancelled = true; // fired: a later cancel() is a no-op
      this.live--;
      if (t.at > this.nowMs) this.nowMs = t.at;
      t.fn();
      this.runDeferred();
    }
    if (ms > this.nowMs) this.nowMs = ms;
  }

  private dropCancelled(): void {
    while (this.heap.length > 0 && this.heap[0]!.cancelled) this.pop();
  }

  private static before(a: VirtualTimer, b: VirtualTimer): boolean {
    return a.at < b.at || (a.at === b.at && a.seq < b.seq);
  }

  private push(t: VirtualTimer): void {
    const h = this.heap;
    let i = h.length;
    h.push(t);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!VirtualScheduler.before(t, h[p]!)) break;
      h[i] = h[p]!;
      i = p;
    }
    h[i] = t;
  }

  private pop(): void {
    const h = this.heap;
    const last = h.pop()!;
    if (h.length === 0) return;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= h.length) break;
      const r = l + 1;
      const c = r < h.length && VirtualScheduler.before(h[r]!, h[l]!) ? r : l;
      if (!VirtualScheduler.before(h[c]!, last)) break;
      h[i] = h[c]!;
      i = c;
    }
    h[i] = last;
  }
}
