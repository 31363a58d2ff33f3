import { describe, expect, it } from 'vitest';
import { createPolicy, reportedWeight, seededRandom } from '../../src/policies/index.js';
import type { Candidate } from '../../src/policies/index.js';
import { cand, picker, tally } from './helpers.js';

/** A zone whose summary reports qps at 50% cpu: weight = 2·qps. */
const zone = (id: string, qps: number, extra = {}): Candidate =>
  cand(id, { slots: { a: [1_000_000, 1_000_000] }, qps, utilization: { cpu: 0.5 }, ...extra });

const within = (got: number, want: number, tol: number) => expect(Math.abs(got - want)).toBeLessThanOrEqual(tol);

describe('region-wrr', () => {
  it('distributes proportionally to weights', () => {
    const p = picker('region-wrr', [zone('z1', 100), zone('z2', 200), zone('z3', 300)], { blackoutPeriodMs: 0 });
    const n = 6000;
    const t = tally(p, n);
    within(t['z1']!, n / 6, n * 0.01);
    within(t['z2']!, (2 * n) / 6, n * 0.01);
    within(t['z3']!, (3 * n) / 6, n * 0.01);
  });

  it('uses equal (mean) weights during the blackout, real weights after it', () => {
    const policy = createPolicy('region-wrr', { blackoutPeriodMs: 10_000 }, { random: seededRandom(3) });
    const cands = [zone('z1', 100), zone('z2', 300)];
    const early = tally(policy.buildPicker(cands, 0), 4000);
    within(early['z1']!, 2000, 40);
    const later = tally(policy.buildPicker(cands, 10_000), 4000);
    within(later['z1']!, 1000, 40);
    within(later['z2']!, 3000, 40);
  });

  it('puts a newly seen candidate in blackout at the mean weight', () => {
    const policy = createPolicy('region-wrr', { blackoutPeriodMs: 10_000 }, { random: seededRandom(3) });
    policy.buildPicker([zone('z1', 100), zone('z2', 300)], 0);
    // z3 reports a huge weight but is new: it gets the mean of z1/z2 (2·200).
    const t = tally(policy.buildPicker([zone('z1', 100), zone('z2', 300), zone('z3', 5000)], 10_000), 8000);
    // Weights 200 : 600 : 400 → 8000 picks split 1333 : 4000 : 2667.
    within(t['z1']!, (8000 * 200) / 1200, 80);
    within(t['z2']!, (8000 * 600) / 1200, 80);
    within(t['z3']!, (8000 * 400) / 1200, 80);
  });

  it('expires weights without fresh summaries and falls back to equal', () => {
    const cfg = { blackoutPeriodMs: 0, weightExpirationPeriodMs: 60_000 };
    const policy = createPolicy('region-wrr', cfg, { random: seededRandom(5) });
    const fresh = [zone('z1', 100), zone('z2', 300)];
    within(tally(policy.buildPicker(fresh, 0), 4000)['z1']!, 1000, 40);
    // Same summaries, now 60 s old: weights are stale.
    const stale = [zone('z1', 100, { summaryAgeMs: 60_000 }), zone('z2', 300, { summaryAgeMs: 60_000 })];
    within(tally(policy.buildPicker(stale, 60_000), 4000)['z1']!, 2000, 40);
  });

  it('penalises errors', () => {
    const p = picker('region-wrr', [zone('ok', 100), zone('bad', 100, { successEwma: 0.5 })], {
      blackoutPeriodMs: 0,
      errorUtilizationPenalty: 1,
    });
    const t = tally(p, 3000); // weights 200 vs 100
    within(t['ok']!, 2000, 30);
  });

  it('clamps extreme weights to maxWeightRatio around the mean', () => {
    const p = picker('region-wrr', [zone('tiny', 1), zone('huge', 100_000)], {
      blackoutPeriodMs: 0,
      maxWeightRatio: 2,
    });
    // mean = 100001, tiny → mean/2, huge → mean·2 → 1:4
    within(tally(p, 5000)['tiny']!, 1000, 20);
  });

  it('skips a full candidate without stalling the schedule', () => {
    const full = cand('full', { slots: { a: [0, 10] }, qps: 1000, utilization: { cpu: 0.1 } });
    expect(tally(picker('region-wrr', [full, zone('z', 1)], { blackoutPeriodMs: 0 }), 10)).toEqual({ z: 10 });
  });

  it.each([
    ['no qps', { qps: undefined }, 0],
    ['idle: zero utilization, no errors', { qps: 10, utilization: { cpu: 0 }, slots: { a: [5, 5] } }, 0],
    ['cpu', { qps: 10, utilization: { cpu: 0.5 }, slots: { a: [5, 5] } }, 20],
    ['gpu dominates', { qps: 10, utilization: { cpu: 0.1, gpu: 0.25 }, slots: { a: [5, 5] } }, 40],
    ['slot occupancy dominates', { qps: 10, utilization: { cpu: 0.1 }, slots: { a: [0, 5] } }, 10],
    ['errors add penalty', { qps: 10, utilization: { cpu: 0.5 }, successEwma: 0.5, slots: { a: [5, 5] } }, 10],
  ])('reportedWeight: %s', (_n, init, want) => {
    expect(reportedWeight(cand('x', init as never), 1)).toBeCloseTo(want, 9);
  });

  it('rejects bad config', () => {
    expect(() => picker('region-wrr', [], { blackoutPeriod: 1 })).toThrow(/unknown config key "blackoutPeriod"/);
    expect(() => picker('region-wrr', [], { maxWeightRatio: 0.5 })).toThrow(/>= 1/);
    expect(() => picker('region-wrr', [], { blackoutPeriodMs: '10s' })).toThrow(/finite number/);
  });
});
