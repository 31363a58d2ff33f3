// The side-by-side table of bench:peers: one row per figure, meshlb, the peer,
// and meshlb/peer. Pure, so a unit test pins the ratios and the gaps.
import type { LatencySummary } from './lib/histogram.js';
import { renderTable, type Cell } from './lib/table.js';

/** What one system did under the two workloads. */
export interface Side {
  tasksPerSecond: number;
  /** Submit-to-result over the full-rate phase (mostly queueing: everything is submitted at once). */
  fullRate: LatencySummary;
  cpuUsPerTask: number;
  cpuUsPerTaskByProcess: Record<string, number>;
  paced: LatencySummary;
  pacedCompleted: number;
  pacedCpuUsPerTask: number;
  pacedCpuUsPerTaskByProcess: Record<string, number>;
  /** Each paced pass (bench:peers runs several, the sides alternated); `paced` and `pacedCpuUsPerTask` are medians. */
  pacedPasses?: readonly { p99Ms: number; cpuUsPerTask: number }[];
}

/** a / b to two decimals; '-' when either is missing or b is 0. */
export function ratio(a: number, b: number): Cell {
  if (!Number.isFinite(a) || !Number.isFinite(b) || b === 0) return '-';
  return Math.round((a / b) * 100) / 100;
}

const shown = (x: number): Cell => (Number.isFinite(x) ? x : 'not run');

/** Rows: figure, meshlb, BullMQ, meshlb/BullMQ (higher is better for tasks/s, lower for the rest). */
export function peerRows(m: Side, b: Side, echoRoundTripsPerSecond: number, rate: number): Cell[][] {
  const row = (figure: string, x: number, y: number): Cell[] => [figure, shown(x), shown(y), ratio(x, y)];
  return [
    row('tasks/s, full rate (more is better)', m.tasksPerSecond, b.tasksPerSecond),
    [
      '  share of echo round trips/s (unbatched)',
      ratio(m.tasksPerSecond, echoRoundTripsPerSecond),
      ratio(b.tasksPerSecond, echoRoundTripsPerSecond),
      '-',
    ],
    row('  CPU µs per task, all processes', m.cpuUsPerTask, b.cpuUsPerTask),
    row('  submit→result p50 ms (queueing)', m.fullRate.p50Ms, b.fullRate.p50Ms),
    row('  submit→result p99 ms (queueing)', m.fullRate.p99Ms, b.fullRate.p99Ms),
    row(`paced ${rate}/s: completed`, m.pacedCompleted, b.pacedCompleted),
    row(`paced ${rate}/s: submit→result p50 ms`, m.paced.p50Ms, b.paced.p50Ms),
    row(`paced ${rate}/s: submit→result p99 ms`, m.paced.p99Ms, b.paced.p99Ms),
    row(`paced ${rate}/s: submit→result p99.9 ms`, m.paced.p999Ms, b.paced.p999Ms),
    row(`paced ${rate}/s: CPU µs per task, all processes`, m.pacedCpuUsPerTask, b.pacedCpuUsPerTask),
    ...passRows(m.pacedPasses ?? [], b.pacedPasses ?? []),
  ];
}

const range = (xs: readonly number[]): Cell => {
  const v = xs.filter((x) => Number.isFinite(x));
  return v.length === 0 ? '-' : `${Math.min(...v)}-${Math.max(...v)}`;
};

/** With several passes: their spread, and meshlb / BullMQ per pair (pass i of each side ran side by side). */
function passRows(m: readonly { p99Ms: number; cpuUsPerTask: number }[], b: typeof m): Cell[][] {
  if (m.length < 2 && b.length < 2) return [];
  const pairs = (f: (p: (typeof m)[number]) => number): Cell =>
    range(m.slice(0, b.length).map((p, i) => Math.round((f(p) / f(b[i]!)) * 100) / 100));
  return [
    [
      `  passes (medians above): p99 ms, min-max`,
      range(m.map((p) => p.p99Ms)),
      range(b.map((p) => p.p99Ms)),
      pairs((p) => p.p99Ms),
    ],
    [
      `  passes: CPU µs per task, min-max`,
      range(m.map((p) => p.cpuUsPerTask)),
      range(b.map((p) => p.cpuUsPerTask)),
      pairs((p) => p.cpuUsPerTask),
    ],
  ];
}

export function renderPeers(rows: Cell[][]): string {
  return renderTable(['figure', 'meshlb', 'BullMQ', 'meshlb / BullMQ'], rows);
}
