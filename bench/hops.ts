// Where the dispatch time of a phase's tasks went, hop by hop: reads what `BENCH_HOPS=DIR npm run bench ...`
// wrote (bench/mesh-proc.ts, lib/hop-trace.ts; process per cell), joins each task's records by its sequence
// number, and splits submit → agent start into segments: from the submit to the root's acceptance, each
// cell's time holding it (arrival to sent on: queued, waiting for credit or a pump), each link (sent on by one
// cell to arrival at the next: the batcher's linger and flush, the write, the wire, the read and decode), and
// the node's send to the agent's start. Arrivals are the cells' Date.now() stamps, so each cell/link split is
// good to about ±0.5 ms; the segments of a task add up to its dispatch time exactly.
//
// With the way back recorded (each cell's `resultBack`), the task's time runs on to the root: the agent's
// start to the node's handling of its result, then each cell's handling of it to its parent's, and the
// slowest are those of submit → result at the root (what the paced phases report); `--dispatch` ranks by
// dispatch time as before.
//
// For the slowest tasks (at or above `--q`, default 0.99) and for all, each segment's mean, and for the
// slowest what the segment's process(es) did meanwhile: in a GC pause, runnable but waiting for a CPU
// (schedstat), in a timer callback of its cell's scheduler (the tick's sweeps, summaries, link timers),
// running (the rest of its CPU time), or idle (waiting for I/O or credit); and how much of it the host's
// vCPUs were stolen (/proc/stat, both CPUs: 1 ms stolen on each is 2 ms). A link's time is shown for its
// receiving process (the sender's share of a link is its batcher's wait, which shows as idle or busy in the
// sender; both are printed). Then each slow task is put down to what took most of its time beyond a typical
// task's (a GC pause, a timer, a wait for a CPU, stolen time, or none of these: running or idle).
//
//   BENCH_HOPS=/tmp/hops npm run bench -- --only=paced500
//   npx tsx bench/hops.ts /tmp/hops [PHASE] [--q=0.99] [--dispatch]
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
  back?: number[];
  timers?: number[];
  steal?: number[];
  runQueueWaitUs?: number;
  wallUs?: number;
}
interface Proc {
  name: string;
  /** seq -> [a, b]. */
  rec: Map<number, [number, number]>;
  /** Pauses [start, end] µs, sorted. */
  gc: [number, number][];
  /** seq -> when its result passed back (cells). */
  back: Map<number, number>;
  /** Timer callbacks [start, end] µs, sorted. */
  timers: [number, number][];
  /** CPU samples: time, run, wait (cumulative µs). */
  cpu: number[];
  waitShare: number;
}

const args = process.argv.slice(2);
const dir = args[0];
if (!dir) throw new Error('usage: hops.ts DIR [PHASE] [--q=0.99]');
const q = Number(args.find((a) => a.startsWith('--q='))?.slice(4) ?? 0.99);
const byDispatch = args.includes('--dispatch');
const files = readdirSync(dir).filter((f) => /^\d+-\d+\.json$/.test(f));
const phaseOf = (f: string) => Number(f.split('-')[1]!.slice(0, -5));
const phase = args[1] && !args[1].startsWith('--') ? Number(args[1]) : Math.max(...files.map(phaseOf));

const procs: Proc[] = [];
/** The host's stolen and idle time: time, steal, idle (cumulative µs), from the process that sampled it. */
let steal: number[] = [];
for (const f of files.filter((x) => phaseOf(x) === phase)) {
  const j = JSON.parse(readFileSync(`${dir}/${f}`, 'utf8')) as PhaseFile;
  if (!j.hops) continue;
  const rec = new Map<number, [number, number]>();
  // The first record of an attempt's task wins (a retried task's later attempts are rare and left out).
  for (let i = 0; i < j.hops.length; i += 3)
    if (!rec.has(j.hops[i]!)) rec.set(j.hops[i]!, [j.hops[i + 1]!, j.hops[i + 2]!]);
  const back = new Map<number, number>();
  const bk = j.back ?? [];
  for (let i = 0; i < bk.length; i += 3) if (!back.has(bk[i]!)) back.set(bk[i]!, bk[i + 1]!);
  const spans = (xs: number[]): [number, number][] => {
    const out: [number, number][] = [];
    for (let i = 0; i < xs.length; i += 3) out.push([xs[i]!, xs[i]! + xs[i + 1]!]);
    return out.sort((a, b) => a[0] - b[0]);
  };
  const name = j.role === 'agents' ? 'agents' : j.label.split('=')[0]!;
  if (j.steal?.length) steal = j.steal;
  procs.push({
    name,
    rec,
    back,
    gc: spans(j.gc),
    timers: spans(j.timers ?? []),
    cpu: j.cpu ?? [],
    waitShare: (j.runQueueWaitUs ?? 0) / Math.max(1, j.wallUs ?? 1),
  });
}
const cells = procs
  .filter((p) => p.name !== 'agents')
  .sort((a, b) => a.name.split('/').length - b.name.split('/').length || a.name.length - b.name.length);
const agents = procs.find((p) => p.name === 'agents');
if (!agents || cells.length === 0) throw new Error(`phase ${phase}: no hop records (BENCH_HOPS, process per cell)`);

/** Cumulative [run, wait] of a process at time t (or of any such triple series), interpolated between samples. */
function cumAt(p: Proc | number[], t: number): [number, number] {
  const c = Array.isArray(p) ? p : p.cpu;
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
/** µs of [a, b] covered by sorted spans (GC pauses, timer callbacks). */
function spanIn(spans: [number, number][], a: number, b: number): number {
  let s = 0;
  for (const [x, y] of spans) {
    if (x >= b) break;
    if (y > a) s += Math.min(b, y) - Math.max(a, x);
  }
  return s;
}
/** µs the host's vCPUs were stolen during [a, b], summed over CPUs (0 without samples). */
function stolen(a: number, b: number): number {
  if (steal.length === 0 || b <= a) return 0;
  return Math.max(0, cumAt(steal, b)[0] - cumAt(steal, a)[0]);
}
/**
 * What a process did during [a, b], µs: GC, waiting for a CPU, in a timer callback (less GC within it),
 * running otherwise, idle. A timer callback's time is running time; a GC pause inside one counts as GC.
 */
function split(p: Proc, a: number, b: number): [number, number, number, number, number] {
  if (b <= a) return [0, 0, 0, 0, 0];
  const [r0, w0] = cumAt(p, a);
  const [r1, w1] = cumAt(p, b);
  const g = spanIn(p.gc, a, b);
  const wait = Math.max(0, w1 - w0);
  const tm = Math.max(0, Math.min(spanIn(p.timers, a, b), r1 - r0 - g));
  const run = Math.max(0, r1 - r0 - g - tm);
  return [g, wait, tm, run, Math.max(0, b - a - g - wait - tm - run)];
}

// Segments over each task's times: submit, arrive/sent per cell, the agent's start, then (the way back) when
// the result passed each cell from the node up to the root.
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
const started = 2 * cells.length + 1;
segs.push({
  name: `${cells.at(-1)!.name} → agent start`,
  from: started - 1,
  to: started,
  proc: agents,
  sender: cells.at(-1)!,
});
const withBack = cells.every((c) => c.back.size > 0);
if (withBack) {
  const up = [...cells].reverse();
  segs.push({
    name: `agent start → ${up[0]!.name} (back)`,
    from: started,
    to: started + 1,
    proc: up[0]!,
    sender: agents,
  });
  for (let i = 1; i < up.length; i++)
    segs.push({
      name: `${up[i - 1]!.name} → ${up[i]!.name} (back)`,
      from: started + i,
      to: started + i + 1,
      proc: up[i]!,
      sender: up[i - 1]!,
    });
}

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
  t.push(start);
  if (withBack)
    for (let i = cells.length - 1; i >= 0 && ok; i--) {
      const b = cells[i]!.back.get(seq);
      if (b === undefined) ok = false;
      else t.push(b);
    }
  if (ok) tasks.push(t);
}
const last = byDispatch || !withBack ? started : started + cells.length;
const lat = (t: number[]) => t[last]! - t[0]!;
tasks.sort((a, b) => lat(a) - lat(b));
const cut = lat(tasks[Math.min(tasks.length - 1, Math.floor(q * tasks.length))]!);
const slow = tasks.filter((t) => lat(t) >= cut);
const ms = (us: number) => Math.round(us / 10) / 100;
const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))] ?? 0;
};
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
const used = segs.filter((s) => s.to <= last);

console.log(
  `phase ${phase}: ${tasks.length} tasks joined (of ${agents.rec.size} started); ${last === started ? 'dispatch' : 'submit → result at the root'} p50 ${ms(lat(tasks[Math.floor(tasks.length / 2)]!))} ms, q${q} ${ms(cut)} ms, ${slow.length} tasks at or above it, their mean ${ms(mean(slow.map(lat)))} ms`,
);
console.log(
  `waiting for a CPU over the phase: ${procs.map((p) => `${p.name} ${Math.round(p.waitShare * 100)}%`).join(', ')}; timer callbacks: ${cells.map((c) => `${c.name} ${c.timers.length} (${ms(c.timers.reduce((a, [x, y]) => a + y - x, 0))} ms, longest ${ms(Math.max(0, ...c.timers.map(([x, y]) => y - x)))})`).join(', ')}`,
);
if (steal.length >= 6) {
  const span = steal.at(-3)! - steal[0]!;
  console.log(
    `host: stolen ${ms(steal.at(-2)! - steal[1]!)} ms, idle ${ms(steal.at(-1)! - steal[2]!)} ms of ${ms(2 * span)} CPU-ms over the phase`,
  );
}
const f4 = (parts: number[][]) =>
  parts[0] ? parts[0].map((_, i) => ms(mean(parts.map((p) => p[i]!)))).join(' / ') : '-';
const rows: Cell[][] = used.map((s) => {
  const all = tasks.map((t) => t[s.to]! - t[s.from]!);
  const tail = slow.map((t) => t[s.to]! - t[s.from]!);
  const parts = slow.map((t) => split(s.proc, t[s.from]!, t[s.to]!));
  const sp = s.sender ? slow.map((t) => split(s.sender!, t[s.from]!, t[s.to]!)) : [];
  return [
    s.name,
    ms(pct(all, 0.5)),
    ms(pct(all, 0.99)),
    ms(mean(all)),
    ms(mean(tail)),
    `${Math.round((100 * mean(tail)) / Math.max(1, mean(slow.map(lat))))}%`,
    f4(parts),
    f4(sp),
    ms(mean(slow.map((t) => stolen(t[s.from]!, t[s.to]!)))),
  ];
});
console.log(
  renderTable(
    [
      'segment',
      'p50 ms',
      'p99 ms',
      'mean ms',
      `mean ms, slowest ${Math.round((1 - q) * 1000) / 10}%`,
      'share',
      'slowest: GC / CPU wait / timer / running / idle ms (receiver)',
      '(sender)',
      'host stolen ms',
    ],
    rows,
  ),
);

// Each slow task put down to one cause: per segment, its time beyond that segment's median is split (receiver's
// GC, CPU wait, timer, running, idle; stolen time taken out of idle first), summed over segments; the largest
// share names the cause. `idle` is neither process busy nor waiting: the bytes in the kernel, or a process's
// other threads.
const CAUSES = ['GC pause', 'CPU wait', 'timer', 'running', 'stolen', 'idle'] as const;
const medians = used.map((s) =>
  pct(
    tasks.map((t) => t[s.to]! - t[s.from]!),
    0.5,
  ),
);
const tally = new Map<string, number>();
const excessBy = CAUSES.map(() => 0);
const hopOf = new Map<string, number>();
for (const t of slow) {
  const acc = CAUSES.map(() => 0);
  let worst = '';
  let worstEx = -1;
  used.forEach((s, i) => {
    const d = t[s.to]! - t[s.from]!;
    const ex = d - medians[i]!;
    if (ex <= 0) return;
    if (ex > worstEx) [worst, worstEx] = [s.name, ex];
    const [g, w, tm, run, idle] = split(s.proc, t[s.from]!, t[s.to]!);
    const st = Math.min(idle, stolen(t[s.from]!, t[s.to]!) / 2);
    const parts = [g, w, tm, run, st, idle - st];
    const sum = parts.reduce((a, b) => a + b, 0) || 1;
    parts.forEach((x, k) => (acc[k]! += (ex * x) / sum));
  });
  acc.forEach((x, k) => (excessBy[k]! += x));
  const k = acc.indexOf(Math.max(...acc));
  tally.set(CAUSES[k]!, (tally.get(CAUSES[k]!) ?? 0) + 1);
  hopOf.set(worst, (hopOf.get(worst) ?? 0) + 1);
}
const tot = excessBy.reduce((a, b) => a + b, 0) || 1;
console.log(
  `slowest ${slow.length}, time beyond the median hop by hop: ${CAUSES.map((c, k) => `${c} ${Math.round((100 * excessBy[k]!) / tot)}%`).join(', ')}`,
);
console.log(`  each put down to its largest cause: ${[...tally].map(([c, n]) => `${c} ${n}`).join(', ')}`);
console.log(
  `  the hop where each lost most: ${[...hopOf]
    .sort((a, b) => b[1] - a[1])
    .map(([h, n]) => `${h} ${n}`)
    .join(', ')}`,
);
