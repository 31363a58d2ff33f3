// How well the mesh's forecaster (src/forecast, the one cells run) predicts a
// scenario's arrival rate at its entry cell, against the naive forecast (the
// last interval's rate), on the same arrivals: the tasks of a scenario are the
// same under every policy, so this is measured once per scenario and seed.
//
// Per interval i (the summary interval), after it closes: the forecast for
// interval i + h, and the naive one; scored against the rate that interval
// actually had. sMAPE = mean of 2|F − A| / (|F| + |A|) over intervals where
// F or A is non-zero (0 = perfect, 2 = worst); MAPE = mean of |F − A| / A over
// intervals with A > 0. The first 10 intervals (warm-up) are not scored.

import { FORECAST_DEFAULTS, Forecaster } from '../../src/forecast/index.js';
import type { Scenario } from './types.js';

export interface ForecastError {
  readonly scenario: string;
  readonly variant: number;
  readonly intervalMs: number;
  readonly horizon: number;
  /** Intervals scored. */
  readonly intervals: number;
  readonly meanRate: number;
  readonly holt: { readonly smape: number; readonly mape: number };
  readonly naive: { readonly smape: number; readonly mape: number };
}

const WARMUP = 10;

export function forecastError(sc: Scenario, variant: number, intervalMs = 150, horizon = 4): ForecastError {
  const arrivals = sc.tasks.map((t) => t.at).sort((a, b) => a - b);
  const end = arrivals.length > 0 ? arrivals[arrivals.length - 1]! : 0;
  const n = Math.floor(end / intervalMs);
  const counts = new Array<number>(n).fill(0);
  for (const at of arrivals) {
    const i = Math.floor(at / intervalMs);
    if (i < n) counts[i]!++;
  }
  const rate = (i: number): number => (counts[i]! * 1000) / intervalMs;
  const f = new Forecaster({ ...FORECAST_DEFAULTS, intervalMs, horizon }, 0);
  const holt = score();
  const naive = score();
  let next = 0;
  for (let i = 0; i < n; i++) {
    const close = (i + 1) * intervalMs;
    for (; next < arrivals.length && arrivals[next]! < close; next++) f.arrived('k', arrivals[next]!);
    f.roll(close);
    if (i < WARMUP || i + horizon >= n) continue;
    const actual = rate(i + horizon);
    holt.add(f.forecast('k').rate, actual);
    naive.add(rate(i), actual);
  }
  return {
    scenario: sc.name,
    variant,
    intervalMs,
    horizon,
    intervals: holt.scored(),
    meanRate: n > 0 ? (arrivals.length * 1000) / (n * intervalMs) : 0,
    holt: holt.result(),
    naive: naive.result(),
  };
}

function score() {
  let s = 0;
  let sn = 0;
  let m = 0;
  let mn = 0;
  return {
    add(forecast: number, actual: number): void {
      const d = Math.abs(forecast) + Math.abs(actual);
      if (d > 0) {
        s += (2 * Math.abs(forecast - actual)) / d;
        sn++;
      }
      if (actual > 0) {
        m += Math.abs(forecast - actual) / actual;
        mn++;
      }
    },
    scored: (): number => sn,
    result: () => ({ smape: sn > 0 ? s / sn : 0, mape: mn > 0 ? m / mn : 0 }),
  };
}
