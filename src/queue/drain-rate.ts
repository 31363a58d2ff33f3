// The queue's retry hint for a refused push ('full', 'tenant-full'): how long draining about 1% of the
// capacity takes at the rate tasks were popped lately. Pops are counted per window of at least 1 s.

export class DrainRate {
  private windowStart = NaN;
  private windowPops = 0;
  private ratePerMs = 0;

  constructor(
    private readonly capacity: number,
    private readonly minMs: number,
    private readonly maxMs: number,
  ) {}

  /** One task left the queue at `now`. */
  popped(now: number): void {
    if (Number.isNaN(this.windowStart)) this.windowStart = now;
    this.windowPops++;
    const elapsed = now - this.windowStart;
    if (elapsed >= 1000) {
      this.ratePerMs = this.windowPops / elapsed;
      this.windowStart = now;
      this.windowPops = 0;
    }
  }

  /** Time to drain ~1% of capacity at the recent pop rate, clamped to [minMs, maxMs]. */
  hint(now: number): number {
    // An open window older than a full one means pops stopped or slowed:
    // its own rate is the fresher (lower) estimate. Same before any window closed.
    const elapsed = now - this.windowStart;
    let rate = this.ratePerMs;
    if ((elapsed > 1000 || rate <= 0) && elapsed > 0) rate = this.windowPops / elapsed;
    if (!(rate > 0)) return this.maxMs;
    const ms = Math.ceil(Math.max(1, this.capacity * 0.01) / rate);
    return Math.min(this.maxMs, Math.max(this.minMs, ms));
  }
}
