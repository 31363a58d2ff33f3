// The pure forecaster (src/forecast): Holt's damped trend as properties
// (constant in, constant out; a ramp's slope learned; never negative, never
// NaN), the per-kind interval sampling, and the arithmetic the mesh uses
// (aggregation, scale recommendations, pre-positioned credit).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  aggregate,
  dampedSum,
  Forecaster,
  FORECAST_DEFAULTS,
  Holt,
  HOLT_DEFAULTS,
  merge,
  prepositioned,
  recommendAgents,
  SCALE_DEFAULTS,
  type HoltParams,
} from '../../src/forecast/index.js';

/** Seed of every property here; FC_SEED=<n> replays another. Printed on failure. */
const SEED = process.env['FC_SEED'] !== undefined ? Number(process.env['FC_SEED']) : 20261206;

function check<Ts>(prop: fc.IProperty<Ts>, numRuns = 200): void {
  try {
    fc.assert(prop, { seed: SEED, numRuns });
  } catch (e) {
    console.error(`property failed; replay with FC_SEED=${SEED}`);
    throw e;
  }
}

const params: fc.Arbitrary<HoltParams> = fc.record({
  alpha: fc.double({ min: 0.01, max: 1, noNaN: true }),
  beta: fc.double({ min: 0, max: 1, noNaN: true }),
  phi: fc.double({ min: 0, max: 1, noNaN: true }),
});
const rate = fc.double({ min: 0, max: 1e6, noNaN: true });

describe('Holt (damped trend)', () => {
  it('forecasts a constant series as that constant, at every horizon', () => {
    check(
      fc.property(params, rate, fc.integer({ min: 1, max: 50 }), fc.integer({ min: 0, max: 20 }), (p, c, n, h) => {
        const f = new Holt(p);
        for (let i = 0; i < n; i++) f.update(c);
        expect(f.forecast(h)).toBeCloseTo(c, 6);
      }),
    );
  });

  it('learns a linear ramp: undamped it extrapolates the line, damped the trend keeps its sign', () => {
    check(
      fc.property(
        fc.double({ min: 0, max: 1000, noNaN: true }),
        fc.double({ min: 0.5, max: 50, noNaN: true }),
        fc.integer({ min: 1, max: 8 }),
        (a, b, h) => {
          const plain = new Holt({ alpha: 0.5, beta: 0.3, phi: 1 });
          const damped = new Holt(HOLT_DEFAULTS);
          const n = 400;
          for (let t = 0; t < n; t++) {
            plain.update(a + b * t);
            damped.update(a + b * t);
          }
          const next = a + b * (n - 1 + h);
          expect(Math.abs(plain.forecast(h) - next)).toBeLessThan(1e-6 * next + 1e-6);
          expect(plain.trend).toBeCloseTo(b, 6);
          expect(damped.trend).toBeGreaterThan(0);
          expect(damped.forecast(h)).toBeGreaterThan(damped.forecast(0));
          // Damping never runs past the undamped line.
          expect(damped.forecast(h)).toBeLessThanOrEqual(next + 1e-6);
        },
      ),
    );
  });

  it('is finite and never negative whatever it is fed, NaN and Infinity included', () => {
    const sample = fc.oneof(rate, fc.constant(Number.NaN), fc.constant(Infinity), fc.constant(-Infinity));
    check(
      fc.property(params, fc.array(sample, { maxLength: 60 }), fc.integer({ min: 0, max: 50 }), (p, xs, h) => {
        const f = new Holt(p);
        for (const x of xs) f.update(x);
        const y = f.forecast(h);
        expect(Number.isFinite(y)).toBe(true);
        expect(y).toBeGreaterThanOrEqual(0);
        expect(Number.isFinite(f.level) && Number.isFinite(f.trend)).toBe(true);
      }),
    );
  });

  it('with the defaults stays within twice the largest sample (no runaway trend)', () => {
    check(
      fc.property(fc.array(rate, { minLength: 1, maxLength: 80 }), fc.integer({ min: 0, max: 8 }), (xs, h) => {
        const f = new Holt(HOLT_DEFAULTS);
        for (const x of xs) f.update(x);
        expect(f.forecast(h)).toBeLessThanOrEqual(2 * Math.max(...xs) + 1e-9);
      }),
    );
  });

  it('says 0 with no data, and sums the damping as a geometric series', () => {
    expect(new Holt().forecast(4)).toBe(0);
    expect(dampedSum(0.9, 0)).toBe(0);
    expect(dampedSum(1, 5)).toBe(5);
    expect(dampedSum(0.5, 3)).toBeCloseTo(0.5 + 0.25 + 0.125, 12);
  });
});

describe('Forecaster (per kind, per interval)', () => {
  const config = { ...FORECAST_DEFAULTS, intervalMs: 100 };

  it('turns arrivals per interval into a rate per second, and agent run times into a service time', () => {
    const f = new Forecaster(config, 0);
    for (let t = 0; t < 50; t++) {
      for (let i = 0; i < 5; i++) f.arrived('echo', t * 100 + i);
      f.served('echo', 40, t * 100 + 50);
      f.served('echo', 60, t * 100 + 60);
    }
    f.roll(5000);
    const x = f.forecast('echo');
    expect(x.rate).toBeCloseTo(50, 6);
    expect(x.serviceMs).toBeCloseTo(50, 6);
    expect(f.forecast('other')).toEqual({ kind: 'other', rate: 0, serviceMs: 0 });
  });

  it('follows a step up within a few intervals and decays when arrivals stop', () => {
    const f = new Forecaster(config, 0);
    let now = 0;
    const run = (perInterval: number, intervals: number): void => {
      for (let t = 0; t < intervals; t++, now += 100) for (let i = 0; i < perInterval; i++) f.arrived('k', now);
      f.roll(now);
    };
    run(2, 30);
    expect(f.forecast('k').rate).toBeCloseTo(20, 3);
    run(10, 15);
    expect(f.forecast('k').rate).toBeGreaterThan(80);
    run(0, 40);
    expect(f.forecast('k').rate).toBeLessThan(2);
  });

  it('reads a long-decayed rate as 0 while the kind is still kept (not 1e-26/s)', () => {
    const f = new Forecaster({ ...config, forgetIntervals: 100_000 }, 0);
    for (let i = 0; i < 5; i++) f.arrived('k', 50);
    f.roll(100);
    expect(f.forecast('k').rate).toBeGreaterThan(0);
    f.roll(100 + 100 * 200);
    expect(f.all().map((k) => k.kind)).toEqual(['k']);
    expect(f.forecast('k').rate).toBe(0);
  });

  it('survives a long stall and empty intervals with no NaN, and forgets idle kinds', () => {
    const f = new Forecaster({ ...config, forgetIntervals: 10 }, 0);
    f.arrived('k', 10);
    f.roll(3_600_000);
    const x = f.forecast('k');
    expect(Number.isFinite(x.rate) && Number.isFinite(x.serviceMs)).toBe(true);
    expect(f.all()).toEqual([]);
    f.served('k', Number.NaN, 3_600_050);
    f.roll(3_700_000);
    expect(f.forecast('k')).toEqual({ kind: 'k', rate: 0, serviceMs: 0 });
  });

  it('keeps at most maxKinds kinds', () => {
    const f = new Forecaster({ ...config, maxKinds: 3 }, 0);
    for (let i = 0; i < 10; i++) f.arrived(`k${i}`, 1);
    f.roll(100);
    expect(f.all().map((k) => k.kind)).toEqual(['k0', 'k1', 'k2']);
  });
});

describe('what forecasts are used for', () => {
  it('aggregates children: rates add, service time weighted by rate', () => {
    expect(
      aggregate([
        { rate: 10, serviceMs: 100 },
        { rate: 30, serviceMs: 200 },
      ]),
    ).toEqual({ rate: 40, serviceMs: 175 });
    expect(
      aggregate([
        { rate: 0, serviceMs: 100 },
        { rate: 0, serviceMs: 300 },
        { rate: 0, serviceMs: 0 },
      ]),
    ).toEqual({ rate: 0, serviceMs: 200 });
    expect(aggregate([])).toEqual({ rate: 0, serviceMs: 0 });
    expect(aggregate([{ rate: Number.NaN, serviceMs: -5 }])).toEqual({ rate: 0, serviceMs: 0 });
  });

  it("merges a cell's own arrivals with its children's: the larger rate, a measured service time first", () => {
    expect(merge({ rate: 50, serviceMs: 0 }, { rate: 30, serviceMs: 120 })).toEqual({ rate: 50, serviceMs: 120 });
    expect(merge({ rate: 10, serviceMs: 80 }, { rate: 30, serviceMs: 120 })).toEqual({ rate: 30, serviceMs: 80 });
    expect(merge({ rate: 10, serviceMs: 80 }, undefined)).toEqual({ rate: 10, serviceMs: 80 });
  });

  it('recommends agents by Little’s law at the target utilization, within min and max', () => {
    // 100/s x 200 ms = 20 busy slots; 4 slots an agent at 70%: 20 / 2.8 = 7.1 -> 8.
    expect(recommendAgents({ rate: 100, serviceMs: 200 }, 4)).toBe(8);
    expect(recommendAgents({ rate: 14, serviceMs: 200 }, 1, { ...SCALE_DEFAULTS, targetUtilization: 0.7 })).toBe(4);
    expect(recommendAgents({ rate: 0, serviceMs: 200 }, 4)).toBe(0);
    expect(recommendAgents({ rate: 100, serviceMs: 0 }, 4, { ...SCALE_DEFAULTS, minAgents: 2 })).toBe(2);
    expect(recommendAgents({ rate: 1e9, serviceMs: 1e6 }, 4)).toBe(SCALE_DEFAULTS.maxAgents);
    expect(recommendAgents({ rate: Number.NaN, serviceMs: Infinity }, 0)).toBe(0);
    check(
      fc.property(rate, fc.double({ min: 0, max: 1e5, noNaN: true }), fc.integer({ min: 1, max: 64 }), (r, s, per) => {
        const n = recommendAgents({ rate: r, serviceMs: s }, per);
        expect(Number.isInteger(n) && n >= 0 && n <= SCALE_DEFAULTS.maxAgents).toBe(true);
        // Enough agents: at the recommendation, utilization is at most the target (unless capped).
        if (n < SCALE_DEFAULTS.maxAgents && n > 0) expect((r * s) / 1000 / (n * per)).toBeLessThanOrEqual(0.7 + 1e-9);
      }),
    );
  });

  it('pre-positions between the static prefetch and the cap, by forecast throughput over the lead time', () => {
    // 40 slots, 200/s for 300 ms = 60, capped at 40 slots.
    expect(prepositioned({ rate: 200, serviceMs: 20 }, 40, 20, 300, 1)).toBe(40);
    // 100/s x 300 ms = 30.
    expect(prepositioned({ rate: 100, serviceMs: 20 }, 40, 20, 300, 1)).toBe(30);
    // Slots serve at most 40 / 2 s = 20/s: 6 ahead, below the static 20.
    expect(prepositioned({ rate: 100, serviceMs: 2000 }, 40, 20, 300, 1)).toBe(20);
    // Off (cap 0): the static share.
    expect(prepositioned({ rate: 1000, serviceMs: 1 }, 40, 20, 300, 0)).toBe(20);
    check(
      fc.property(
        rate,
        fc.double({ min: 0, max: 1e4, noNaN: true }),
        fc.integer({ min: 0, max: 1000 }),
        fc.integer({ min: 0, max: 1000 }),
        fc.double({ min: 0, max: 2, noNaN: true }),
        (r, s, slots, base, cap) => {
          const n = prepositioned({ rate: r, serviceMs: s }, slots, base, 300, cap);
          expect(n).toBeGreaterThanOrEqual(base);
          expect(n).toBeLessThanOrEqual(Math.max(base, Math.ceil(slots * cap)));
        },
      ),
    );
  });
});
