// A burst of one info or warn message writes its first lines per window and one
// line counting the rest; errors, debug and other messages are untouched.
import { describe, expect, it } from 'vitest';
import { LogBursts } from '../../src/util/log-bursts.js';

function harness(perWindow = 3) {
  let t = 0;
  const timers: Array<{ at: number; fn: () => void }> = [];
  const reports: Array<{ level: number; msg: string; count: number }> = [];
  const b = new LogBursts((level, msg, count) => reports.push({ level, msg, count }), {
    perWindow,
    windowMs: 1_000,
    maxKeys: 4,
    now: () => t,
    later: (fn, ms) => timers.push({ at: t + ms, fn }),
  });
  /** Moves the clock and runs the timers due by then. */
  const advance = (ms: number) => {
    t += ms;
    for (const x of timers.splice(0))
      if (x.at <= t) x.fn();
      else timers.push(x);
  };
  return { b, reports, advance, timers };
}

describe('LogBursts', () => {
  it('writes the first lines of a burst and reports the rest once, at the end of the window', () => {
    const h = harness(3);
    const written = Array.from({ length: 50 }, () => h.b.admit(40, 'agent: not the leader')).filter(Boolean);
    expect(written).toHaveLength(3);
    expect(h.reports).toEqual([]);
    expect(h.timers).toHaveLength(1); // one report scheduled for the window, not one per line
    h.advance(1_000);
    expect(h.reports).toEqual([{ level: 40, msg: 'agent: not the leader', count: 47 }]);
    // A new window writes again.
    expect(h.b.admit(40, 'agent: not the leader')).toBe(true);
  });

  it('counts each message on its own and never holds back errors or debug lines', () => {
    const h = harness(2);
    for (let i = 0; i < 5; i++) {
      h.b.admit(30, 'a');
      h.b.admit(40, 'b');
    }
    expect(Array.from({ length: 20 }, () => h.b.admit(50, 'a')).every(Boolean)).toBe(true);
    expect(Array.from({ length: 20 }, () => h.b.admit(20, 'a')).every(Boolean)).toBe(true);
    expect(Array.from({ length: 20 }, () => h.b.admit(40, '')).every(Boolean)).toBe(true); // no message text: not a burst of one
    h.advance(1_000);
    expect(h.reports).toEqual([
      { level: 30, msg: 'a', count: 3 },
      { level: 40, msg: 'b', count: 3 },
    ]);
  });

  it('bounds the messages it tracks: past maxKeys, lines go out uncounted', () => {
    const h = harness(1);
    for (const m of ['k1', 'k2', 'k3', 'k4']) h.b.admit(40, m);
    for (let i = 0; i < 10; i++) expect(h.b.admit(40, 'k5')).toBe(true);
    h.advance(1_000);
    expect(h.reports).toEqual([]);
  });

  it('reports a window that a later line finds over, even when its timer has not run', () => {
    const h = harness(1);
    h.b.admit(40, 'x');
    h.b.admit(40, 'x');
    h.timers.length = 0; // the timer lost (e.g. a stalled process): the next line still reports
    h.advance(5_000);
    expect(h.b.admit(40, 'x')).toBe(true);
    expect(h.reports).toEqual([{ level: 40, msg: 'x', count: 1 }]);
  });
});
