// Driving a running bench mesh (cells, agents and this process as the
// client): full-rate throughput, paced submits, idle CPU. The figures come
// from the processes' reports (bench/mesh-proc.ts): results counted and timed
// by the home cell's ledger in `root`, CPU summed over every process.
import { credentials, Metadata, type ServiceError } from '@grpc/grpc-js';
import {
  Durability,
  Priority,
  SubmitStreamRequest,
  SubmitStreamResponse,
  TaskServiceClient,
  TaskServiceService,
  type TaskSpec,
} from '../../src/gen/meshlb/v1/task.js';
import { H2Channel } from '../../src/util/grpc-h2-client.js';
import { nowUs, stampPayload } from './clock.js';
import type { LatencySummary } from './histogram.js';
import type { Proc, Report } from './proc.js';

export interface Mesh {
  /** Every cell process (all replicas of every cell). */
  readonly cells: Proc[];
  readonly agents: Proc;
  /** The home cell's process that the client submits to and whose ledger counts results: its leader. */
  readonly root: Proc;
  /** `root`'s address. */
  readonly address: string;
  stop(): Promise<void>;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
export const round = (x: number): number => Math.round(x * 100) / 100;

/** A no-op task stamped with the submit time; durability NONE unless told (UNSPECIFIED is LOGGED). */
export function spec(durability: Durability = Durability.DURABILITY_NONE): TaskSpec {
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
    durability,
    traceParent: '',
    traceState: '',
    contextKey: '',
    contextHard: false,
    concurrencyKey: '',
    rateLimitKey: '',
    rateUnits: 0,
    debounceKey: '',
    debouncePeriodMs: 0,
    debounceMaxWaitMs: 0,
    singletonKey: '',
    singletonMode: 0,
    slots: 0,
    gangId: '',
    gangSize: 0,
  };
}

export async function resetAll(m: Mesh): Promise<void> {
  await Promise.all([...m.cells, m.agents].map((p) => p.ask('reset')));
}

export interface MeshReport {
  root: Report;
  agents: Report;
  cpuUs: number;
  perCell: number[];
  /** Per cell process: CPU in the kernel (system time), µs. */
  perCellSystem: number[];
  /** Per cell process: stream messages its links and agent sessions wrote (since it started). */
  linkMessages: number[];
  /** Per cell process: of those, per lane ('up.results', 'down.dispatches', 'agent.assignments', ...). */
  laneMessages: Record<string, number>[];
  wakeups: number[];
  runQueueWaitUs: number[];
  creditStalls: Record<string, number>;
  /** Per cell process, then the agents: GC pauses since the reset. */
  stalls: unknown[];
  /** Per cell process: pumps, deferrals and messages written since it started (counters). */
  flow: Flow[];
  /** Per cell process (BENCH_FLUSH=1): its messages' waits in the batcher and writes since the reset. */
  flushes: unknown[];
}

/** Counters of a cell process (mesh-proc.ts `flow` and `batching`). */
interface Flow {
  pumps: number;
  dispatched: number;
  soon: number;
  next: number;
  quiet: number;
  messages: number;
  items: number;
}

/** Per cell process, per 1,000 tasks of a phase: how much each pump, deferral and message batched. */
export interface FlowPerTask {
  pumps: number;
  dispatchedPerPump: number;
  messages: number;
  itemsPerMessage: number;
  /** Deferrals run as microtasks, on the next turn, and quiet spells seen, per 1,000 tasks. */
  soon: number;
  next: number;
  quiet: number;
}

function flowOf(c: Report): Flow {
  const f = (c.flow ?? {}) as Partial<Flow>;
  const b = (c.batching ?? {}) as { messages?: number; items?: number };
  return {
    pumps: f.pumps ?? 0,
    dispatched: f.dispatched ?? 0,
    soon: f.soon ?? 0,
    next: f.next ?? 0,
    quiet: f.quiet ?? 0,
    messages: b.messages ?? 0,
    items: b.items ?? 0,
  };
}

/** Per cell, the flow counters between two reports: per 1,000 tasks, and per pump and message. */
export function flowPerTask(m: Mesh, a: MeshReport, b: MeshReport, tasks: number): Record<string, FlowPerTask> {
  const out: Record<string, FlowPerTask> = {};
  const n = Math.max(1, tasks) / 1000;
  m.cells.forEach((c, i) => {
    const x = a.flow[i]!;
    const y = b.flow[i]!;
    const pumps = y.pumps - x.pumps;
    const msgs = y.messages - x.messages;
    out[c.name] = {
      pumps: round(pumps / n),
      dispatchedPerPump: round((y.dispatched - x.dispatched) / Math.max(1, pumps)),
      messages: round(msgs / n),
      itemsPerMessage: round((y.items - x.items) / Math.max(1, msgs)),
      soon: round((y.soon - x.soon) / n),
      next: round((y.next - x.next) / n),
      quiet: round((y.quiet - x.quiet) / n),
    };
  });
  return out;
}

export async function reportAll(m: Mesh): Promise<MeshReport> {
  const cells = await Promise.all(m.cells.map((p) => p.report()));
  const agents = await m.agents.report();
  const creditStalls: Record<string, number> = {};
  for (const c of cells) Object.assign(creditStalls, c.creditStalls as Record<string, number>);
  return {
    root: cells[m.cells.indexOf(m.root)]!,
    agents,
    cpuUs: cells.reduce((s, c) => s + c.cpuUs, 0) + agents.cpuUs,
    perCell: cells.map((c) => c.cpuUs),
    perCellSystem: cells.map((c) => c.cpuSystemUs ?? 0),
    linkMessages: cells.map((c) => (c.batching as { messages: number } | undefined)?.messages ?? 0),
    laneMessages: cells.map((c) => {
      const byCell = (c.laneMessages ?? {}) as Record<string, Record<string, number>>;
      return Object.assign({}, ...Object.values(byCell)) as Record<string, number>;
    }),
    wakeups: [...cells.map((c) => c.wakeups), agents.wakeups],
    runQueueWaitUs: [...cells.map((c) => c.runQueueWaitUs), agents.runQueueWaitUs],
    creditStalls,
    stalls: [...cells.map((c) => c.stalls), agents.stalls],
    flow: cells.map(flowOf),
    flushes: cells.map((c) => c.flushes),
  };
}

export async function waitCount(p: Proc, n: number, maxMs: number): Promise<Report> {
  const by = Date.now() + maxMs;
  for (;;) {
    const r = await p.ask('count');
    if (r.count >= n || Date.now() > by) return p.report();
    await sleep(25);
  }
}

export interface Throughput {
  tasks: number;
  completed: number;
  seconds: number;
  tasksPerSecond: number;
  cpuUsPerTask: number;
  cpuUsPerTaskByProcess: Record<string, number>;
  rejectedBatches: number;
  itemsPerMessage: number;
  /** Per cell process: pumps, deferrals, messages per 1,000 tasks and what each batched. */
  flow: Record<string, FlowPerTask>;
}

export const NO_TP: Throughput = {
  tasks: 0,
  completed: 0,
  seconds: 0,
  tasksPerSecond: NaN,
  cpuUsPerTask: NaN,
  cpuUsPerTaskByProcess: {},
  rejectedBatches: 0,
  itemsPerMessage: NaN,
  flow: {},
};

/** Submit `n` tasks as fast as the root admits them; tasks/s from first submit to last result. */
export async function throughput(
  m: Mesh,
  n: number,
  maxMs: number,
  durability: Durability = Durability.DURABILITY_NONE,
): Promise<Throughput> {
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
        for (let i = 0; i < k; i++) tasks.push(spec(durability));
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
    flow: flowPerTask(m, before, after, done),
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

/** How a paced phase submits each millisecond's tasks (see paced()). */
export type PacedMode = 'stream' | 'batch' | 'stream-batch';

export interface Paced {
  rate: number;
  mode: PacedMode | '';
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
  /** Per cell process: link and agent-stream messages it wrote, per task. */
  messagesPerTask: Record<string, number>;
  /** Per cell process: those messages by lane, per task (what each carried: results, dispatches, acks, ...). */
  messagesPerTaskByLane: Record<string, Record<string, number>>;
  /** Per process: share of its CPU time spent in the kernel (syscalls, wakeups). */
  systemCpuShare: Record<string, number>;
  /** Per mesh process: GC pauses during the phase (mesh-proc.ts, `stalls`). */
  stalls: Record<string, unknown>;
  /** Per mesh process: bytes allocated on its V8 heap per task (mesh-proc.ts, `stalls.allocBytes`). */
  allocBytesPerTask: Record<string, number>;
  /** Per cell process: pumps, deferrals, messages per 1,000 tasks and what each batched. */
  flow: Record<string, FlowPerTask>;
  /** Per cell process (BENCH_FLUSH=1): per link kind, batcher wait and write time of its messages. */
  flushes: Record<string, unknown>;
}

export const NO_LAT: LatencySummary = {
  count: 0,
  p50Ms: NaN,
  p90Ms: NaN,
  p99Ms: NaN,
  p999Ms: NaN,
  maxMs: NaN,
  meanMs: NaN,
};

export const NO_PACED: Paced = {
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
  messagesPerTask: {},
  messagesPerTaskByLane: {},
  systemCpuShare: {},
  stalls: {},
  allocBytesPerTask: {},
  flow: {},
  flushes: {},
};

/**
 * `rate` tasks/s for `seconds`; when the next task is due (at most every
 * millisecond, as the timer allows) the tasks due by then are stamped and sent: with `stream`, one task per message
 * on one SubmitStream (a client submitting tasks one by one); with `batch`,
 * all of them in one SubmitBatch (a batching client at high rates: SubmitStream
 * answers every task with its own message, which at thousands per second
 * costs the client and the root more than the mesh's own work); with
 * `stream-batch`, all of them in one SubmitStream message (`tasks`), answered
 * in one (what the client SDK sends when submits pile up).
 */
export async function paced(
  m: Mesh,
  rate: number,
  seconds: number,
  mode: PacedMode,
  durability: Durability = Durability.DURABILITY_NONE,
): Promise<Paced> {
  const client = new TaskServiceClient(m.address, credentials.createInsecure());
  await resetAll(m);
  const before = await reportAll(m);
  const stalls0 = before.creditStalls;
  const cpu0 = process.cpuUsage();
  const n = Math.round(rate * seconds);
  let failed = 0;
  // BENCH_CLIENT_TRANSPORT=http2: the paced SubmitStream on the lean client (src/util/grpc-h2-client.ts, the
  // links' and agents' own) instead of grpc-js's: what a client would save on its side. Default grpc-js.
  const channel =
    process.env.BENCH_CLIENT_TRANSPORT === 'http2'
      ? new H2Channel({ address: m.address, maxMessageBytes: 4 << 20 })
      : undefined;
  const stream = channel
    ? channel.duplex(
        TaskServiceService.submitStream.path,
        (r: SubmitStreamRequest) => SubmitStreamRequest.encode(r).finish(),
        (b) => SubmitStreamResponse.decode(b),
      )
    : client.submitStream();
  stream.on('data', (r: { item?: { code: number }; items: { code: number }[] }) => {
    if (r.item && r.item.code !== 0) failed++;
    for (const it of r.items) if (it.code !== 0) failed++;
  });
  stream.on('error', () => undefined);
  const start = nowUs();
  let sent = 0;
  let calls = 0;
  await new Promise<void>((resolve) => {
    const tick = (): void => {
      const due = Math.min(n, Math.floor(((nowUs() - start) / 1e6) * rate));
      if (mode === 'stream') while (sent < due) stream.write({ requestId: sent++, task: spec(durability), tasks: [] });
      else if (mode === 'stream-batch' && due > sent) {
        const tasks: TaskSpec[] = [];
        for (; sent < due; sent++) tasks.push(spec(durability));
        stream.write({ requestId: calls++, task: undefined, tasks });
      } else if (due > sent) {
        const tasks: TaskSpec[] = [];
        while (sent < due) {
          tasks.push(spec(durability));
          sent++;
        }
        calls++;
        client.submitBatch({ tasks }, new Metadata(), (err: ServiceError | null) => {
          if (err) failed += tasks.length;
        });
      }
      // Sleep until the next task is due (at least a millisecond): a client polling every millisecond
      // whatever the rate would cost more per task at 100/s than the mesh does.
      if (sent >= n) resolve();
      else setTimeout(tick, Math.max(1, Math.ceil((start + ((sent + 1) / rate) * 1e6 - nowUs()) / 1000)));
    };
    tick();
  });
  const root = await waitCount(m.root, n, 15_000);
  stream.end();
  const agents = await m.agents.report();
  const after = await reportAll(m);
  const c = process.cpuUsage(cpu0);
  client.close();
  channel?.close();
  const names = [...m.cells.map((c) => c.name), 'agents'];
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
      names.map((name, i) => [name, round(after.wakeups[i]! / Math.max(1, root.count))]),
    ),
    runQueueWaitShare: Object.fromEntries(
      names.map((name, i) => [name, round(after.runQueueWaitUs[i]! / Math.max(1, after.root.wallUs))]),
    ),
    messagesPerTask: Object.fromEntries(
      m.cells.map((p, i) => [
        p.name,
        round((after.linkMessages[i]! - before.linkMessages[i]!) / Math.max(1, root.count)),
      ]),
    ),
    messagesPerTaskByLane: Object.fromEntries(
      m.cells.map((p, i) => {
        const a = after.laneMessages[i]!;
        const b = before.laneMessages[i]!;
        const per = Object.entries(a).map(([k, v]) => [k, round((v - (b[k] ?? 0)) / Math.max(1, root.count))] as const);
        return [p.name, Object.fromEntries(per.filter(([, v]) => v > 0))];
      }),
    ),
    stalls: Object.fromEntries(names.map((name, i) => [name, after.stalls[i]])),
    allocBytesPerTask: Object.fromEntries(
      names.map((name, i) => [
        name,
        Math.round(((after.stalls[i] as { allocBytes?: number }).allocBytes ?? 0) / Math.max(1, root.count)),
      ]),
    ),
    flow: flowPerTask(m, before, after, root.count),
    flushes: Object.fromEntries(m.cells.map((p, i) => [p.name, after.flushes[i]])),
    systemCpuShare: Object.fromEntries([
      ...m.cells.map((p, i) => [p.name, round(after.perCellSystem[i]! / Math.max(1, after.perCell[i]!))]),
      ['agents', round((after.agents.cpuSystemUs ?? 0) / Math.max(1, after.agents.cpuUs))],
      ['client', round(c.system / Math.max(1, c.user + c.system))],
    ]),
  };
}

/** CPU each process burns with no tasks (timers, heartbeats, summaries), µs per second of wall time. */
export async function idleCpu(m: Mesh, ms: number): Promise<Record<string, number>> {
  await resetAll(m);
  const before = await reportAll(m);
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
    // The messages it wrote per second, by lane (summaries up, keepalives down, heartbeats to agents, ...).
    for (const [lane, v] of Object.entries(r.laneMessages[i]!)) {
      const per = (v - (before.laneMessages[i]![lane] ?? 0)) / s;
      if (per > 0) out[`${c.name} ${lane}/s`] = round(per);
    }
  });
  return out;
}
