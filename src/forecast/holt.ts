// Holt's linear trend method with a damped trend (Gardner & McKenzie): double
// exponential smoothing of one series sampled at a fixed interval. Pure and
// IO-free: the caller feeds one sample per interval and asks for the value h
// intervals ahead. No clock, no randomness.
//
//   level_t = α·x_t + (1 − α)·(level_{t−1} + φ·trend_{t−1})
//   trend_t = β·(level_t − level_{t−1}) + (1 − β)·φ·trend_{t−1}
//   ŷ_{t+h} = level_t + (φ + φ² + … + φ^h)·trend_t, floored at 0
//
// Why damped: at the horizons the mesh asks for (a few summary intervals) a
// straight-line trend overshoots after every burst edge; φ < 1 makes a trend
// fade, so a forecast never runs away from the data. No seasonal term: the
// seasons of task traffic (a day, a week) are 10⁵-10⁶ summary intervals long,
// far past both the horizon and the memory a per-kind state may hold; within a
// horizon of about a second a season is a trend, which this method follows.
// The series here (arrival rates, service times) are never negative, so the
// forecast is floored at 0.

export interface HoltParams {
  /** Level smoothing, 0 < α ≤ 1: higher follows the data faster, and its noise. */
  readonly alpha: number;
  /** Trend smoothing, 0 ≤ β ≤ 1: 0 never learns a trend. */
  readonly beta: number;
  /** Trend damping, 0 ≤ φ ≤ 1: 1 is Holt's plain linear trend, 0 simple exponential smoothing. */
  readonly phi: number;
}

/**
 * Defaults for arrival rates sampled every summary interval, chosen on
 * bench:sched's arrivals at 150 ms intervals, 4 ahead (docs/policies.md): a
 * lighter level (α 0.3) lagged ramps and bursts by more than it saved in
 * noise; a stronger trend (β ≥ 0.2, φ ≥ 0.9) overshot every burst edge.
 */
export const HOLT_DEFAULTS: HoltParams = { alpha: 0.5, beta: 0.1, phi: 0.8 };

/** Checks parameters once (config errors are the caller's to report). */
export function checkHoltParams(p: HoltParams): string {
  if (!(p.alpha > 0 && p.alpha <= 1)) return `alpha must be in (0, 1], got ${p.alpha}`;
  if (!(p.beta >= 0 && p.beta <= 1)) return `beta must be in [0, 1], got ${p.beta}`;
  if (!(p.phi >= 0 && p.phi <= 1)) return `phi must be in [0, 1], got ${p.phi}`;
  return '';
}

/** One smoothed series. Invariant: level and trend are finite (non-finite samples are ignored). */
export class Holt {
  private lvl = 0;
  private trd = 0;
  /** Samples taken; 0 = no data, the forecast is 0. */
  samples = 0;

  constructor(private readonly p: HoltParams = HOLT_DEFAULTS) {}

  get level(): number {
    return this.lvl;
  }

  get trend(): number {
    return this.trd;
  }

  /** One sample for the interval that just ended. */
  update(x: number): void {
    if (!Number.isFinite(x)) return;
    const { alpha, beta, phi } = this.p;
    if (this.samples === 0) {
      this.lvl = x;
      this.trd = 0;
    } else {
      const prev = this.lvl;
      this.lvl = alpha * x + (1 - alpha) * (prev + phi * this.trd);
      this.trd = beta * (this.lvl - prev) + (1 - beta) * phi * this.trd;
    }
    this.samples++;
  }

  /** The value `h` intervals ahead (h ≥ 0; h = 0 is the smoothed level), never negative. */
  forecast(h: number): number {
    if (this.samples === 0) return 0;
    const f = this.lvl + dampedSum(this.p.phi, Math.max(0, Math.floor(h))) * this.trd;
    return f > 0 && Number.isFinite(f) ? f : 0;
  }
}

/** φ + φ² + … + φ^h. */
export function dampedSum(phi: number, h: number): number {
  if (h <= 0) return 0;
  if (phi === 1) return h;
  return (phi * (1 - phi ** h)) / (1 - phi);
}
