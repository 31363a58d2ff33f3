// StallClock (src/mesh/stall-clock.ts): a silence is the wall time since a
// moment less the part of each later gap between ticks beyond the allowance;
// gaps within it count whole, and what it no longer remembers counts whole.
import { describe, expect, it } from 'vitest';
import { StallClock } from '../../src/mesh/stall-clock.js';
import { Rng } from '../../src/util/rng.js';

const SEED = Number(process.env.MESHLB_TEST_SEED ?? 1207);

describe(`StallClock (seed ${SEED})`, () => {
  it('leaves out the excess of every gap after the moment, and nothing before it', () => {
    const c = new StallClock(() => 100);
    c.tick(1000);
    c.tick(1050); // on time
    c.tick(1450); // 400 ms gap: 300 stalled
    c.tick(1460);
    c.tick(2460); // 1,000 ms gap: 900 stalled
    expect(c.silence(1000, 2460)).toBe(1460 - 1200);
    expect(c.silence(1455, 2460)).toBe(1005 - 900); // after the first stall: only the second counts out
    expect(c.silence(2460, 2460)).toBe(0);
  });

  it("shared by several judges (the cell's links): a tick at or before the last adds nothing", () => {
    const c = new StallClock(() => 100);
    c.tick(1000);
    c.tick(1400); // the first judge sees the 300 ms stall
    c.tick(1400); // the second, in the same sweep, adds nothing
    c.tick(1290); // nor does a time before it (it would make the next gap look like a stall)
    c.tick(1450);
    expect(c.silence(1000, 1450)).toBe(450 - 300);
  });

  it('matches a plain sum over random ticks (seeded), within the stalls it keeps', () => {
    const rng = new Rng(SEED);
    const c = new StallClock(() => 50);
    const ticks: number[] = [];
    let t = 1_000_000;
    for (let i = 0; i < 200; i++) {
      t += rng.next() < 0.2 ? 50 + Math.floor(rng.next() * 2000) : 1 + Math.floor(rng.next() * 50);
      c.tick(t);
      ticks.push(t);
    }
    for (let k = 0; k < 100; k++) {
      const since = ticks[Math.floor(rng.next() * ticks.length)]! - Math.floor(rng.next() * 20);
      let stalled = 0;
      for (let i = 1; i < ticks.length; i++)
        if (ticks[i]! > since && ticks[i]! - ticks[i - 1]! > 50) stalled += ticks[i]! - ticks[i - 1]! - 50;
      expect(c.silence(since, t), `seed ${SEED}, since ${since}`).toBe(t - since - stalled);
    }
  });

  it('a silence older than every stall it keeps counts the forgotten ones whole (judged plainly, never longer)', () => {
    const c = new StallClock(() => 10);
    let t = 1000;
    c.tick(t);
    for (let i = 0; i < 300; i++) c.tick((t += 110)); // 300 stalls of 100 ms: only the last 256 are kept
    expect(c.silence(1000, t)).toBe(300 * 110 - 256 * 100);
    expect(c.silence(1000 + 50 * 110, t)).toBe(250 * 110 - 250 * 100);
  });
});
