// `npm run bench:ledger`: what a home ledger's retained tasks cost, in one
// process, deterministically (no sockets, no clock in the ledger).
//
// A Ledger with the default retention (100,000 terminal tasks) applies
// --tasks no-op tasks (default 300,000) as the root of `npm run bench` sees
// them: specs decoded from SubmitBatch messages of 50, each dispatched and
// completed with a result decoded from its own message. Reported: the heap
// after a full GC per retained task and the external memory, the CPU per task
// of the whole loop (the script's own encoding and decoding included, the same
// on both sides), the GC pauses it took (scavenges; mark-compacts: count,
// total, longest), the snapshot's time and size, a restore's time, and a
// scan of every task as ListTasks makes it and 1,000 Gets of finished tasks.
//
// `--base=REF` runs the same with the src/ of git REF (e.g. main) in the same
// run, alternated with this tree's `--rounds` times (default 2), each run in a
// fresh child process started with --expose-gc.
// Writes bench/results/ledger-heap-<timestamp>.json and .txt.
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { constants, PerformanceObserver } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { implsFor, runChild } from './lib/base-src.js';
import { writeResults } from './lib/results.js';
import { renderTable, type Cell } from './lib/table.js';

const arg = (name: string): string | undefined =>
  process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.join(here, '..');

interface Figures {
  impl: string;
  tasks: number;
  retained: number;
  heapMiB: number;
  heapBytesPerTask: number;
  externalMiB: number;
  cpuUsPerTask: number;
  scavenges: number;
  scavengeMs: number;
  markCompacts: number;
  markCompactMs: number;
  longestPauseMs: number;
  snapshotMs: number;
  snapshotMiB: number;
  restoreMs: number;
  scanMs: number;
  get1kMs: number;
}

if (process.argv.includes('--child')) await child();
else parent();

function parent(): void {
  const base = arg('base');
  const rounds = Number(arg('rounds') ?? 2);
  const impls = implsFor(repo, base);
  const load0 = os.loadavg()[0]!;
  const rows: Figures[] = [];
  for (let r = 0; r < rounds; r++) {
    for (const [name, src] of impls) {
      const args = process.argv.slice(2).filter((a) => !a.startsWith('--base') && !a.startsWith('--rounds'));
      const f = runChild<Figures>(fileURLToPath(import.meta.url), [`--src=${src}`, `--impl=${name}`, ...args], name, [
        '--expose-gc',
      ]);
      rows.push(f);
      process.stdout.write(`${name}: ${f.heapBytesPerTask} B/task, ${f.cpuUsPerTask.toFixed(2)} µs/task\n`);
    }
  }
  const load1 = os.loadavg()[0]!;
  const header = [
    'impl',
    'retained',
    'heap MiB',
    'B/task',
    'external MiB',
    'CPU µs/task',
    'scavenges (ms)',
    'mark-compacts (ms)',
    'longest pause ms',
    'snapshot ms (MiB)',
    'restore ms',
    'scan ms',
    '1k Gets ms',
  ];
  const table: Cell[][] = rows.map((f) => [
    f.impl,
    f.retained,
    f.heapMiB.toFixed(1),
    f.heapBytesPerTask,
    f.externalMiB.toFixed(1),
    f.cpuUsPerTask.toFixed(2),
    `${f.scavenges} (${f.scavengeMs.toFixed(0)})`,
    `${f.markCompacts} (${f.markCompactMs.toFixed(0)})`,
    f.longestPauseMs.toFixed(1),
    `${f.snapshotMs.toFixed(0)} (${f.snapshotMiB.toFixed(1)})`,
    f.restoreMs.toFixed(0),
    f.scanMs.toFixed(0),
    f.get1kMs.toFixed(1),
  ]);
  const text = `${renderTable(header, table)}\nload average ${load0.toFixed(2)} → ${load1.toFixed(2)} (1 min), ${os.cpus().length} cpus\n`;
  process.stdout.write(`\n${text}`);
  const file = writeResults('ledger-heap', { base: base ?? null, rows, loadavg: [load0, load1] });
  writeFileSync(file.replace(/\.json$/, '.txt'), text);
  process.stdout.write(`${file}\n`);
}

async function child(): Promise<void> {
  const src = arg('src')!;
  const tasks = Number(arg('tasks') ?? 300_000);
  const retention = Number(arg('retention') ?? 100_000);
  const imp = (p: string): Promise<Record<string, unknown>> =>
    import(pathToFileURL(path.join(src, p)).href) as Promise<Record<string, unknown>>;
  /* eslint-disable @typescript-eslint/no-explicit-any -- both trees' modules, typed loosely */
  const { Ledger } = (await imp('mesh/ledger.ts')) as any;
  const { TaskSpec, TaskResult, SubmitBatchRequest, Durability, ResultStatus } = (await imp(
    'gen/meshlb/v1/task.ts',
  )) as any;
  /* eslint-enable @typescript-eslint/no-explicit-any */
  const gc = (globalThis as { gc?: () => void }).gc!;
  const pauses = { scavenges: 0, scavengeMs: 0, markCompacts: 0, markCompactMs: 0, longest: 0 };
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      const kind = (e as { detail?: { kind?: number } }).detail?.kind ?? 0;
      if (kind === constants.NODE_PERFORMANCE_GC_MINOR) {
        pauses.scavenges++;
        pauses.scavengeMs += e.duration;
      } else if (kind === constants.NODE_PERFORMANCE_GC_MAJOR) {
        pauses.markCompacts++;
        pauses.markCompactMs += e.duration;
      }
      pauses.longest = Math.max(pauses.longest, e.duration);
    }
  });
  const ledger = new Ledger({ retention, defaultMaxAttempts: 3 });
  const batch = 50;
  const spec = TaskSpec.fromPartial({
    kind: 'bench',
    payload: Buffer.alloc(8),
    durability: Durability.DURABILITY_NONE,
  });
  const batchBytes = SubmitBatchRequest.encode({ tasks: Array.from({ length: batch }, () => spec) }).finish();
  gc();
  const heap0 = process.memoryUsage();
  obs.observe({ entryTypes: ['gc'] });
  const cpu0 = process.cpuUsage();
  let seq = 0;
  for (let i = 0; i < tasks; i += batch) {
    const specs = SubmitBatchRequest.decode(batchBytes).tasks as unknown[];
    const accepted = specs.map((s) => ({
      id: `bench0${(++seq).toString(36).padStart(6, '0')}`,
      spec: s,
      homeCell: '/',
      atMs: i,
    }));
    ledger.apply({ type: 'accepted', tasks: accepted });
    ledger.apply({ type: 'dispatched', refs: accepted.map((t) => ({ id: t.id, attempt: 1 })), atMs: i + 1 });
    for (const t of accepted) {
      const result = TaskResult.encode(
        TaskResult.fromPartial({
          taskId: t.id,
          attempt: 1,
          status: ResultStatus.RESULT_STATUS_OK,
          agentId: `bench-${seq % 100}`,
          nodeCell: '/r/z/n',
          runMicros: 40,
        }),
      ).finish();
      ledger.apply({ type: 'completed', result: TaskResult.decode(result), atMs: i + 2 });
    }
    // A turn of the event loop now and then, as a server has, so GC entries reach the observer.
    if (i % 5000 === 0) await new Promise((r) => setImmediate(r));
  }
  const cpu = process.cpuUsage(cpu0);
  await new Promise((r) => setTimeout(r, 10)); // the observer's last entries
  obs.disconnect();
  gc();
  gc();
  const heap1 = process.memoryUsage();
  const retained = ledger.size as number;
  let t = performance.now();
  const snap = ledger.snapshot() as Uint8Array;
  const snapshotMs = performance.now() - t;
  t = performance.now();
  new Ledger({ retention, defaultMaxAttempts: 3 }).restore(snap);
  const restoreMs = performance.now() - t;
  t = performance.now();
  let done = 0;
  // What ListTasks walks: entries() where the ledger has it (a terminal task not decoded), else records().
  const scan = (ledger.entries ?? ledger.records).call(ledger) as Iterable<{ state: number }>;
  for (const rec of scan) if (rec.state === 4) done++;
  const scanMs = performance.now() - t;
  t = performance.now();
  for (let k = 0; k < 1000; k++) ledger.get(`bench0${(seq - k * 37).toString(36).padStart(6, '0')}`);
  const get1kMs = performance.now() - t;
  if (done !== retained) throw new Error(`${done} of ${retained} retained tasks completed`);
  const f: Figures = {
    impl: arg('impl') ?? src,
    tasks,
    retained,
    heapMiB: (heap1.heapUsed - heap0.heapUsed) / 2 ** 20,
    heapBytesPerTask: Math.round((heap1.heapUsed - heap0.heapUsed) / retained),
    externalMiB: (heap1.external - heap0.external) / 2 ** 20,
    cpuUsPerTask: (cpu.user + cpu.system) / tasks,
    scavenges: pauses.scavenges,
    scavengeMs: pauses.scavengeMs,
    markCompacts: pauses.markCompacts,
    markCompactMs: pauses.markCompactMs,
    longestPauseMs: pauses.longest,
    snapshotMs,
    snapshotMiB: snap.length / 2 ** 20,
    restoreMs,
    scanMs,
    get1kMs,
  };
  process.stdout.write(`${JSON.stringify(f)}\n`);
}
