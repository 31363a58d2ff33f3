// The version split (src/policies/version-split.ts): 10,000 task ids at a 5%
// ramp give 5 ± 1% to the new version (the target), and so do other
// shares; the choice is a pure function of the pin, and raising a ramp only
// moves pins from old to new.
import { describe, expect, it } from 'vitest';
import { seededRandom } from '../../src/policies/index.js';
import { TaskIds } from '../../src/mesh/home-submit.js';
import { pinPercent, toNewVersion } from '../../src/policies/version-split.js';

const SEED = Number(process.env.MESHLB_TEST_SEED ?? 20261213);

/** Task ids as a leader hands them out: a random prefix, the term, a sequence number. */
function taskIds(n: number, seed: number, term = 3): string[] {
  const ids = new TaskIds(seededRandom(seed));
  ids.leadTerm(term);
  return Array.from({ length: n }, () => ids.next());
}

const share = (pins: readonly string[], percent: number): number =>
  (100 * pins.filter((p) => toNewVersion(p, percent)).length) / pins.length;

describe(`version split (seed ${SEED})`, () => {
  it('a 5% ramp sends 5 ± 1% of 10,000 task ids to the new version, for any leader and term', () => {
    for (let i = 0; i < 20; i++) {
      const ids = taskIds(10_000, SEED + i, 1 + (i % 5));
      const got = share(ids, 5);
      expect(Math.abs(got - 5), `seed ${SEED + i}: ${got}%`).toBeLessThanOrEqual(1);
    }
  });

  it('other shares hold too (1, 25, 50, 95%), and 0% and 100% are exact', () => {
    const ids = taskIds(10_000, SEED);
    for (const p of [1, 25, 50, 95]) expect(Math.abs(share(ids, p) - p), `${p}%`).toBeLessThanOrEqual(1);
    expect(share(ids, 0)).toBe(0);
    expect(share(ids, 100)).toBe(100);
  });

  it('session keys (context keys) split the same way, and each session stays on one side', () => {
    const sessions = Array.from({ length: 10_000 }, (_, i) => `session-${i}`);
    expect(Math.abs(share(sessions, 5) - 5)).toBeLessThanOrEqual(1);
    for (const s of sessions.slice(0, 100)) expect(toNewVersion(s, 5)).toBe(toNewVersion(s, 5));
  });

  it('raising a ramp only moves pins to the new version', () => {
    const ids = taskIds(5_000, SEED + 99);
    const rnd = seededRandom(SEED);
    for (let k = 0; k < 50; k++) {
      const lo = rnd() * 100;
      const hi = lo + rnd() * (100 - lo);
      for (const id of ids) if (toNewVersion(id, lo)) expect(toNewVersion(id, hi)).toBe(true);
    }
    for (const id of ids) {
      const p = pinPercent(id);
      expect(p).toBeGreaterThanOrEqual(0);
      expect(p).toBeLessThan(100);
    }
  });
});
