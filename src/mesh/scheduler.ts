// The mesh's one door to ambient time and chance. Everything under src/mesh
// reads the clock, sets timers and defers work to the next turn of the event
// loop through a Scheduler it is given, the way src/raft's core takes its
// ticks and random source from outside: a simulator can hand a cell a virtual
// scheduler (virtual-scheduler.ts) and replay a run exactly from a seed.
// test/mesh/purity.test.ts keeps this the only file that touches the real
// clock, timers or Math.random.
import { deferModeFrom, turnDefer } from '../util/turn-defer.js';

export { nextBatchAverage } from '../util/turn-defer.js';

/** A timer set with Scheduler.setTimer. */
export interface TimerHandle {
  /** Stop it if it has not fired; harmless afterwards. */
  cancel(): void;
}

export interface Scheduler {
  /** Milliseconds since the epoch (or since a simulation's start). */
  now(): number;
  /**
   * Call `fn` once after `delayMs`. A mesh timer never keeps the process
   * alive by itself (real timers are unref'd): the servers and streams do.
   */
  setTimer(delayMs: number, fn: () => void): TimerHandle;
  /**
   * Call `fn` later, never from inside this call: on a later turn, after the I/O already waiting (batching:
   * one flush, one pump per turn), or, after a quiet spell, at the end of this turn (src/util/turn-defer.ts).
   * `batch`: the caller's recent batch size (nextBatchAverage); a light caller's deferral may run this turn.
   */
  defer(fn: () => void, batch?: number): void;
  /**
   * A monotonic clock in milliseconds with sub-millisecond resolution, for
   * measuring short gaps (the batcher's linger); `now()` where absent.
   */
  fineNow?(): number;
}

/**
 * By default (`light`) a deferral after a quiet spell runs at the end of this turn when its caller's batches
 * are light (a pump or a flush of about one item: low rate), else on the next turn (setImmediate), so at full
 * rate every deferral takes the next turn as before. MESHLB_DEFER=turn: always the next turn; `soon`: any
 * caller after a quiet spell (session 13's rule; at full rate it ran the pumps inside reads, with a third less
 * in each: docs/performance.md, "Session 14: a deferral only for light callers"). Any other value: `light`, with a
 * warning naming these (deferModeFrom, once per process).
 */
const deferral = turnDefer(() => performance.now(), { mode: deferModeFrom(process.env.MESHLB_DEFER) });

/** The real scheduler's deferrals so far, by where they ran (the bench reports them per task). */
export const realDeferCounts = deferral.counts;

/** Node's clock and timers. */
export const realScheduler: Scheduler = {
  now: Date.now,
  setTimer(delayMs, fn) {
    const t = setTimeout(() => {
      deferral.turned();
      fn();
    }, delayMs);
    t.unref();
    return { cancel: () => clearTimeout(t) };
  },
  defer: deferral.defer,
  fineNow: () => performance.now(),
};

/** Uniform [0, 1) from the platform: the default when no random source or seed is given. */
export const realRandom: () => number = Math.random;
