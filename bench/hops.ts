// Where the dispatch time of a phase's tasks went, hop by hop: reads what `BENCH_HOPS=DIR npm run bench ...`
// wrote (bench/mesh-proc.ts, lib/hop-trace.ts; process per cell), joins each task's records by its sequence
// number, and splits submit → agent start into segments: from the submit to the root's acceptance, each
// cell's time holding it (arrival to sent on: queued, waiting for credit or a pump), each link (sent on by one
// cell to arrival at the next: the batcher's linger and flush, the write, the wire, the read and decode), and
// the node's send to the agent's start. Arrivals are the cells' Date.now() stamps, so each cell/link split is
// good to about ±0.5 ms; the segments of a task add up to its dispatch time exactly.
//
// For the slowest tasks (dispatch time at or above `--q`, default 0.99) and for all, each segment's mean, and
// for the slowest what the segment's process(es) did meanwhile: in a GC pause, runnable but waiting for a CPU
// (schedstat), running (the rest of its CPU time), or idle (waiting for I/O, a timer or credit). A link's
// time is shown for its receiving process (the sender's share of a link is its batcher's wait, which shows as
// idle or busy in the sender; both are printed).
//
//   BENCH_HOPS=/tmp/hops npm run bench -- --only=sweep --sweep-rates= --point-seconds=10 --half-rate=N
//   npx tsx bench/hops.ts /tmp/hops [PHASE] [--q=0.99]
//
// PHASE is the reset count in each process (default: the highest phase every process wrote).
import { readdirSync, readFileSync } from 'node:fs';
import { renderTable, type Cell } from './lib/table.js';

interface PhaseFile {
  label: string;
  role?: string;
  gc: number[];
  hops?: number[];
  cpu?: number[];
  runQueueWaitUs?: number;
  wallUs?: number;
}
interface Proc {
  name: string;
  /** seq -> [a, b]. */
  rec: Map<number, [number, number]>;
  /** Pauses [start, end] µs, sorted. */
  gc: [number, number][];
  /** CPU samples: time, run, wait (cumulative µs). */
  cpu: number[];
  waitShare: number;
}

const args = process.argv.slice(2);
const dir = args[0];
if (!dir) throw new Error('usage: hops.ts DIR [PHASE] [--q=0.99]');
const q = Number(args.find((a) => a.startsWith('--q='))?.slice(4) ?? 0.99);
const files = readdirSync(dir).filter((f) => /^\d+-\d+\.json$/.test(f));
const phaseOf = (f: string) => Number(f.split('-')[1]!.slice(0, -5));
const phase = args[1] && !args[1].startsWith('--') ? Number(args[1]) : Math.max(...files.map(phaseOf));

const procs: Proc[] = [];
for (const f of files.filter((x) => phaseOf(x) === phase)) {
  const j = JSON.parse(readFileSync(`${dir}/${f}`, 'utf8')) as PhaseFile;
  if (!j.hops) continue;
  const rec = new Map<number, [number, number]>();
  // The first record of an attempt's task wins (a retried task's later attempts are rare and left out).
  for (let i = 0; i < j.hops.length; i += 3)
    if (!rec.has(j.hops[i]!)) rec.set(j.hops[i]!, [j.hops[i + 1]!, j.hops[i + 2]!]);
  const gc: [number, number][] = [];
  for (let i = 0; i < j.gc.length; i += 3) gc.push([j.gc[i]!, j.gc[i]! + j.gc[i + 1]!]);
  gc.sort((a, b) => a[0] - b[0]);
  const name = j.role === 'agents' ? 'agents' : j.label.split('=')[0]!;
  procs.push({ name, rec, gc, cpu: j.cpu ?? [], waitShare: (j.runQueueWaitUs ?? 0) / Math.max(1, j.wallUs ?? 1) });
}
const cells = procs
  .filter((p) => p.name !== 'agents')
  .sort((a, b) => a.name.split('/').length - b.name.split('/').length || a.name.length - b.name.length);
const agents = procs.find((p) => p.name === 'agents');
if (!agents || cells.length === 0) throw new Error(`phase ${phase}: no hop records (BENCH_HOPS, process per cell)`);

/** Cumulative [run, wait] of a process at time t, interpolated between its samples. */
function cumAt(p: Proc, t: number): [number, number] {
  const c = p.cpu;
  const n = c.length / 3;
  if (n === 0) return [0, 0];
  let lo = 0;
  let hi = n - 1;
  if (t <= c[0]!) return [c[1]!, c[2]!];
  if (t >= c[3 * hi]!) return [c[3 * hi + 1]!, c[3 * hi + 2]!];
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (c[3 * mid]! <= t) lo = mid;
    else hi = mid;
  }
  const t0 = c[3 * lo]!;
  const t1 = c[3 * hi]!;
  const f = t1 > t0 ? (t - t0) / (t1 - t0) : 0;
  return [
    c[3 * lo + 1]! + f * (c[3 * hi + 1]! - c[3 * lo + 1]!),
    c[3 * lo + 2]! + f * (c[3 * hi + 2]! - c[3 * lo + 2]!),
  ];
}
/** µs of [a, b] a process spent in GC pauses. */
function gcIn(p: Proc, a: number, b: number): number {
  let s = 0;
  for (const [x, y] of p.gc) {
    if (x >= b) break;
    if (y > a) s += Math.min(b, y) - Math.max(a, x);
  }
  return s;
}
/** What a process did during [a, b]: GC, waiting for a CPU, running otherwise, idle (µs). */
function split(p: Proc, a: number, b: number): [number, number, number, number] {
  if (b <= a) return [0, 0, 0, 0];
  const [r0, w0] = cumAt(p, a);
  const [r1, w1] = cumAt(p, b);
  const g = gcIn(p, a, b);
  const wait = Math.max(0, w1 - w0);
  const run = Math.max(0, r1 - r0 - g);
  return [g, wait, run, Math.max(0, b - a - g - wait - run)];
}

// Segments: [name, start index, end index, process] over each task's times: submit, arrive/sent per cell, start.
interface Seg {
  name: string;
  from: number;
  to: number;
  proc: Proc;
  sender?: Proc;
}
const segs: Seg[] = [{ name: `client → ${cells[0]!.name}`, from: 0, to: 1, proc: cells[0]! }];
cells.forEach((c, i) => {
  segs.push({ name: `in ${c.name}`, from: 1 + 2 * i, to: 2 + 2 * i, proc: c });
  const next = cells[i + 1];
  if (next) segs.push({ name: `${c.name} → ${next.name}`, from: 2 + 2 * i, to: 3 + 2 * i, proc: next, sender: c });
});
segs.push({
  name: `${cells.at(-1)!.name} → agent start`,
  from: 2 * cells.length,
  to: 2 * cells.length + 1,
  proc: agents,
  sender: cells.at(-1)!,
});

const tasks: number[][] = [];
for (const [seq, [submit, start]] of agents.rec) {
  const t = [submit];
  let ok = true;
  for (const c of cells) {
    const r = c.rec.get(seq);
    if (!r) {
      ok = false;
      break;
    }
    t.push(r[0], r[1]);
  }
  if (!ok) continue;
  t.push(start);
  tasks.push(t);
}
const lat = (t: number[]) => t.at(-1)! - t[0]!;
tasks.sort((a, b) => lat(a) - lat(b));
const cut = lat(tasks[Math.min(tasks.length - 1, Math.floor(q * tasks.length))]!);
const slow = tasks.filter((t) => lat(t) >= cut);
const ms = (us: number) => Math.round(us / 10) / 100;
const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))] ?? 0;
};
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);

console.log(
  `phase ${phase}: ${tasks.length} tasks joined (of ${agents.rec.size} started); dispatch p50 ${ms(lat(tasks[Math.floor(tasks.length / 2)]!))} ms, q${q} ${ms(cut)} ms, ${slow.length} tasks at or above it, their mean ${ms(mean(slow.map(lat)))} ms`,
);
console.log(
  `waiting for a CPU over the phase: ${procs.map((p) => `${p.name} ${Math.round(p.waitShare * 100)}%`).join(', ')}`,
);
const rows: Cell[][] = segs.map((s) => {
  const all = tasks.map((t) => t[s.to]! - t[s.from]!);
  const tail = slow.map((t) => t[s.to]! - t[s.from]!);
  const parts = slow.map((t) => split(s.proc, t[s.from]!, t[s.to]!));
  const sum = (i: number) => ms(mean(parts.map((p) => p[i]!)));
  const sp = s.sender ? slow.map((t) => split(s.sender!, t[s.from]!, t[s.to]!)) : [];
  const senderCell = s.sender ? `${sum4(sp, 0)} / ${sum4(sp, 1)} / ${sum4(sp, 2)} / ${sum4(sp, 3)}` : '-';
  return [
    s.name,
    ms(pct(all, 0.5)),
    ms(pct(all, 0.99)),
    ms(mean(all)),
    ms(mean(tail)),
    `${Math.round((100 * mean(tail)) / Math.max(1, mean(slow.map(lat))))}%`,
    `${sum(0)} / ${sum(1)} / ${sum(2)} / ${sum(3)}`,
    senderCell,
  ];
});
function sum4(parts: number[][], i: number): number {
  return ms(mean(parts.map((p) => p[i]!)));
}
console.log(
  renderTable(
    [
      'segment',
      'p50 ms',
      'p99 ms',
      'mean ms',
      `mean ms, slowest ${Math.round((1 - q) * 1000) / 10}%`,
      'share',
      'slowest: GC / CPU wait / running / idle ms (receiver)',
      '(sender)',
    ],
    rows,
  ),
);
