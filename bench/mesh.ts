// `npm run bench`: the mesh against the transport's limit, in one run.
//
//   (a) baseline: a bare grpc-js bidi echo between two processes (bench/echo.ts),
//       unbatched and 100 items per message;
//   (b) end-to-end tasks/s through four tiers (global → region → zone → node,
//       one replica each), durability NONE, no-op agents: every cell its own OS
//       process (as `meshlb serve` runs them), plus an agents process, with this
//       process as the client (SubmitBatch, several batches in flight); then
//       the same with the four cells in one process;
//   (c) paced 500 tasks/s (SubmitStream, one task per message): submit-to-result
//       latency, the result as recorded by the home ledger;
//   (d) dispatch latency (submit to agent start, measured in the agents process)
//       at half of the peak measured in (b), the tasks due each millisecond in
//       one SubmitBatch;
//   (e) 5,000 agent streams from one agent-sim process (the agent SDK) against
//       one node replica process: the node's RSS.
//
// Every process stamps times with process.hrtime (CLOCK_MONOTONIC, one clock
// for the host); the submit time travels in the task payload. CPU time per
// task is the sum of process.cpuUsage over the mesh, agents and client
// processes: it is the figure to compare across runs on a loaded machine.
//
// Bounded: every phase stops by count or by time; the whole run takes about
// two minutes. Writes bench/results/mesh-<timestamp>.json and prints a table.
import { fork, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { credentials, Metadata, type ServiceError } from '@grpc/grpc-js';
import { Durability, Priority, TaskServiceClient, type TaskSpec } from '../src/gen/meshlb/v1/task.js';
import { runEcho, type EchoResult } from './echo.js';
import { nowUs, stampPayload } from './lib/clock.js';
import type { LatencySummary } from './lib/histogram.js';
import { writeResults } from './lib/results.js';
import { renderTable, type Cell } from './lib/table.js';
import { chainTopologyYaml } from '../src/topology/chain.js';

const QUICK = process.argv.includes('--quick');
/**
 * --only=echo,multi,paced,paced500,single,pacedsingle,agents runs a subset (for profiling; paced500 = the 500/s
 * phase alone; pacedsingle = 500/s against the four cells in one process, a diagnostic); the table then has gaps.
 */
const ONLY = process.argv
  .find((a) => a.startsWith('--only='))
  ?.slice(7)
  .split(',');
const runs = (phase: string): boolean => !ONLY || ONLY.includes(phase);
/** --half-rate=N: the rate of phase (d) when (b) did not run (--only=paced); default half of (b)'s peak, else 1000. */
const HALF_RATE = Number(process.argv.find((a) => a.startsWith('--half-rate='))?.slice(12) ?? 0);
const PROC = fileURLToPath(new URL('./mesh-proc.ts', import.meta.url));
const log = (s: string): void => void process.stderr.write(`[bench] ${s}\n`);

const TOPOLOGY = chainTopologyYaml({
  name: 'bench-chain',
  nodes: ['n'],
  basePort: 7600,
  defaults: { summaryIntervalMs: 150, heartbeatTimeoutMs: 3000 },
  regionLabels: { location: 'eu-west' },
});
const CHAIN = ['/', '/r', '/r/z', '/r/z/n'];
const AGENTS = 100;
const SLOTS = 16;

interface Report {
  type: 'report';
  count: number;
  latency: LatencySummary;
  cpuUs: number;
  wakeups: number;
  runQueueWaitUs: number;
  wallUs: number;
  lastUs: number;
  [k: string]: unknown;
}

/** What a bench child process sends over IPC (bench/mesh-proc.ts): JSON, read field by field. */
interface ProcMessage {
  readonly type?: string;
  readonly addresses: Record<string, string>;
  readonly count: number;
}

class Proc {
  private readonly waiters: ((m: ProcMessage) => void)[] = [];
  readonly exited: Promise<number | null>;
  constructor(
    readonly name: string,
    readonly child: ChildProcess,
  ) {
    child.on('message', (m) => {
      const i = this.waiters.findIndex(() => true);
      if (i >= 0) this.waiters.splice(i, 1)[0]!(m as ProcMessage);
    });
    this.exited = new Promise((res) => child.on('exit', (code) => res(code)));
  }

  static start(name: string, args: string[]): Promise<[Proc, ProcMessage]> {
    const child = fork(PROC, args, {
      execArgv: [
        '--import',
        'tsx',
        ...(process.env.BENCH_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROF}`] : []),
        ...(process.env.BENCH_TRACE_GC ? ['--trace-gc'] : []),
        // Extra V8/node flags for the mesh processes, e.g. BENCH_NODE_FLAGS=--max-semi-space-size=32
        ...(process.env.BENCH_NODE_FLAGS ? process.env.BENCH_NODE_FLAGS.split(' ').filter(Boolean) : []),
      ],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      env: { ...process.env, MESHLB_LOG_LEVEL: process.env.MESHLB_LOG_LEVEL ?? 'warn' },
    });
    const p = new Proc(name, child);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`${name} did not start in 60 s`)), 60_000);
      p.next().then((m) => {
        clearTimeout(t);
        resolve([p, m]);
      });
      void p.exited.then((code) => reject(new Error(`${name} exited ${code} before ready`)));
    });
  }

  private next(): Promise<ProcMessage> {
    return new Promise((res) => this.waiters.push(res));
  }

  async ask(cmd: 'reset' | 'report' | 'count'): Promise<ProcMessage> {
    const r = this.next();
    this.child.send({ cmd });
    return r;
  }

  report(): Promise<Report> {
    return this.ask('report') as unknown as Promise<Report>;
  }

  get pid(): number {
    return this.child.pid!;
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    this.child.disconnect();
    const t = setTimeout(() => this.child.kill('SIGKILL'), 3000);
    await this.exited;
    clearTimeout(t);
  }
}

interface Mesh {
  readonly cells: Proc[];
  readonly agents: Proc;
  readonly root: Proc;
  readonly address: string;
  stop(): Promise<void>;
}

async function startMesh(mode: 'multi' | 'single'): Promise<Mesh> {
  const cells: Proc[] = [];
  let rootAddr = '';
  let nodeAddr: string;
  if (mode === 'multi') {
    let parent = '';
    for (const path of CHAIN) {
      const [p, m] = await Proc.start(`cell ${path}`, ['cells', TOPOLOGY, parent ? `${path}=${parent}` : path]);
      cells.push(p);
      parent = m.addresses[path] ?? '';
      if (path === '/') rootAddr = parent;
    }
    nodeAddr = parent;
  } else {
    const [p, m] = await Proc.start('cells (one process)', ['cells', TOPOLOGY, ...CHAIN]);
    cells.push(p);
    rootAddr = m.addresses['/'] ?? '';
    nodeAddr = m.addresses['/r/z/n'] ?? '';
  }
  const [agents] = await Proc.start('agents', ['agents', nodeAddr, String(AGENTS), String(SLOTS)]);
  const root = cells[0]!;
  // Linked and credited: the root sees the agents' slots through three summaries.
  const by = Date.now() + 30_000;
  for (;;) {
    const r = await root.report();
    if ((r.rootFree as number) >= AGENTS * SLOTS) break;
    if (Date.now() > by) throw new Error(`mesh not ready: root sees ${String(r.rootFree)} free slots`);
    await sleep(50);
  }
  return {
    cells,
    agents,
    root,
    address: rootAddr,
    async stop() {
      await agents.stop();
      for (const c of [...cells].reverse()) await c.stop();
    },
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function spec(): TaskSpec {
  return {
    idempotencyKey: '',
    kind: 'bench',
    labels: [],
    affinity: [],
    priority: Priority.PRIORITY_NORMAL,
    tenant: '',
    deadlineUnixMs: 0,
    timeoutMs: 0,
    maxAttempts: 0,
    payload: stampPayload(nowUs()),
    durability: Durability.DURABILITY_NONE,
  };
}

async function resetAll(m: Mesh): Promise<void> {
  await Promise.all([...m.cells, m.agents].map((p) => p.ask('reset')));
}

async function reportAll(m: Mesh): Promise<{
  root: Report;
  agents: Report;
  cpuUs: number;
  perCell: number[];
  wakeups: number[];
  runQueueWaitUs: number[];
  creditStalls: Record<string, number>;
}> {
  const cells = await Promise.all(m.cells.map((p) => p.report()));
  const agents = await m.agents.report();
  const creditStalls: Record<string, number> = {};
  for (const c of cells) Object.assign(creditStalls, c.creditStalls as Record<string, number>);
  return {
    root: cells[0]!,
    agents,
    cpuUs: cells.reduce((s, c) => s + c.cpuUs, 0) + agents.cpuUs,
    perCell: cells.map((c) => c.cpuUs),
    wakeups: [...cells.map((c) => c.wakeups), agents.wakeups],
    runQueueWaitUs: [...cells.map((c) => c.runQueueWaitUs), agents.runQueueWaitUs],
    creditStalls,
  };
}

async function waitCount(p: Proc, n: number, maxMs: number): Promise<Report> {
  const by = Date.now() + maxMs;
  for (;;) {
    const r = await p.ask('count');
    if (r.count >= n || Date.now() > by) return p.report();
    await sleep(25);
  }
}

interface Throughput {
  tasks: number;
  completed: number;
  seconds: number;
  tasksPerSecond: number;
  cpuUsPerTask: number;
  cpuUsPerTaskByProcess: Record<string, number>;
  rejectedBatches: number;
  itemsPerMessage: number;
}

/** Submit `n` tasks as fast as the root admits them; tasks/s from first submit to last result. */
async function throughput(m: Mesh, n: number, maxMs: number): Promise<Throughput> {
  const client = new TaskServiceClient(m.address, credentials.createInsecure());
  await resetAll(m);
  const before = await reportAll(m);
  const batchMsgs0 = sumBatching(before);
  const cpu0 = process.cpuUsage();
  const startUs = nowUs();
  const batch = 500;
  const window = 8;
  let next = 0;
  let inFlight = 0;
  let rejected = 0;
  const deadline = Date.now() + maxMs;
  await new Promise<void>((resolve) => {
    const pump = (): void => {
      while (next < n && inFlight < window && Date.now() < deadline) {
        const k = Math.min(batch, n - next);
        next += k;
        inFlight++;
        const tasks: TaskSpec[] = [];
        for (let i = 0; i < k; i++) tasks.push(spec());
        client.submitBatch({ tasks }, new Metadata(), (err: ServiceError | null) => {
          inFlight--;
          if (err) {
            rejected++;
            next -= k; // saturated (RESOURCE_EXHAUSTED): resubmit later
            setTimeout(pump, 20);
            return;
          }
          pump();
        });
      }
      if ((next >= n || Date.now() >= deadline) && inFlight === 0) resolve();
    };
    pump();
  });
  const submitted = next;
  const r = await waitCount(m.root, submitted, Math.max(1000, deadline - Date.now() + 5000));
  const cpuClient = process.cpuUsage(cpu0);
  const after = await reportAll(m);
  client.close();
  const seconds = ((r.lastUs || nowUs()) - startUs) / 1e6;
  const clientUs = cpuClient.user + cpuClient.system;
  const total = after.cpuUs + clientUs;
  const done = Math.max(1, r.count);
  const byProc = byProcess(m, after, clientUs, done);
  const b = sumBatching(after);
  return {
    tasks: submitted,
    completed: r.count,
    seconds: round(seconds),
    tasksPerSecond: Math.round(r.count / seconds),
    cpuUsPerTask: round(total / done),
    cpuUsPerTaskByProcess: byProc,
    rejectedBatches: rejected,
    itemsPerMessage: round((b.items - batchMsgs0.items) / Math.max(1, b.messages - batchMsgs0.messages)),
  };
}

function byProcess(
  m: Mesh,
  r: { agents: Report; perCell: number[] },
  clientUs: number,
  tasks: number,
): Record<string, number> {
  const out: Record<string, number> = { client: round(clientUs / tasks), agents: round(r.agents.cpuUs / tasks) };
  m.cells.forEach((c, i) => (out[c.name] = round(r.perCell[i]! / tasks)));
  return out;
}

function sumBatching(r: { root: Report; agents: Report }): { messages: number; items: number } {
  const x = r.root.batching as { messages: number; items: number } | undefined;
  return x ?? { messages: 0, items: 0 };
}

interface Paced {
  rate: number;
  mode: 'stream' | 'batch' | '';
  tasksPerCall: number;
  tasks: number;
  completed: number;
  refused: number;
  submitToResult: LatencySummary;
  dispatch: LatencySummary;
  cpuUsPerTask: number;
  cpuUsPerTaskByProcess: Record<string, number>;
  /** Pumps per cell that left tasks queued for want of credit during the phase. */
  creditStalls: Record<string, number>;
  /** Times each process's event loop slept and was woken, per task. */
  wakeupsPerTask: Record<string, number>;
  /** Per process: share of the phase's wall time its main thread was runnable but waiting for a CPU (other load). */
  runQueueWaitShare: Record<string, number>;
}

/**
 * `rate` tasks/s for `seconds`; every millisecond (as the timer allows) the
 * tasks due by then are stamped and sent: with `stream`, one task per message
 * on one SubmitStream (a client submitting tasks one by one); with `batch`,
 * all of them in one SubmitBatch (a batching client at high rates: SubmitStream
 * answers every task with its own message, which at thousands per second
 * costs the client and the root more than the mesh's own work).
 */
async function paced(m: Mesh, rate: number, seconds: number, mode: 'stream' | 'batch'): Promise<Paced> {
  const client = new TaskServiceClient(m.address, credentials.createInsecure());
  await resetAll(m);
  const stalls0 = (await reportAll(m)).creditStalls;
  const cpu0 = process.cpuUsage();
  const n = Math.round(rate * seconds);
  let failed = 0;
  const stream = client.submitStream();
  stream.on('data', (r: { item?: { code: number } }) => {
    if (r.item && r.item.code !== 0) failed++;
  });
  stream.on('error', () => undefined);
  const start = nowUs();
  let sent = 0;
  let calls = 0;
  await new Promise<void>((resolve) => {
    const tick = (): void => {
      const due = Math.min(n, Math.floor(((nowUs() - start) / 1e6) * rate));
      if (mode === 'stream') while (sent < due) stream.write({ requestId: sent++, task: spec() });
      else if (due > sent) {
        const tasks: TaskSpec[] = [];
        while (sent < due) {
          tasks.push(spec());
          sent++;
        }
        calls++;
        client.submitBatch({ tasks }, new Metadata(), (err: ServiceError | null) => {
          if (err) failed += tasks.length;
        });
      }
      if (sent >= n) resolve();
      else setTimeout(tick, 1);
    };
    tick();
  });
  const root = await waitCount(m.root, n, 15_000);
  stream.end();
  const agents = await m.agents.report();
  const after = await reportAll(m);
  const c = process.cpuUsage(cpu0);
  client.close();
  return {
    rate,
    mode,
    tasksPerCall: mode === 'stream' ? 1 : round(n / Math.max(1, calls)),
    tasks: n,
    completed: root.count,
    refused: failed,
    submitToResult: root.latency,
    dispatch: agents.latency,
    cpuUsPerTask: round((after.cpuUs + c.user + c.system) / Math.max(1, root.count)),
    cpuUsPerTaskByProcess: byProcess(m, after, c.user + c.system, Math.max(1, root.count)),
    creditStalls: Object.fromEntries(Object.entries(after.creditStalls).map(([k, v]) => [k, v - (stalls0[k] ?? 0)])),
    wakeupsPerTask: Object.fromEntries(
      [...m.cells.map((c) => c.name), 'agents'].map((name, i) => [
        name,
        round(after.wakeups[i]! / Math.max(1, root.count)),
      ]),
    ),
    runQueueWaitShare: Object.fromEntries(
      [...m.cells.map((c) => c.name), 'agents'].map((name, i) => [
        name,
        round(after.runQueueWaitUs[i]! / Math.max(1, after.root.wallUs)),
      ]),
    ),
  };
}

/** CPU each process burns with no tasks (timers, heartbeats, summaries), µs per second of wall time. */
async function idleCpu(m: Mesh, ms: number): Promise<Record<string, number>> {
  await resetAll(m);
  const t0 = nowUs();
  await sleep(ms);
  const r = await reportAll(m);
  const s = (nowUs() - t0) / 1e6;
  const out: Record<string, number> = {
    agents: Math.round(r.agents.cpuUs / s),
    'agents wakeups/s': Math.round(r.agents.wakeups / s),
  };
  m.cells.forEach((c, i) => {
    out[c.name] = Math.round(r.perCell[i]! / s);
    out[`${c.name} wakeups/s`] = Math.round(r.wakeups[i]! / s);
  });
  return out;
}

function vmRssMiB(pid: number): number {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /VmRSS:\s+(\d+) kB/.exec(s);
  return m ? round(Number(m[1]) / 1024) : NaN;
}

async function manyAgents(
  n: number,
): Promise<{ agents: number; connected: number; nodeRssMiB: number; nodeRssBeforeMiB: number; seconds: number }> {
  const [node, m] = await Proc.start('node cell', ['cells', TOPOLOGY, '/r/z/n']);
  const rss0 = vmRssMiB(node.pid);
  const t0 = Date.now();
  const [sim] = await Proc.start('agent-sim', ['agentsim', m.addresses['/r/z/n'] ?? '', String(n)]);
  let connected: number;
  try {
    const by = Date.now() + 60_000;
    for (;;) {
      connected = ((await node.report()).agentsConnected as number) ?? 0;
      if (connected >= n || Date.now() > by) break;
      await sleep(200);
    }
    const seconds = (Date.now() - t0) / 1000;
    // Two heartbeat rounds with every stream up.
    await sleep(2500);
    connected = ((await node.report()).agentsConnected as number) ?? 0;
    return { agents: n, connected, nodeRssMiB: vmRssMiB(node.pid), nodeRssBeforeMiB: rss0, seconds: round(seconds) };
  } finally {
    await sim.stop();
    await node.stop();
  }
}

const round = (x: number): number => Math.round(x * 100) / 100;

const NO_LAT: LatencySummary = { count: 0, p50Ms: NaN, p90Ms: NaN, p99Ms: NaN, maxMs: NaN, meanMs: NaN };
const NO_ECHO_RESULT: EchoResult = { itemsPerMessage: 1, items: 0, seconds: 0, roundTripsPerSecond: NaN };
const NO_ECHO = { unbatched: NO_ECHO_RESULT, batched: NO_ECHO_RESULT };
const NO_TP: Throughput = {
  tasks: 0,
  completed: 0,
  seconds: 0,
  tasksPerSecond: NaN,
  cpuUsPerTask: NaN,
  cpuUsPerTaskByProcess: {},
  rejectedBatches: 0,
  itemsPerMessage: NaN,
};
const NO_PACED: Paced = {
  rate: 0,
  mode: '',
  tasksPerCall: 0,
  tasks: 0,
  completed: 0,
  refused: 0,
  submitToResult: NO_LAT,
  dispatch: NO_LAT,
  cpuUsPerTask: NaN,
  cpuUsPerTaskByProcess: {},
  creditStalls: {},
  wakeupsPerTask: {},
  runQueueWaitShare: {},
};

async function main(): Promise<void> {
  const t0 = Date.now();
  const load0 = os.loadavg();
  log(`load average ${load0.map((x) => x.toFixed(2)).join(' ')} on ${os.cpus().length} cpus`);

  const echo = runs('echo')
    ? (log('(a) echo baseline'), await runEcho({ items: QUICK ? 50_000 : 200_000, maxMs: 10_000 }))
    : NO_ECHO;
  log(
    `echo: ${Math.round(echo.unbatched.roundTripsPerSecond)} rt/s unbatched, ${Math.round(echo.batched.roundTripsPerSecond)} batched`,
  );

  const N = QUICK ? 20_000 : 60_000;
  let multiTp = NO_TP;
  let pacedLow = NO_PACED;
  let pacedHalf = NO_PACED;
  let idle: Record<string, number> = {};
  if (runs('multi') || runs('paced') || runs('paced500')) {
    log('(b) four tiers, one process per cell');
    const multi = await startMesh('multi');
    try {
      await throughput(multi, 5_000, 10_000); // warm-up (JIT, connections)
      if (runs('multi')) {
        multiTp = await throughput(multi, N, 20_000);
        log(`multi-process: ${multiTp.tasksPerSecond} tasks/s, ${multiTp.cpuUsPerTask} µs CPU/task`);
      }
      if (runs('paced') || runs('paced500')) {
        idle = await idleCpu(multi, 2000);
        log(`idle CPU (µs per second of wall time): ${JSON.stringify(idle)}`);
        log('(c) paced 500 tasks/s');
        pacedLow = await paced(multi, 500, QUICK ? 3 : 6, 'stream');
        log(
          `paced 500/s: p50 ${pacedLow.submitToResult.p50Ms} p99 ${pacedLow.submitToResult.p99Ms} ms, dispatch p99 ${pacedLow.dispatch.p99Ms} ms, ${pacedLow.cpuUsPerTask} µs CPU/task ${JSON.stringify(pacedLow.cpuUsPerTaskByProcess)}, credit stalls ${JSON.stringify(pacedLow.creditStalls)}, wakeups/task ${JSON.stringify(pacedLow.wakeupsPerTask)}, waiting for CPU ${JSON.stringify(pacedLow.runQueueWaitShare)}`,
        );
      }
      if (runs('paced')) {
        const half = HALF_RATE || Math.max(100, Math.round((multiTp.tasksPerSecond || 2000) / 2));
        log(`(d) paced ${half} tasks/s (half of peak)`);
        pacedHalf = await paced(multi, half, QUICK ? 3 : 5, 'batch');
        log(
          `dispatch at ${half}/s: p50 ${pacedHalf.dispatch.p50Ms} p99 ${pacedHalf.dispatch.p99Ms} ms, ${pacedHalf.cpuUsPerTask} µs CPU/task ${JSON.stringify(pacedHalf.cpuUsPerTaskByProcess)}, credit stalls ${JSON.stringify(pacedHalf.creditStalls)}, wakeups/task ${JSON.stringify(pacedHalf.wakeupsPerTask)}, waiting for CPU ${JSON.stringify(pacedHalf.runQueueWaitShare)}`,
        );
      }
    } finally {
      await multi.stop();
    }
  }

  let singleTp = NO_TP;
  let pacedSingle = NO_PACED;
  if (runs('single') || runs('pacedsingle')) {
    log('(b2) four tiers in one process');
    const single = await startMesh('single');
    try {
      await throughput(single, 5_000, 10_000);
      singleTp = await throughput(single, N, 20_000);
      log(`one process: ${singleTp.tasksPerSecond} tasks/s, ${singleTp.cpuUsPerTask} µs CPU/task`);
      if (runs('pacedsingle')) {
        // Diagnostic: the same paced load with no process boundary between the tiers.
        pacedSingle = await paced(single, 500, QUICK ? 3 : 6, 'stream');
        log(
          `paced 500/s, cells in one process: p50 ${pacedSingle.submitToResult.p50Ms} p99 ${pacedSingle.submitToResult.p99Ms} ms, dispatch p99 ${pacedSingle.dispatch.p99Ms} ms, ${pacedSingle.cpuUsPerTask} µs CPU/task ${JSON.stringify(pacedSingle.cpuUsPerTaskByProcess)}, wakeups/task ${JSON.stringify(pacedSingle.wakeupsPerTask)}, waiting for CPU ${JSON.stringify(pacedSingle.runQueueWaitShare)}`,
        );
      }
    } finally {
      await single.stop();
    }
  }

  let many = { agents: 0, connected: 0, nodeRssMiB: NaN, nodeRssBeforeMiB: NaN, seconds: 0 };
  if (runs('agents')) {
    log('(e) 5,000 agent streams against one node replica');
    many = await manyAgents(QUICK ? 1000 : 5000);
    log(`node RSS ${many.nodeRssMiB} MiB with ${many.connected} agents`);
  }

  const echoRt = echo.unbatched.roundTripsPerSecond;
  const yes = (b: boolean): string => (b ? 'yes' : 'NO');
  const rows: Cell[][] = [
    ['echo round trips/s, 1 item/msg (baseline)', Math.round(echoRt), '-', '-', 1],
    [
      'echo round trips/s, 100 items/msg',
      Math.round(echo.batched.roundTripsPerSecond),
      '-',
      '-',
      round(echo.batched.roundTripsPerSecond / echoRt),
    ],
    [
      'tasks/s, 4 tiers, process per cell',
      multiTp.tasksPerSecond,
      '>= 10,000 and >= 25% echo',
      yes(multiTp.tasksPerSecond >= 10_000 && multiTp.tasksPerSecond >= 0.25 * echoRt),
      round(multiTp.tasksPerSecond / echoRt),
    ],
    ['  CPU µs per task (all processes)', multiTp.cpuUsPerTask, '-', '-', '-'],
    ['  items per link/agent message (root)', multiTp.itemsPerMessage, '-', '-', '-'],
    [
      'tasks/s, 4 tiers, one process',
      singleTp.tasksPerSecond,
      '(reference)',
      '-',
      round(singleTp.tasksPerSecond / echoRt),
    ],
    ['  CPU µs per task (all processes)', singleTp.cpuUsPerTask, '-', '-', '-'],
    ['paced 500/s submit→result p50 ms', pacedLow.submitToResult.p50Ms, '-', '-', '-'],
    [
      'paced 500/s submit→result p99 ms',
      pacedLow.submitToResult.p99Ms,
      '< 5',
      yes(pacedLow.submitToResult.p99Ms < 5),
      round(pacedLow.submitToResult.p99Ms / 5),
    ],
    ['paced 500/s dispatch p99 ms', pacedLow.dispatch.p99Ms, '-', '-', '-'],
    [`paced ${pacedHalf.rate}/s (half peak) dispatch p50 ms`, pacedHalf.dispatch.p50Ms, '-', '-', '-'],
    [
      `paced ${pacedHalf.rate}/s (half peak) dispatch p99 ms`,
      pacedHalf.dispatch.p99Ms,
      '< 10',
      yes(pacedHalf.dispatch.p99Ms < 10),
      round(pacedHalf.dispatch.p99Ms / 10),
    ],
    [`paced ${pacedHalf.rate}/s submit→result p99 ms`, pacedHalf.submitToResult.p99Ms, '-', '-', '-'],
    ['paced 500/s p99 ms, cells in one process (diagnostic)', pacedSingle.submitToResult.p99Ms, '-', '-', '-'],
    [
      `node RSS MiB, ${many.connected} agent streams`,
      many.nodeRssMiB,
      '< 500',
      yes(many.nodeRssMiB < 500 && many.connected >= many.agents),
      round(many.nodeRssMiB / 500),
    ],
  ];
  // A phase left out with --only has NaN figures: say "not run" rather than "NO".
  const shown = rows.map((r): Cell[] =>
    typeof r[1] === 'number' && Number.isNaN(r[1]) ? [r[0]!, 'not run', r[2]!, '-', '-'] : r,
  );
  const table = renderTable(['figure', 'value', 'target', 'met', 'ratio (echo / target)'], shown);
  const load1 = os.loadavg();
  const file = writeResults('mesh', {
    quick: QUICK,
    seconds: round((Date.now() - t0) / 1000),
    loadAverage: { before: load0, after: load1 },
    echo: { unbatched: echo.unbatched, batched: echo.batched } satisfies Record<string, EchoResult>,
    topology: 'chain / → /r → /r/z → /r/z/n, one replica each',
    agents: { count: AGENTS, slots: SLOTS, kind: 'no-op SimAgent, one connection' },
    throughputMultiProcess: multiTp,
    throughputOneProcess: singleTp,
    paced500: pacedLow,
    pacedHalfPeak: pacedHalf,
    paced500OneProcess: pacedSingle,
    idleCpuUsPerSecond: idle,
    manyAgents: many,
    ratios: {
      multiProcessToEcho: round(multiTp.tasksPerSecond / echoRt),
      oneProcessToEcho: round(singleTp.tasksPerSecond / echoRt),
    },
  });
  process.stdout.write(
    `\n${table}\n\nload average before ${load0.map((x) => x.toFixed(2)).join(' ')}, after ${load1.map((x) => x.toFixed(2)).join(' ')}; ${round((Date.now() - t0) / 1000)} s\n${file}\n`,
  );
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`bench failed: ${e instanceof Error ? e.stack : String(e)}\n`);
    process.exit(1);
  },
);
