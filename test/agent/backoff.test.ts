import { describe, expect, it } from 'vitest';
import { Backoff, seededRandom } from '../../src/agent/index.js';

describe('Backoff (full jitter)', () => {
  it('grows the cap by the multiplier up to max, and each delay lies in [0, cap]', () => {
    const b = new Backoff({ initialMs: 100, maxMs: 1000, multiplier: 2 }, seededRandom(42));
    const caps = [100, 200, 400, 800, 1000, 1000];
    for (const cap of caps) {
      expect(b.cap()).toBe(cap);
      const d = b.next();
      expect(d).toBeGreaterThanOrEqual(0);
      expect(d).toBeLessThanOrEqual(cap);
    }
    b.reset();
    expect(b.cap()).toBe(100);
  });

  it('is reproducible from a seed', () => {
    const run = (seed: number) => {
      const b = new Backoff({}, seededRandom(seed));
      return Array.from({ length: 8 }, () => b.next());
    };
    expect(run(9)).toEqual(run(9));
    expect(run(9)).not.toEqual(run(10));
  });

  it('rejects nonsense options', () => {
    expect(() => new Backoff({ initialMs: 10, maxMs: 5 })).toThrow(RangeError);
    expect(() => new Backoff({ multiplier: 0.5 })).toThrow(RangeError);
  });
});
