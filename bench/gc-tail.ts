// Which GC pauses the slowest tasks of a phase met: reads what `BENCH_GC_TAIL=DIR npm run bench ...` wrote
// (bench/mesh-proc.ts: per process and phase, its GC pauses; at the root, each task's submit time and
// latency) and, for the tasks at or above the latency quantile `--q` (default 0.99), counts how many
// overlapped a pause in some process, and in which (by pid), against the share of all tasks that did.
//
//   npx tsx bench/gc-tail.ts DIR PHASE [--q=0.99]
//
// PHASE is the reset count in each process (1: full-rate warm-up, 2: idle, 3: paced warm-up, 4: paced 500/s
// with --only=paced500).
import { readdirSync, readFileSync } from 'node:fs';

const [dir, phaseArg, ...rest] = process.argv.slice(2);
if (!dir || !phaseArg) throw new Error('usage: gc-tail.ts DIR PHASE [--q=0.99]');
const q = Number(rest.find((a) => a.startsWith('--q='))?.slice(4) ?? 0.99);
const files = readdirSync(dir).filter((f) => f.endsWith(`-${phaseArg}.json`));
const pauses: { pid: string; start: number; end: number; minor: boolean }[] = [];
let tasks: number[] = [];
for (const f of files) {
  const j = JSON.parse(readFileSync(`${dir}/${f}`, 'utf8')) as { label: string; gc: number[]; tasks: number[] };
  const pid = `${f.split('-')[0]!}(${j.label})`;
  for (let i = 0; i < j.gc.length; i += 3)
    pauses.push({ pid, start: j.gc[i]!, end: j.gc[i]! + j.gc[i + 1]!, minor: j.gc[i + 2] === 1 });
  if (j.tasks.length > 0) tasks = j.tasks;
}
const all: { t: number; lat: number }[] = [];
for (let i = 0; i < tasks.length; i += 2) all.push({ t: tasks[i]!, lat: tasks[i + 1]! });
all.sort((a, b) => a.lat - b.lat);
const cut = all[Math.min(all.length - 1, Math.floor(q * all.length))]?.lat ?? 0;
const met = (x: { t: number; lat: number }) => pauses.filter((p) => p.start < x.t + x.lat && p.end > x.t);
const slow = all.filter((x) => x.lat >= cut);
let slowMet = 0;
let allMet = 0;
const byPid = new Map<string, number>();
for (const x of all) if (met(x).length > 0) allMet++;
for (const x of slow) {
  const m = met(x);
  if (m.length > 0) slowMet++;
  for (const pid of new Set(m.map((p) => p.pid))) byPid.set(pid, (byPid.get(pid) ?? 0) + 1);
}
const perPid = new Map<string, { n: number; ms: number; longest: number }>();
for (const p of pauses) {
  const s = perPid.get(p.pid) ?? { n: 0, ms: 0, longest: 0 };
  s.n++;
  s.ms += (p.end - p.start) / 1000;
  s.longest = Math.max(s.longest, (p.end - p.start) / 1000);
  perPid.set(p.pid, s);
}
const ms = (us: number) => Math.round(us / 10) / 100;
console.log(`${all.length} tasks, p50 ${ms(all[Math.floor(all.length / 2)]?.lat ?? 0)} ms, q${q} ${ms(cut)} ms`);
console.log(
  `tasks at or above it: ${slow.length}, of which met a GC pause: ${slowMet}; all tasks that met one: ${allMet} (${Math.round((1000 * allMet) / Math.max(1, all.length)) / 10}%)`,
);
for (const [pid, s] of perPid)
  console.log(
    `pid ${pid}: ${s.n} pauses, ${Math.round(s.ms * 10) / 10} ms, longest ${Math.round(s.longest * 100) / 100} ms; slow tasks that met one: ${byPid.get(pid) ?? 0}`,
  );
console.log('slowest 10 (ms, pauses met as pid:ms):');
for (const x of slow.slice(-10))
  console.log(
    `  ${ms(x.lat)}  ${met(x)
      .map((p) => `${p.pid}:${ms(p.end - p.start)}`)
      .join(' ')}`,
  );
