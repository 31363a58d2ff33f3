// The Raft runtime's one door to time. Every timer, deferred pump turn and
// reading of the clock in the runtime goes through a RaftClock it is given
// (ReplicaOptions.clock, MemoryNetwork's options), so a simulator can run real
// RaftReplica groups on virtual time and replay a run exactly from a seed.
//
// The shape is the mesh's Scheduler (src/mesh/scheduler.ts) member for member,
// written out here because the library may not import the product: a mesh
// VirtualScheduler is a RaftClock as it is. Keep the two identical.

/** A timer set with RaftClock.setTimer. */
export interface RaftTimer {
  /** Stop it if it has not fired; harmless afterwards. */
  cancel(): void;
}

export interface RaftClock {
  /** Milliseconds since the epoch (or since a simulation's start). */
  now(): number;
  /**
   * Call `fn` once after `delayMs`. A Raft timer never keeps the process alive
   * by itself (real timers are unref'd): the servers and streams do.
   */
  setTimer(delayMs: number, fn: () => void): RaftTimer;
  /** Call `fn` on a later turn, after the I/O already waiting (batching: proposals of one turn share a Ready). */
  defer(fn: () => void): void;
}

/** Node's clock and timers: the default when no clock is given. */
export const realClock: RaftClock = {
  now: Date.now,
  setTimer(delayMs, fn) {
    const t = setTimeout(fn, delayMs);
    t.unref();
    return { cancel: () => clearTimeout(t) };
  },
  defer(fn) {
    setImmediate(fn);
  },
};

/**
 * Call `fn` every `periodMs` on `clock` until cancelled. The next call is set
 * when one fires, before `fn` runs, as setInterval does: clocks have timers,
 * not intervals.
 */
export function every(clock: RaftClock, periodMs: number, fn: () => void): RaftTimer {
  let next: RaftTimer;
  let stopped = false;
  const arm = () => {
    next = clock.setTimer(periodMs, () => {
      if (stopped) return;
      arm();
      fn();
    });
  };
  arm();
  return {
    cancel: () => {
      stopped = true;
      next.cancel();
    },
  };
}
