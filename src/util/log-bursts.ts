// Bounded log output: a burst of the same info or warn line (100 agents refused
// while their node elects its leader, a client retrying a refused batch every few
// ms) writes its first `perWindow` lines per window, then one line that says how
// many more were not written. Errors and fatals always go out; debug and trace are
// off unless asked for, and then the asker wants every line.
//
// It runs as pino's `logMethod` hook (src/util/log.ts), keyed by the message
// text, so every component gets it without a change of its own. The clock is
// injected for the unit test; the product passes Date.now and an unref'd timer.

/** pino's numeric levels: info 30, warn 40, error 50. */
const INFO = 30;
const WARN = 40;

export interface BurstOptions {
  /** Lines of one message written per window before the rest are counted (default 10). */
  perWindow?: number;
  /** The window, ms (default 1,000). */
  windowMs?: number;
  /** Distinct messages tracked per window; past it, lines go out uncounted (a bound on the map). */
  maxKeys?: number;
  now?: () => number;
  /** Runs `fn` once after `ms` (the report of a window's suppressed lines); must not hold the process open. */
  later?: (fn: () => void, ms: number) => void;
}

interface Burst {
  written: number;
  suppressed: number;
  level: number;
}

/** Decides, line by line, whether an info or warn line is written; reports what it held back. */
export class LogBursts {
  private readonly perWindow: number;
  private readonly windowMs: number;
  private readonly maxKeys: number;
  private readonly now: () => number;
  private readonly later: (fn: () => void, ms: number) => void;
  private windowStart = -Infinity;
  private bursts = new Map<string, Burst>();
  private reportDue = false;

  /** `report(level, msg, count, windowMs)` writes the line that says `count` lines of `msg` were held back. */
  constructor(
    private readonly report: (level: number, msg: string, count: number, windowMs: number) => void,
    opts: BurstOptions = {},
  ) {
    this.perWindow = opts.perWindow ?? 10;
    this.windowMs = opts.windowMs ?? 1_000;
    this.maxKeys = opts.maxKeys ?? 1_000;
    this.now = opts.now ?? Date.now;
    this.later =
      opts.later ??
      ((fn, ms) => {
        setTimeout(fn, ms).unref();
      });
  }

  /** True when the line should be written. */
  admit(level: number, msg: string): boolean {
    // A line with no message text (`log.warn(err)`) has nothing to be one of a burst by.
    if (level < INFO || level > WARN || msg === '') return true;
    const t = this.now();
    if (t - this.windowStart >= this.windowMs) this.roll(t);
    let b = this.bursts.get(msg);
    if (b === undefined) {
      if (this.bursts.size >= this.maxKeys) return true;
      b = { written: 0, suppressed: 0, level };
      this.bursts.set(msg, b);
    }
    if (b.written < this.perWindow) {
      b.written++;
      return true;
    }
    b.suppressed++;
    b.level = Math.max(b.level, level);
    if (!this.reportDue) {
      this.reportDue = true;
      this.later(() => this.flush(), this.windowStart + this.windowMs - t);
    }
    return false;
  }

  /** Reports the current window's held-back lines (at its end, or when a later line finds it over). */
  flush(): void {
    this.roll(this.now());
  }

  private roll(t: number): void {
    for (const [msg, b] of this.bursts) if (b.suppressed > 0) this.report(b.level, msg, b.suppressed, this.windowMs);
    this.bursts = new Map();
    this.windowStart = t;
    this.reportDue = false;
  }
}
