// `npx tsx bench/sweep-heap.ts bench/results/mesh-<a>.json [mesh-<b>.json ...]`: the old generation's
// intake per task at each sweep point of `npm run bench` result files, one row per file and point, for
// A/B runs of the half-of-peak phase (`npm run bench -- --only=sweep --sweep-rates= --point-seconds=10
// --half-rate=N`). Per cell: bytes per task scavenges promoted, bytes per task the old generation took
// in all (promoted plus pretenured and large objects), mark-compacts and their ms, scavenge ms; and the
// point's CPU µs per task, dispatch p99 and the load average of the run (bench/mesh-proc.ts, `stalls`).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { renderTable, type Cell } from './lib/table.js';

interface Stalls {
  gcYoungMs: number;
  gcOldMs: number;
  gcOld: number;
  promotedBytes?: number;
  oldAddedBytes?: number;
}
interface Point {
  rate: number;
  tasks: number;
  completed: number;
  cpuUsPerTask: number | null;
  dispatch: { p99Ms: number | null };
  stalls: Record<string, Stalls>;
}
interface Run {
  at: string;
  loadAverage: { before: number[]; after: number[] };
  sweep: Point[];
}

const CELLS = ['cell /', 'cell /r', 'cell /r/z', 'cell /r/z/n'];
const per = (bytes: number | undefined, tasks: number): string =>
  bytes === undefined ? '-' : String(Math.round(bytes / Math.max(1, tasks)));

const rows: Cell[][] = [];
for (const file of process.argv.slice(2)) {
  const run = JSON.parse(readFileSync(file, 'utf8')) as Run;
  for (const p of run.sweep) {
    const cells = CELLS.map((c) => p.stalls[c]);
    rows.push([
      path.basename(file, '.json').replace(/^mesh-/, ''),
      `${run.loadAverage.before[0]?.toFixed(1)}-${run.loadAverage.after[0]?.toFixed(1)}`,
      p.rate,
      cells.map((s) => per(s?.promotedBytes, p.completed)).join(' '),
      cells.map((s) => per(s?.oldAddedBytes, p.completed)).join(' '),
      cells.map((s) => `${s?.gcOld ?? '-'}/${s?.gcOldMs ?? '-'}`).join(' '),
      cells.map((s) => s?.gcYoungMs ?? '-').join(' '),
      p.cpuUsPerTask ?? '-',
      p.dispatch.p99Ms ?? '-',
    ]);
  }
}
console.log(
  renderTable(
    [
      'run',
      'load',
      'tasks/s',
      'promoted B/task /,/r,/r/z,node',
      'old gen B/task',
      'mark-compacts/ms',
      'scavenge ms',
      'CPU µs/task',
      'dispatch p99 ms',
    ],
    rows,
  ),
);
