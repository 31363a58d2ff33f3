// The clock the client's shared submit stream keeps its deadlines and
// backoffs on: the real one, or a fake a test advances by hand.
export interface Clock {
  now(): number;
  /** `weak`: the timer alone does not keep the process alive. */
  setTimeout(fn: () => void, ms: number, weak?: boolean): unknown;
  clearTimeout(h: unknown): void;
}

export const REAL_CLOCK: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms, weak) => {
    const t = setTimeout(fn, ms);
    if (weak) t.unref();
    return t;
  },
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};
