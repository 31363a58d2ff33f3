// The hold-back decisions (src/policies/hold-back.ts), pure: when a task waits
// for a faster agent's slot, and that it never waits past what it was offered.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { HOLD_GAIN, holdForAnswer, holdForFaster, mayHold, type TaskInfo } from '../../src/policies/index.js';
import { assertProperty } from './arbitraries.js';

const task = (queuedAhead: number | undefined, waitedMs: number): TaskInfo => ({
  kind: 'a',
  priority: 'normal',
  ...(queuedAhead !== undefined ? { queuedAhead } : {}),
  waitedMs,
});

// Four fast agents of 4 slots at 20 ms, all full: they free 16/20 = 0.8 slots a ms; a freed
// one runs the task in 20 · (1 + 3/4) = 35 ms, 43.75 with the margin (35 / HOLD_GAIN). The slow
// agent offers 160 ms now.
const fast = { rate: 0.8, soonestMs: 35 };

describe('holdForFaster', () => {
  it('holds while (k + 1)/R + D / HOLD_GAIN beats the offered delay (the queue threshold)', () => {
    expect(HOLD_GAIN).toBe(0.8);
    expect(holdForFaster(task(0, 0), 160, fast)).toBe(true);
    // (k + 1)/0.8 + 43.75 < 160 up to k = 91 (the margin a share of D: with 0.2 of the offered delay,
    // sessions 7-10, only up to k = 73).
    expect(holdForFaster(task(91, 0), 160, fast)).toBe(true);
    expect(holdForFaster(task(92, 0), 160, fast)).toBe(false);
    // What it waited is spent either way: it does not enter the comparison (mayHold bounds it).
    expect(holdForFaster(task(0, 500), 160, fast)).toBe(true);
    expect(holdForFaster(task(92, 500), 160, fast)).toBe(false);
  });

  it('keeps a margin of a quarter of D, whatever the offered delay', () => {
    // D 40 ms: it holds only while the wait ahead is under delay − 50 ms.
    const one = { rate: 0.1, soonestMs: 40 };
    expect(holdForFaster(task(0, 0), 60.1, one)).toBe(true);
    expect(holdForFaster(task(0, 0), 60, one)).toBe(false);
    expect(holdForFaster(task(4, 0), 100.1, one)).toBe(true);
    expect(holdForFaster(task(4, 0), 100, one)).toBe(false);
  });

  it('does not wait for agents about as fast (their gain is under 1 − HOLD_GAIN)', () => {
    // 20 full agents at 5 ms with 4 slots free 16 slots a ms; one runs the task in 8.75 ms.
    // Going now to one at 5.5 ms with 3 of 4 busy: 9.6 ms. Waiting would win 0.8 ms, not 20%.
    expect(holdForFaster(task(0, 0), 5.5 * 1.75, { rate: 16, soonestMs: 8.75 })).toBe(false);
  });

  it('never holds with nothing to wait for (no full faster agent: rate 0)', () => {
    expect(holdForFaster(task(0, 0), 1e9, { rate: 0, soonestMs: Infinity })).toBe(false);
    expect(holdForFaster(task(0, 0), 1e9, { rate: NaN, soonestMs: 1 })).toBe(false);
  });

  it('holds only while D is under HOLD_GAIN of the offered delay, the less the more wait ahead, whatever it waited', () => {
    assertProperty(
      fc.property(
        fc.nat(500),
        fc.double({ min: 0, max: 2000, noNaN: true }),
        fc.double({ min: 0.001, max: 1000, noNaN: true }),
        fc.double({ min: 1e-3, max: 10, noNaN: true }),
        fc.double({ min: 0, max: 1000, noNaN: true }),
        (k, waited, delay, rate, soonestMs) => {
          const f = { rate, soonestMs };
          if (!holdForFaster(task(k, waited), delay, f)) return;
          expect(soonestMs).toBeLessThan(HOLD_GAIN * delay);
          // Monotone: a task with fewer ahead is held too; its wait does not change the answer.
          expect(holdForFaster(task(Math.max(0, k - 1), waited), delay, f)).toBe(true);
          expect(holdForFaster(task(k, waited / 2), delay, f)).toBe(true);
          expect(holdForFaster(task(k, waited + 1000), delay, f)).toBe(true);
        },
      ),
    );
  });
});

describe('holdForAnswer', () => {
  it('a second task for an agent on trial waits up to answerMs while another agent is busy', () => {
    expect(holdForAnswer(task(0, 0), 1, true, 20)).toBe(true);
    expect(holdForAnswer(task(0, 19.9), 1, true, 20)).toBe(true);
    expect(holdForAnswer(task(0, 20), 1, true, 20)).toBe(false);
    // Its first task goes at once; alone, nobody else can answer.
    expect(holdForAnswer(task(0, 0), 0, true, 20)).toBe(false);
    expect(holdForAnswer(task(0, 0), 1, false, 20)).toBe(false);
  });
});

describe('mayHold', () => {
  it('only a task the dispatcher keeps (queuedAhead set), with hold-back on, and under maxHoldMs', () => {
    expect(mayHold(task(0, 0), 1000)).toBe(true);
    expect(mayHold(task(undefined, 0), 1000)).toBe(false);
    expect(mayHold(task(0, 0), 0)).toBe(false);
    expect(mayHold(task(0, 999), 1000)).toBe(true);
    expect(mayHold(task(0, 1000), 1000)).toBe(false);
  });
});
