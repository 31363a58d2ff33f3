// Silence measured in the time this process ran. A cell judges a peer (an
// agent, a child or parent link) dead by how long it has heard nothing, but a
// timer's silence includes the cell's own stalls: a process descheduled on a
// loaded machine, or blocked in a long turn, reads nothing meanwhile, and what
// its peers sent waits in the socket, read only after the timers that judge
// them. So each gap between ticks beyond `allowMs` is our own stall, and it is
// taken out of every silence that spans it. Stalls in a row are each taken out
// (judging plainly after one skipped sweep cut healthy agents when a loaded
// machine stalled the process twice running). A process that is always late
// still advances `allowMs` a tick, so it still finds a silent peer dead, later.
//
// Pure: the caller passes the times (its scheduler's now()).

/** The gap between ticks that is no stall: `periodMs` (a quarter timeout), and never under two ticks. */
export function stallAllowMs(settings: { readonly tickMs: number }, periodMs: number): number {
  return Math.max(2 * settings.tickMs, periodMs);
}

/** Stalls remembered; a silence older than the oldest is judged with the stalls since it only. */
const KEPT = 256;

export class StallClock {
  private lastTickMs = 0;
  /** Own stall in all (ms), and at each remembered stall's end: `ends` ascending, `totals` the sum after it. */
  private total = 0;
  private readonly ends: number[] = [];
  private readonly totals: number[] = [];
  /** The sum after the last stall forgotten (KEPT). */
  private forgotten = 0;

  /** `allowMs`: the longest gap between ticks that is not a stall (read at each tick: settings may change). */
  constructor(private readonly allowMs: () => number) {}

  /** From every tick, before anything is judged. Shared: a tick not later than the last adds nothing. */
  tick(now: number): void {
    if (now <= this.lastTickMs) return;
    const gap = now - this.lastTickMs;
    const allow = this.allowMs();
    if (this.lastTickMs > 0 && gap > allow) {
      this.total += gap - allow;
      this.ends.push(now);
      this.totals.push(this.total);
      if (this.ends.length > KEPT) {
        this.ends.shift();
        this.forgotten = this.totals.shift()!;
      }
    }
    this.lastTickMs = now;
  }

  /** How long since `sinceMs`, less our own stalls that ended after it. */
  silence(sinceMs: number, now: number): number {
    // The last stall that ended at or before sinceMs (binary search); the stall after it counts out.
    let lo = 0;
    let hi = this.ends.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.ends[mid]! <= sinceMs) lo = mid + 1;
      else hi = mid;
    }
    const before = lo > 0 ? this.totals[lo - 1]! : this.forgotten;
    return now - sinceMs - (this.total - before);
  }
}
