// The paced 500/s phase as several passes of the same length, each with a wakeup probe beside it
// (wake-probe.ts). On this 2-core VM one pass's CPU per task swings ~1.6x between runs of the same tree
// with the same wakeups, messages and GC per task (docs/performance.md, "Session 12: the paced swing"), so one pass says
// little; the spread of a few, and the probe next to each, say how much is the machine.
import type { Mesh, Paced } from './phases.js';
import { paced } from './phases.js';
import { NO_PROBE, wakeProbe, type WakeProbe } from './wake-probe.js';

export interface Spread {
  min: number;
  median: number;
  max: number;
}

/** min, median (the lower middle of an even count) and max of finite values; NaN when there are none. */
export function spread(xs: readonly number[]): Spread {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return { min: NaN, median: NaN, max: NaN };
  return { min: v[0]!, median: v[(v.length - 1) >> 1]!, max: v[v.length - 1]! };
}

export const fmtSpread = (s: Spread): string => `${s.median} (${s.min}-${s.max})`;

export interface PassFigures {
  p50Ms: number;
  p99Ms: number;
  cpuUsPerTask: number;
  /** The wakeup probe taken right after the pass. */
  probe: WakeProbe;
}

export interface PacedPasses {
  /** The pass whose CPU per task is the median: every figure of it is one pass's. */
  median: Paced;
  passes: PassFigures[];
  cpuUsPerTask: Spread;
  p99Ms: Spread;
  probeUsPerWakeup: Spread;
}

export const NO_PASSES = (none: Paced): PacedPasses => ({
  median: none,
  passes: [],
  cpuUsPerTask: spread([]),
  p99Ms: spread([]),
  probeUsPerWakeup: spread([]),
});

export function figuresOf(p: Paced, probe: WakeProbe = NO_PROBE): PassFigures {
  return { p50Ms: p.submitToResult.p50Ms, p99Ms: p.submitToResult.p99Ms, cpuUsPerTask: p.cpuUsPerTask, probe };
}

export function summarize(all: readonly Paced[], figures: readonly PassFigures[]): PacedPasses {
  const cpu = spread(figures.map((f) => f.cpuUsPerTask));
  return {
    median: all.find((p) => p.cpuUsPerTask === cpu.median) ?? all[0]!,
    passes: [...figures],
    cpuUsPerTask: cpu,
    p99Ms: spread(figures.map((f) => f.p99Ms)),
    probeUsPerWakeup: spread(figures.map((f) => f.probe.usPerWakeup)),
  };
}

/** `k` passes of `seconds` at `rate` (one task per SubmitStream message), a wakeup probe after each. */
export async function pacedPasses(
  m: Mesh,
  rate: number,
  seconds: number,
  k: number,
  log: (s: string) => void,
): Promise<PacedPasses> {
  const all: Paced[] = [];
  const figures: PassFigures[] = [];
  for (let i = 0; i < k; i++) {
    const p = await paced(m, rate, seconds, 'stream');
    const f = figuresOf(p, await wakeProbe());
    all.push(p);
    figures.push(f);
    log(
      `paced ${rate}/s pass ${i + 1}/${k}: p50 ${f.p50Ms} p99 ${f.p99Ms} ms, ${f.cpuUsPerTask} µs CPU/task, wakeups/task ${JSON.stringify(p.wakeupsPerTask)}, empty wakeup ${f.probe.usPerWakeup} µs`,
    );
  }
  const s = summarize(all, figures);
  log(
    `paced ${rate}/s over ${k} passes, median (min-max): CPU/task ${fmtSpread(s.cpuUsPerTask)} µs, p99 ${fmtSpread(s.p99Ms)} ms, empty wakeup ${fmtSpread(s.probeUsPerWakeup)} µs`,
  );
  return s;
}
