// Reconnect backoff: exponential growth with "full jitter" (a uniform pick in
// [0, cap]), so thousands of agents cut off by one node restart do not all come
// back in the same millisecond. The random source is injected so a seed replays
// a run exactly.

export interface BackoffOptions {
  /** First cap, ms (default 100). */
  initialMs?: number;
  /** Largest cap, ms (default 5000). */
  maxMs?: number;
  /** Growth of the cap per failed attempt (default 2). */
  multiplier?: number;
}

export { seededRandom } from '../util/rng.js';

export class Backoff {
  readonly initialMs: number;
  readonly maxMs: number;
  readonly multiplier: number;
  /** Failed attempts since the last reset. */
  attempt = 0;

  constructor(
    opts: BackoffOptions = {},
    private readonly random: () => number = Math.random,
  ) {
    this.initialMs = opts.initialMs ?? 100;
    this.maxMs = opts.maxMs ?? 5000;
    this.multiplier = opts.multiplier ?? 2;
    if (!(this.initialMs >= 0) || !(this.maxMs >= this.initialMs) || !(this.multiplier >= 1)) {
      throw new RangeError('backoff: need 0 <= initialMs <= maxMs and multiplier >= 1');
    }
  }

  /** The cap for the current attempt (before jitter). */
  cap(): number {
    return Math.min(this.maxMs, this.initialMs * Math.pow(this.multiplier, this.attempt));
  }

  /** The delay before the next try: uniform in [0, cap]; advances the attempt. */
  next(): number {
    const d = Math.floor(this.random() * this.cap());
    this.attempt++;
    return d;
  }

  reset(): void {
    this.attempt = 0;
  }
}
