// The paced sweep of `npm run bench`: the same mesh at several offered rates
// (100, 500, 2,000, 8,000 tasks/s and half of the measured peak), each point a
// paced phase (phases.ts) with the tasks due each millisecond in one
// SubmitBatch, so every point loads the client the same way. Per point:
// submit-to-result and dispatch percentiles, CPU per task (all processes and
// each), wakeups and link messages per task per process. Printed as a table;
// charted as latency against offered rate (chart.ts).
import { logLogChart } from './chart.js';
import { paced, round, type Mesh, type Paced, type PacedMode } from './phases.js';
import { renderTable, type Cell } from './table.js';

export const SWEEP_RATES = [100, 500, 2000, 8000] as const;

export interface SweepPoint extends Paced {
  /** Why this rate is in the sweep: 'fixed' or 'half of peak'. */
  readonly why: string;
}

/** Seconds for a point: at least `minTasks` tasks (for a p99.9), at least `minS`, at most `maxS`. */
export function pointSeconds(rate: number, quick: boolean): number {
  const minTasks = quick ? 500 : 1000;
  const [minS, maxS] = quick ? [2, 5] : [3, 10];
  return Math.min(maxS, Math.max(minS, Math.ceil(minTasks / rate)));
}

/** Run the sweep: fixed rates and half of `peak` (when known), in ascending order. */
export async function sweep(
  m: Mesh,
  peak: number,
  quick: boolean,
  log: (s: string) => void,
  fixed: readonly number[] = SWEEP_RATES,
  /** Seconds per point; 0: pointSeconds(). */
  seconds = 0,
): Promise<SweepPoint[]> {
  const rates: [number, string][] = fixed.map((r) => [r, 'fixed']);
  if (Number.isFinite(peak) && peak > 0) rates.push([Math.max(100, Math.round(peak / 2)), 'half of peak']);
  rates.sort((a, b) => a[0] - b[0]);
  const out: SweepPoint[] = [];
  for (const [rate, why] of rates) {
    const mode = (process.env.BENCH_SWEEP_MODE as PacedMode | undefined) ?? 'batch';
    const p = await paced(m, rate, seconds || pointSeconds(rate, quick), mode);
    log(
      `sweep ${rate}/s (${why}): submit→result p50 ${p.submitToResult.p50Ms} p99 ${p.submitToResult.p99Ms} p99.9 ${p.submitToResult.p999Ms} ms, dispatch p99 ${p.dispatch.p99Ms} ms, ${p.completed}/${p.tasks} done, ${p.cpuUsPerTask} µs CPU/task ${JSON.stringify(p.cpuUsPerTaskByProcess)}, wakeups/task ${JSON.stringify(p.wakeupsPerTask)}, messages/task ${JSON.stringify(p.messagesPerTask)}, waiting for CPU ${JSON.stringify(p.runQueueWaitShare)}, stalls ${JSON.stringify(p.stalls)}, heap bytes allocated/task ${JSON.stringify(p.allocBytesPerTask)}`,
    );
    out.push({ ...p, why });
  }
  return out;
}

const mean = (r: Record<string, number>, prefix: string): number => {
  const v = Object.entries(r)
    .filter(([k]) => k.startsWith(prefix))
    .map(([, x]) => x);
  return v.length ? round(v.reduce((a, b) => a + b, 0) / v.length) : NaN;
};

export function sweepTable(points: readonly SweepPoint[]): string {
  const rows: Cell[][] = points.map((p) => [
    `${p.rate}${p.why === 'fixed' ? '' : ' (½ peak)'}`,
    p.completed,
    p.submitToResult.p50Ms,
    p.submitToResult.p99Ms,
    p.submitToResult.p999Ms,
    p.dispatch.p99Ms,
    p.cpuUsPerTask,
    mean(p.cpuUsPerTaskByProcess, 'cell '),
    mean(p.wakeupsPerTask, 'cell '),
    mean(p.messagesPerTask, 'cell '),
  ]);
  return renderTable(
    [
      'tasks/s',
      'done',
      'p50 ms',
      'p99 ms',
      'p99.9 ms',
      'dispatch p99 ms',
      'CPU µs/task, all',
      'per cell',
      'wakeups/task/cell',
      'msgs/task/cell',
    ],
    rows,
  );
}

export function sweepChart(points: readonly SweepPoint[], title: string): string {
  const line = (name: string, color: string, f: (p: SweepPoint) => number) => ({
    name,
    color,
    points: points.map((p) => [p.rate, f(p)] as const),
  });
  return logLogChart(
    [
      line('p50', '#1f77b4', (p) => p.submitToResult.p50Ms),
      line('p99', '#ff7f0e', (p) => p.submitToResult.p99Ms),
      line('p99.9', '#d62728', (p) => p.submitToResult.p999Ms),
      line('dispatch p99', '#2ca02c', (p) => p.dispatch.p99Ms),
    ],
    { title, xLabel: 'offered tasks/s (log)', yLabel: 'submit to result, ms (log)' },
  );
}
