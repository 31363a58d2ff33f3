// How long this test process stood still (descheduled on a loaded machine, or
// its event loop blocked) while a real-time bound ran: the lateness of a 5 ms
// timer beyond 20 ms, summed. A cell leaves its own stalls out of the silences
// it judges (src/mesh/stall-clock.ts), so on a loaded machine it detects a
// silent peer later by up to that much: an upper bound on detection adds it.
// On a quiet machine it is about 0 and the bound is the plain one.
export interface StallMeter {
  /** Stalled so far (ms); after stop(), until then. */
  readonly stalledMs: number;
  stop(): void;
}

const EVERY_MS = 5;
const LATE_MS = 20;

export function stallMeter(): StallMeter {
  let last = performance.now();
  let stalled = 0;
  const late = (now: number): number => {
    const gap = now - last;
    return gap > EVERY_MS + LATE_MS ? gap - EVERY_MS : 0;
  };
  const timer = setInterval(() => {
    const now = performance.now();
    stalled += late(now);
    last = now;
  }, EVERY_MS);
  timer.unref();
  let stopped = false;
  return {
    get stalledMs() {
      return stopped ? stalled : stalled + late(performance.now());
    },
    stop: () => {
      if (stopped) return;
      clearInterval(timer);
      stalled += late(performance.now());
      stopped = true;
    },
  };
}
