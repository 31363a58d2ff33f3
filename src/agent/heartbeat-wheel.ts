// The heartbeats of every agent in a process on one shared timer. Each agent
// sends a load every interval (stretched by its node when it holds many:
// 18 s at 12,500 agents), at a random phase so the node does not hear them
// all at once. With a timer per agent, a process holding thousands (agent-sim,
// a worker pool) woke up for nearly every load, and so did its node: each
// wakeup, its write and its read cost far more than the load itself
// (docs/performance.md, Scale: 12,500 agents of three processes on one node, 0.045
// cores at the node and 0.10 in the agents' processes, ~450 and ~160 wakeups
// a second). Here a load goes on the first tick of a shared grid at or after
// its due time: every load due in a tick goes out in one turn of the event
// loop, so HTTP/2 writes them to each connection in one write, and the node
// reads them in one read.
//
// A tick is BEAT_TICK_MS (250 ms), or a quarter of the interval when that is
// shorter (tests beat every 100 ms), so a load is never later than a quarter
// interval; a node declares an agent dead after three intervals. Due times
// advance by whole intervals from the first, so the rounding never drifts.

export const BEAT_TICK_MS = 250;

/** Something that beats: called on the tick at or after each due time. */
export interface Beat {
  beat(): void;
}

interface Entry {
  /** When the next beat is due (performance.now() ms) and the grid time it goes at. */
  due: number;
  at: number;
  readonly every: number;
  readonly tick: number;
}

export class HeartbeatWheel {
  /** Beats by the grid time they go at. */
  private readonly slots = new Map<number, Set<Beat>>();
  private readonly entries = new Map<Beat, Entry>();
  private timer: NodeJS.Timeout | undefined;
  /** The grid time the timer is armed for (Infinity: none). */
  private armedAt = Number.POSITIVE_INFINITY;
  /** In run(): it arms the timer once, at the end. */
  private running = false;
  /** The setTimeout the timer came from: tests swap the clock (fake timers), and a timer of the old one never fires. */
  private armedWith: typeof setTimeout | undefined;

  constructor(private readonly tickMs = BEAT_TICK_MS) {}

  /** `b` beats every `intervalMs`, the first `firstMs` from now, each on the first tick at or after it is due. */
  start(b: Beat, intervalMs: number, firstMs: number): void {
    this.stop(b);
    const every = Math.max(1, intervalMs);
    const tick = Math.min(this.tickMs, every / 4);
    this.place(b, { due: performance.now() + Math.max(0, firstMs), at: 0, every, tick });
  }

  stop(b: Beat): void {
    const e = this.entries.get(b);
    if (!e) return;
    this.entries.delete(b);
    this.unslot(b, e.at);
  }

  /** Beats registered (tests). */
  get size(): number {
    return this.entries.size;
  }

  private place(b: Beat, e: Entry): void {
    e.at = Math.ceil(e.due / e.tick) * e.tick;
    this.entries.set(b, e);
    let set = this.slots.get(e.at);
    if (!set) this.slots.set(e.at, (set = new Set()));
    set.add(b);
    if (this.running) return;
    if (this.armedWith !== setTimeout) this.arm(this.earliest());
    else if (e.at < this.armedAt) this.arm(e.at);
  }

  private unslot(b: Beat, at: number): void {
    const set = this.slots.get(at);
    if (!set) return;
    set.delete(b);
    if (set.size === 0) this.slots.delete(at);
  }

  private earliest(): number {
    let next = Number.POSITIVE_INFINITY;
    for (const at of this.slots.keys()) if (at < next) next = at;
    return next;
  }

  private arm(at: number): void {
    if (this.timer && this.armedWith === setTimeout) clearTimeout(this.timer);
    this.timer = undefined;
    this.armedAt = at;
    this.armedWith = setTimeout;
    if (at === Number.POSITIVE_INFINITY) return;
    this.timer = setTimeout(() => this.run(), Math.max(0, at - performance.now()));
    // The streams keep the process alive, not their heartbeats (as with a timer per agent).
    this.timer.unref();
  }

  private run(): void {
    const now = performance.now();
    // Timers may fire a fraction of a millisecond before the time asked: the slot armed for is due.
    const limit = Math.max(now, this.armedAt);
    this.timer = undefined;
    this.armedAt = Number.POSITIVE_INFINITY;
    this.running = true;
    try {
      const due = [...this.slots.keys()].filter((at) => at <= limit).sort((a, b) => a - b);
      for (const at of due) {
        const set = this.slots.get(at);
        if (!set) continue;
        this.slots.delete(at);
        for (const b of set) {
          const e = this.entries.get(b);
          // Stopped, or started again elsewhere on the grid, by an earlier beat of this tick.
          if (!e || e.at !== at) continue;
          try {
            b.beat();
          } catch {
            // A beat that throws misses this load, not the others' nor its next one.
          }
          // Stopped or started again from inside beat(): that registration stands.
          if (this.entries.get(b) !== e) continue;
          e.due += e.every;
          // After a stall longer than an interval, the missed loads are not sent in a burst.
          if (e.due <= now) e.due = now + e.every;
          this.place(b, e);
        }
      }
    } finally {
      this.running = false;
      this.arm(this.earliest());
    }
  }
}

/** The wheel every agent of this process beats on. */
export const heartbeatWheel = new HeartbeatWheel();
