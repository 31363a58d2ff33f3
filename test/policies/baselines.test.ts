import { describe, expect, it } from 'vitest';
import { createPolicy, seededRandom } from '../../src/policies/index.js';
import { cand, picker, tally, task } from './helpers.js';

describe('round-robin', () => {
  it('cycles evenly and skips a full candidate', () => {
    const cands = [cand('x'), cand('full', { slots: { a: [0, 10] } }), cand('y'), cand('z')];
    expect(tally(picker('round-robin', cands), 30)).toEqual({ x: 10, y: 10, z: 10 });
  });

  it('keeps its rotation across picker rebuilds', () => {
    const policy = createPolicy('round-robin', undefined, { random: seededRandom(1) });
    const cands = [cand('x'), cand('y'), cand('z')];
    const seen: string[] = [];
    for (let i = 0; i < 6; i++) {
      const r = policy.buildPicker(cands, i).pick(task()); // one pick per snapshot
      if (r.type === 'route') seen.push(r.candidate);
    }
    expect(new Set(seen.slice(0, 3))).toEqual(new Set(['x', 'y', 'z']));
    expect(seen.slice(3)).toEqual(seen.slice(0, 3));
  });
});

describe('random', () => {
  it('is roughly uniform', () => {
    const big = { slots: { a: [1e6, 1e6] as const } };
    const t = tally(picker('random', [cand('x', big), cand('y', big), cand('z', big)]), 3000);
    for (const id of ['x', 'y', 'z']) {
      expect(t[id]).toBeGreaterThan(850);
      expect(t[id]).toBeLessThan(1150);
    }
  });
});

describe('p2c', () => {
  it('never picks the most loaded of three', () => {
    const roomy = { slots: { a: [1000, 1000] as const } };
    const cands = [cand('x', roomy), cand('y', roomy), cand('hot', { ...roomy, active: 900 })];
    const t = tally(picker('p2c', cands), 200);
    expect(t['hot']).toBeUndefined();
    expect(t['x']! + t['y']!).toBe(200);
  });

  it('with one eligible candidate, takes it', () => {
    expect(picker('p2c', [cand('x'), cand('full', { slots: { a: [0, 1] } })]).pick(task())).toEqual({
      type: 'route',
      candidate: 'x',
    });
  });
});

describe('least-loaded', () => {
  it('picks the lowest occupancy, then spreads as it fills', () => {
    const p = picker('least-loaded', [
      cand('half', { slots: { a: [5, 10] } }),
      cand('empty', { slots: { a: [10, 10] } }),
    ]);
    // empty takes picks until both are at 5/10, then they alternate.
    expect(tally(p, 5)).toEqual({ empty: 5 });
    expect(tally(p, 10)).toEqual({ empty: 5, half: 5 });
  });
});
