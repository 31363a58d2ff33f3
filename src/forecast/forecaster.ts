// Per task kind, one cell's arrival rate (tasks entering its queue per second)
// and mean service time (agent run time of the tasks its agents finished),
// each sampled once per interval (the summary interval) and smoothed by Holt's
// damped trend (holt.ts). Pure: time is the `now` each call is given; the
// cell's injected clock drives it, so the seeded mesh simulator replays it.
//
// Invariants: an interval [start, start + intervalMs) gets exactly one rate
// sample per kind known when it closes (0 when nothing arrived); a service
// sample only when some task of the kind finished in it. At most `maxKinds`
// kinds are kept, and a kind whose forecast has been 0 for `forgetIntervals`
// closes is forgotten, so memory stays bounded by the kinds in recent use.
import { Holt, HOLT_DEFAULTS, type HoltParams } from './holt.js';

export interface ForecastConfig {
  /** Length of one sample interval, ms (the cell's summary interval). */
  readonly intervalMs: number;
  /** How many intervals ahead `forecast` looks. */
  readonly horizon: number;
  readonly rate: HoltParams;
  readonly service: HoltParams;
  readonly maxKinds: number;
  /** A kind idle this many intervals (forecast 0, nothing arriving) is forgotten. */
  readonly forgetIntervals: number;
}

/** Service times change slower than arrivals and arrive as means of several tasks: a steadier level. */
export const SERVICE_HOLT: HoltParams = { alpha: 0.2, beta: 0.05, phi: 0.9 };

export const FORECAST_DEFAULTS: Omit<ForecastConfig, 'intervalMs'> = {
  horizon: 4,
  rate: HOLT_DEFAULTS,
  service: SERVICE_HOLT,
  maxKinds: 1024,
  forgetIntervals: 400,
};

/** A forecast for one kind, `horizon` intervals ahead. */
export interface KindForecast {
  readonly kind: string;
  /** Tasks per second. */
  readonly rate: number;
  /** Mean service time, ms; 0 = no measurement. */
  readonly serviceMs: number;
}

/** Missed intervals fed as zeros after a stall at most this many; older ones are skipped. */
const MAX_CATCH_UP = 64;
/** Tasks per second under which a decayed rate counts as none (one task in ~30 years). */
const IDLE_RATE = 1e-9;

interface Series {
  arrivals: number;
  servedMs: number;
  served: number;
  idle: number;
  readonly rate: Holt;
  readonly service: Holt;
}

export class Forecaster {
  private readonly kinds = new Map<string, Series>();
  private nextAt: number;
  /** Intervals closed so far. */
  intervals = 0;

  constructor(
    readonly config: ForecastConfig,
    start: number,
  ) {
    this.nextAt = start + Math.max(1, config.intervalMs);
  }

  /** One task of `kind` entered the cell's queue. */
  arrived(kind: string, now: number): void {
    this.roll(now);
    const s = this.series(kind);
    if (s) s.arrivals++;
  }

  /** One task of `kind` finished on an agent after running `ms`. */
  served(kind: string, ms: number, now: number): void {
    if (!(ms >= 0) || !Number.isFinite(ms)) return;
    this.roll(now);
    const s = this.series(kind);
    if (!s) return;
    s.servedMs += ms;
    s.served++;
  }

  /** Close every interval that ended by `now` (from the cell's tick; arrivals call it too). */
  roll(now: number): void {
    if (now < this.nextAt) return;
    const step = Math.max(1, this.config.intervalMs);
    const due = Math.floor((now - this.nextAt) / step) + 1;
    const closes = Math.min(due, MAX_CATCH_UP);
    for (let i = 0; i < closes; i++) this.close(step);
    this.nextAt += due * step;
  }

  private close(step: number): void {
    this.intervals++;
    for (const [kind, s] of this.kinds) {
      s.rate.update((s.arrivals * 1000) / step);
      if (s.served > 0) s.service.update(s.servedMs / s.served);
      const active = s.arrivals > 0 || s.served > 0 || s.rate.forecast(this.config.horizon) > IDLE_RATE;
      s.idle = active ? 0 : s.idle + 1;
      s.arrivals = s.served = s.servedMs = 0;
      if (s.idle >= this.config.forgetIntervals) this.kinds.delete(kind);
    }
  }

  private series(kind: string): Series | undefined {
    let s = this.kinds.get(kind);
    if (s) return s;
    if (this.kinds.size >= this.config.maxKinds) return undefined;
    const c = this.config;
    s = { arrivals: 0, servedMs: 0, served: 0, idle: 0, rate: new Holt(c.rate), service: new Holt(c.service) };
    this.kinds.set(kind, s);
    return s;
  }

  /** The kind's forecast `horizon` intervals ahead (zeros for a kind never seen). */
  forecast(kind: string): KindForecast {
    const s = this.kinds.get(kind);
    const h = this.config.horizon;
    const rate = s ? s.rate.forecast(h) : 0;
    // A smoothed rate only decays towards 0 once arrivals stop; below
    // IDLE_RATE it is 0 (else the admin API shows rates such as 1e-26/s).
    return { kind, rate: rate > IDLE_RATE ? rate : 0, serviceMs: s ? s.service.forecast(h) : 0 };
  }

  /** Every kind with a series, sorted. */
  all(): KindForecast[] {
    return [...this.kinds.keys()].sort().map((k) => this.forecast(k));
  }
}
