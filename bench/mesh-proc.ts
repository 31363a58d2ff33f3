// The processes of `npm run bench` (bench/mesh.ts forks this file with IPC):
//
//   cells  TOPOLOGY_YAML PATH[#N][=PARENT_ADDR] ... [--data=DIR] [--topology-addresses]
//                                                 one Replica per path (replica N, default 1; port
//                                                 0), in order; a path whose parent runs in this
//                                                 process links to it directly. The root records,
//                                                 per finished task, submit-to-result latency from
//                                                 the submit time carried in the payload (every
//                                                 replica of a Raft root records what it applies;
//                                                 the bench asks the leader).
//                                                 --data=DIR: the replica's data directory (one
//                                                 replica per process then): its cell's ledger
//                                                 runs on Raft over the topology's replicas, on
//                                                 lmdb with fsync. --topology-addresses: bind at
//                                                 the topology's address, and link to the parent's
//                                                 replicas as the topology lists them.
//   agents NODE_ADDR AGENTS SLOTS                 no-op SimAgents on one connection (BENCH_AGENTS=sdk: the
//                                                 agent SDK on its transport, MESHLB_AGENT_TRANSPORT); each records
//                                                 dispatch latency (submit to agent start).
//   agentsim NODE_ADDR AGENTS                     the real agent SDK (as `meshlb agent-sim`).
//
// Times travel as process.hrtime (CLOCK_MONOTONIC, shared by every process on
// the host) in microseconds, a float64 at the start of the payload.
//
// IPC: the parent sends {cmd: 'reset'} and {cmd: 'report'}; this process
// answers {type: 'report', ...} with counts, a latency summary and the CPU it
// used since the reset. It exits when the IPC channel closes.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { constants, performance, PerformanceObserver } from 'node:perf_hooks';
import { Session } from 'node:inspector';
import { GCProfiler, getHeapSpaceStatistics, getHeapStatistics, writeHeapSnapshot } from 'node:v8';
import { credentials } from '@grpc/grpc-js';
import { AgentServiceClient } from '../src/gen/meshlb/v1/agent.js';
import type { Dispatch } from '../src/gen/meshlb/v1/task.js';
import { TaskState } from '../src/gen/meshlb/v1/task.js';
import { Replica } from '../src/mesh/replica.js';
import { realDeferCounts, realScheduler, type Scheduler } from '../src/mesh/scheduler.js';
import { cellHeapFlags } from '../src/util/heap-flags.js';
import { SimAgent } from '../src/dev/sim-agent.js';
import { parseTopology } from '../src/topology/parse.js';
import { nowUs, payloadTimeUs, Samples } from './lib/clock.js';
import { HopTrace, taskSeq } from './lib/hop-trace.js';
import { FlushProbe } from './lib/flush-probe.js';
import type { TracerFactory } from '../src/mesh/tracer.js';
import { LatencyHistogram } from './lib/histogram.js';

type Msg = { cmd: 'reset' } | { cmd: 'report' } | { cmd: 'count' };

function send(m: unknown): void {
  process.send?.(m);
}

let samples = new Samples();
let count = 0;
let cpu0 = process.cpuUsage();
let t0 = nowUs();
let lastUs = 0;
let extra: () => Record<string, unknown> = () => ({});
let wake0 = wakeups();
let wait0 = runQueueWaitUs();

/**
 * GC pauses of this process (V8's gc performance entries: young = scavenges, old = the rest, mark-compacts
 * counted; ms summed and the longest): what a task passing through waits for beside the CPU. No loop-delay
 * histogram: its timer would wake every process every few ms and change the wakeups measured.
 */
const gc = { youngMs: 0, oldMs: 0, longestMs: 0, old: 0, young: 0 };
/**
 * BENCH_GC_TAIL=DIR: each phase's GC pauses (start and length on nowUs's clock) and, at the root, each task's
 * submit time and latency, written to DIR/<pid>-<phase>.json at each report: bench/gc-tail.ts matches the
 * slowest tasks against the pauses of every process.
 */
const HOPS_DIR = process.env.BENCH_HOPS;
const TAIL_DIR = process.env.BENCH_GC_TAIL ?? HOPS_DIR;
/**
 * BENCH_HOPS=DIR: what BENCH_GC_TAIL writes, and per attempt in each cell when it arrived and was sent on,
 * in the agents when it started, with this process's CPU samples (lib/hop-trace.ts): `npx tsx bench/hops.ts
 * DIR PHASE` splits the dispatch time hop by hop.
 */
const hopTrace = HOPS_DIR ? new HopTrace(process.argv[2] === 'agents') : undefined;
/** A cell's tracer that records hops (and makes no span: '' keeps the Dispatch untraced, wire.ts). */
const hopTracer: TracerFactory | undefined = hopTrace
  ? () => ({
      enabled: true,
      submits: () => ({ start: (_id, spec) => spec, end: () => undefined }),
      dispatched: (item) => {
        hopTrace.record(taskSeq(item.taskId), hopTrace.epochMsToUs(item.arrivedMs), nowUs());
        return '';
      },
      resultBack: (item) => hopTrace.recordBack(taskSeq(item.taskId)),
    })
  : undefined;
/** BENCH_HOPS: the real scheduler, each timer callback recorded (start, length) for bench/hops.ts. */
const hopScheduler: Scheduler | undefined = hopTrace
  ? {
      ...realScheduler,
      setTimer: (delayMs, fn) =>
        realScheduler.setTimer(delayMs, () => {
          const start = nowUs();
          try {
            fn();
          } finally {
            hopTrace.recordTimer(start, delayMs);
          }
        }),
    }
  : undefined;
if (TAIL_DIR) mkdirSync(TAIL_DIR, { recursive: true });
/** performance.now() (ms since timeOrigin) to nowUs's clock: both are the monotonic clock. */
const perfToUs = nowUs() - performance.now() * 1000;
let gcTrace: number[] = [];
let taskTrace: number[] = [];
let phases = 0;
let reportsInPhase = 0;
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    const kind = (e as { detail?: { kind?: number } }).detail?.kind ?? 0;
    if (TAIL_DIR) gcTrace.push(Math.round(perfToUs + e.startTime * 1000), Math.round(e.duration * 1000), kind);
    if (kind === constants.NODE_PERFORMANCE_GC_MINOR) {
      gc.youngMs += e.duration;
      gc.young++;
    } else {
      gc.oldMs += e.duration;
      if (kind === constants.NODE_PERFORMANCE_GC_MAJOR) gc.old++;
    }
    gc.longestMs = Math.max(gc.longestMs, e.duration);
  }
}).observe({ entryTypes: ['gc'] });

/**
 * Bytes this process allocated on the V8 heap since the reset: what each collection found in use before it,
 * less what the previous one left, plus what is in use now beyond the last one's leftovers (v8.GCProfiler
 * reports both sides of every collection). Buffers' backing stores are outside the heap and not counted.
 */
let gcProf = new GCProfiler();
let heapAfter = 0;
let allocated = 0;
/**
 * The old generation's intake since the reset: `promoted`, what scavenges moved into it (old space's used size
 * after each less before), and `oldAdded`, that plus what was allocated there directly between collections
 * (pretenured objects, large objects: old and large-object space in use before each collection less after
 * the previous one). What fills the old generation sets how often the mark-compacts come.
 */
let promoted = 0;
let oldAdded = 0;
let oldAfter = 0;
function allocStart(): void {
  gcProf.stop();
  gcProf = new GCProfiler();
  gcProf.start();
  heapAfter = getHeapStatistics().used_heap_size;
  oldAfter = oldUsed(getHeapSpaceStatistics());
  allocated = 0;
  promoted = 0;
  oldAdded = 0;
}
/** Since the reset (a process may be asked for several reports in one phase). */
function allocBytes(): number {
  const r = gcProf.stop();
  let bytes = 0;
  let after = heapAfter;
  for (const s of r?.statistics ?? []) {
    bytes += Math.max(0, s.beforeGC.heapStatistics.usedHeapSize - after);
    after = s.afterGC.heapStatistics.usedHeapSize;
    const oldBefore = oldUsed(s.beforeGC.heapSpaceStatistics);
    const oldNow = oldUsed(s.afterGC.heapSpaceStatistics);
    oldAdded += Math.max(0, oldBefore - oldAfter);
    if (s.gcType === 'Scavenge') {
      promoted += Math.max(0, oldNow - oldBefore);
      oldAdded += Math.max(0, oldNow - oldBefore);
    }
    oldAfter = oldNow;
  }
  const used = getHeapStatistics().used_heap_size;
  bytes += Math.max(0, used - after);
  heapAfter = used;
  const oldUsedNow = oldUsed(getHeapSpaceStatistics());
  oldAdded += Math.max(0, oldUsedNow - oldAfter);
  oldAfter = oldUsedNow;
  allocated += bytes;
  // Keep counting from here: a report does not end the measurement (the next reset does).
  gcProf = new GCProfiler();
  gcProf.start();
  return allocated;
}

/** Old and large-object space in use (V8's names, as v8.GCProfiler and getHeapSpaceStatistics give them). */
function oldUsed(
  spaces: readonly { spaceName?: string; space_name?: string; spaceUsedSize?: number; space_used_size?: number }[],
): number {
  let n = 0;
  for (const sp of spaces) {
    const name = sp.spaceName ?? sp.space_name;
    if (name === 'old_space' || name === 'large_object_space') n += sp.spaceUsedSize ?? sp.space_used_size ?? 0;
  }
  return n;
}

/** Time the main thread spent runnable but waiting for a CPU (Linux schedstat), µs; 0 elsewhere. */
function runQueueWaitUs(): number {
  try {
    return Number(readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'utf8').split(' ')[1]) / 1000;
  } catch {
    return 0;
  }
}

/** Times the main thread went to sleep and was woken (voluntary context switches; Linux only, else 0). */
function wakeups(): number {
  try {
    const m = /voluntary_ctxt_switches:\s+(\d+)/.exec(readFileSync(`/proc/self/task/${process.pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/**
 * BENCH_PROF_PHASE=DIR: a CPU profile of each measured phase (from a reset to the next, or to exit), written to
 * DIR/<pid>-<n>.cpuprofile, without the start-up and warm-up that --cpu-prof (BENCH_PROF) also records.
 */
const PROF_DIR = process.env.BENCH_PROF_PHASE;
let profiler: Session | undefined;
let profiles = 0;

function profileStart(): void {
  if (!PROF_DIR) return;
  profiler ??= (() => {
    const s = new Session();
    s.connect();
    s.post('Profiler.enable');
    s.post('Profiler.setSamplingInterval', { interval: 250 });
    return s;
  })();
  profiler.post('Profiler.start');
}

function profileStop(): void {
  profiler?.post('Profiler.stop', (err, r) => {
    if (!err) writeFileSync(`${PROF_DIR}/${process.pid}-${++profiles}.cpuprofile`, JSON.stringify(r.profile));
  });
}

/**
 * BENCH_HEAP_PHASE=DIR: a sampling heap profile of each measured phase that counts every allocation, also of
 * objects collected since (V8's includeObjectsCollectedBy*GC), written to DIR/<pid>-<n>.heapprofile: where
 * the bytes a task allocates come from (BENCH_HEAP_LIVE=1: only what is alive at the phase's end;
 * =survivors: what outlived a scavenge). Sampling costs CPU: read it for shares, not for totals.
 */
const HEAP_DIR = process.env.BENCH_HEAP_PHASE;
if (HEAP_DIR) mkdirSync(HEAP_DIR, { recursive: true });
let heapProfiler: Session | undefined;
let heapProfiles = 0;

function heapStart(): void {
  if (!HEAP_DIR) return;
  heapProfiler ??= (() => {
    const s = new Session();
    s.connect();
    s.post('HeapProfiler.enable');
    return s;
  })();
  // BENCH_HEAP_LIVE=1: only what is still alive when the phase ends; =survivors: what outlived a scavenge
  // (collected by mark-compacts or alive at the end), i.e. what each scavenge copied.
  const live = process.env.BENCH_HEAP_LIVE;
  heapProfiler.post('HeapProfiler.startSampling', {
    samplingInterval: 2048,
    includeObjectsCollectedByMajorGC: live !== '1',
    includeObjectsCollectedByMinorGC: live === undefined,
  });
}

function heapStop(): void {
  heapProfiler?.post('HeapProfiler.stopSampling', (err, r) => {
    if (!err) writeFileSync(`${HEAP_DIR}/${process.pid}-${++heapProfiles}.heapprofile`, JSON.stringify(r.profile));
  });
}

function reset(): void {
  profileStop();
  profileStart();
  heapStop();
  heapStart();
  samples = new Samples();
  count = 0;
  cpu0 = process.cpuUsage();
  t0 = nowUs();
  lastUs = 0;
  wake0 = wakeups();
  wait0 = runQueueWaitUs();
  Object.assign(gc, { youngMs: 0, oldMs: 0, longestMs: 0, old: 0, young: 0 });
  allocStart();
  gcTrace = [];
  taskTrace = [];
  hopTrace?.reset();
  flushProbe?.reset();
  phases++;
  reportsInPhase = 0;
}

function report(): Record<string, unknown> {
  const c = process.cpuUsage(cpu0);
  reportsInPhase++;
  if (
    process.env.BENCH_HEAP_SNAPSHOT &&
    phases === Number(process.env.BENCH_HEAP_SNAPSHOT_PHASE ?? 4) &&
    reportsInPhase === 2
  )
    writeHeapSnapshot(`${process.env.BENCH_HEAP_SNAPSHOT}/${process.pid}-${phases}.heapsnapshot`);
  const alloc = allocBytes();
  if (TAIL_DIR)
    writeFileSync(
      `${TAIL_DIR}/${process.pid}-${phases}.json`,
      JSON.stringify({
        label:
          process.argv
            .slice(3)
            .filter((a) => a.startsWith('/') || /^\d/.test(a))
            .join(' ') || process.argv[2],
        role: process.argv[2],
        gc: gcTrace,
        tasks: taskTrace,
        runQueueWaitUs: runQueueWaitUs() - wait0,
        wallUs: nowUs() - t0,
        ...(hopTrace?.dump() ?? {}),
      }),
    );
  const hist = new LatencyHistogram();
  samples.forEach((us) => hist.recordUs(us));
  return {
    type: 'report',
    count,
    latency: hist.summary(),
    cpuUs: c.user + c.system,
    cpuSystemUs: c.system,
    wakeups: wakeups() - wake0,
    runQueueWaitUs: runQueueWaitUs() - wait0,
    wallUs: nowUs() - t0,
    lastUs,
    stalls: {
      gcYoungMs: Math.round(gc.youngMs),
      gcOldMs: Math.round(gc.oldMs),
      gcOld: gc.old,
      gcLongestMs: Math.round(gc.longestMs * 10) / 10,
      gcYoung: gc.young,
      allocBytes: alloc,
      promotedBytes: promoted,
      oldAddedBytes: oldAdded,
    },
    ...extra(),
  };
}

function listen(): void {
  process.on('message', (m: Msg) => {
    if (m.cmd === 'reset') {
      reset();
      send({ type: 'reset' });
    } else if (m.cmd === 'report') send(report());
    // Cheap progress polls: no histogram walk, no extras.
    else if (m.cmd === 'count') send({ type: 'count', count, lastUs });
  });
  process.on('disconnect', () => {
    profileStop();
    heapStop();
    process.exit(0);
  });
}

/** BENCH_LINGER_MS (and BENCH_LINGER_ITEMS): the cells' batcher linger (docs/mesh.md, "Batching"), for A/B runs. */
const LINGER =
  process.env.BENCH_LINGER_MS === undefined && process.env.BENCH_LINGER_ITEMS === undefined
    ? undefined
    : {
        ...(process.env.BENCH_LINGER_MS !== undefined ? { lingerMs: Number(process.env.BENCH_LINGER_MS) } : {}),
        ...(process.env.BENCH_LINGER_ITEMS !== undefined
          ? { lingerMinItems: Number(process.env.BENCH_LINGER_ITEMS) }
          : {}),
      };

/** BENCH_FLUSH=1: how long each written message waited in its batcher and in its write (lib/flush-probe.ts). */
const flushProbe = process.env.BENCH_FLUSH ? new FlushProbe() : undefined;

/** The lanes of parent-link.ts (up), child-link.ts (down) and agent-session.ts (agent), in their order. */
const UP_LANES = ['acks', 'checkpoints', 'results', 'spillUps', 'cancels', 'givenBack', 'summary'];
const DOWN_LANES = ['acks', 'checkpoints', 'results', 'cancels', 'dispatches', 'steals', 'keepalive'];
const AGENT_LANES = ['assignments', 'preemptions', 'cancels', 'drain', 'heartbeat', 'checkpointAcks', 'handBacks'];

async function cells(yaml: string, args: string[]): Promise<void> {
  // As `meshlb serve` does (MESHLB_PRETENURE=1: V8's default, for A/B runs).
  cellHeapFlags();
  const topology = parseTopology(yaml, '<bench>');
  const dataDir = args.find((a) => a.startsWith('--data='))?.slice(7);
  const fixed = args.includes('--topology-addresses');
  const paths = args.filter((a) => !a.startsWith('--'));
  if (dataDir && paths.length !== 1) throw new Error('--data: one replica per process');
  const started = new Map<string, Replica>();
  const addresses: Record<string, string> = {};
  for (const arg of paths) {
    const [cellArg, parentAddr] = arg.split('=') as [string, string | undefined];
    const [path, n] = cellArg.split('#') as [string, string | undefined];
    const spec = topology.byPath.get(path)!;
    const local = spec.parent ? started.get(spec.parent) : undefined;
    const r = new Replica({
      topology,
      cell: path,
      replica: n ? Number(n) : 1,
      ...(fixed ? {} : { host: '127.0.0.1', port: 0 }),
      ...(dataDir ? { dataDir } : {}),
      ...(LINGER ? { batcher: LINGER } : {}),
      ...(hopTracer ? { tracer: hopTracer } : {}),
      ...(hopScheduler ? { scheduler: hopScheduler } : {}),
      ...(flushProbe ? { meter: flushProbe.meter } : {}),
      ...(local || parentAddr || !fixed
        ? { parentAddresses: () => (local ? [local.address] : parentAddr ? [parentAddr] : []) }
        : {}),
    });
    await r.start();
    started.set(path, r);
    addresses[path] = r.address;
  }
  const root = started.get('/');
  if (root) {
    root.cell.ledger.onTerminal((rec) => {
      if (rec.state !== TaskState.TASK_STATE_COMPLETED) return;
      count++;
      lastUs = nowUs();
      const t = payloadTimeUs(rec.spec.payload);
      if (t === t) samples.push(lastUs - t);
      if (TAIL_DIR && t === t) taskTrace.push(t, lastUs - t);
    });
  }
  extra = () => {
    const out: Record<string, unknown> = {};
    if (root) {
      const c = root.cell;
      let free = 0;
      for (const l of c.children?.links.values() ?? []) for (const k of l.summary?.kinds ?? []) free += k.freeSlots;
      out.rootFree = free;
      out.live = c.ledger.liveCount;
      out.counters = c.ledger.counters;
    }
    const node = [...started.values()].find((r) => r.cell.agents);
    if (node) {
      out.agentsConnected = node.cell.agents!.byId.size;
      out.handshakes = node.cell.agents!.handshakes;
    }
    let msgs = 0;
    let items = 0;
    for (const r of started.values()) {
      for (const l of r.cell.children?.links.values() ?? []) {
        msgs += l.batcher.messages;
        items += l.batcher.items;
      }
      for (const s of r.cell.agents?.byId.values() ?? []) {
        msgs += s.batcher.messages;
        items += s.batcher.items;
      }
      const pb = (r.cell.parent as unknown as { batcher?: { messages: number; items: number } } | undefined)?.batcher;
      if (pb) {
        msgs += pb.messages;
        items += pb.items;
      }
    }
    out.batching = { messages: msgs, items };
    // How much each pump and each deferral batched (the process's cells together; one cell in multi mode).
    let pumps = 0;
    let dispatched = 0;
    for (const r of started.values()) {
      pumps += r.cell.stats.pumps;
      dispatched += r.cell.stats.dispatched;
    }
    out.flow = { pumps, dispatched, ...realDeferCounts };
    if (flushProbe) out.flushes = flushProbe.summary();
    // Per cell, the messages it wrote per lane (batcher.ts laneMessages), named: what each message carried.
    const lanes = (into: Record<string, number>, side: string, names: readonly string[], c?: number[]): void => {
      for (let i = 0; c && i < c.length; i++)
        if (c[i]) into[`${side}.${names[i]}`] = (into[`${side}.${names[i]}`] ?? 0) + c[i]!;
    };
    out.laneMessages = Object.fromEntries(
      [...started].map(([p, r]) => {
        const into: Record<string, number> = {};
        for (const l of r.cell.children?.links.values() ?? []) lanes(into, 'down', DOWN_LANES, l.batcher.laneMessages);
        for (const s of r.cell.agents?.byId.values() ?? []) lanes(into, 'agent', AGENT_LANES, s.batcher.laneMessages);
        const pb = (r.cell.parent as unknown as { batcher?: { laneMessages?: number[] } } | undefined)?.batcher;
        lanes(into, 'up', UP_LANES, pb?.laneMessages);
        return [p, into];
      }),
    );
    // Pumps that left work queued for want of credit, per cell (since start).
    out.creditStalls = Object.fromEntries([...started].map(([p, r]) => [p, r.cell.stats.creditStalls]));
    return out;
  };
  listen();
  send({ type: 'ready', addresses });
}

async function agents(address: string, n: number, slots: number): Promise<void> {
  const onPayload = (payload: Uint8Array): void => {
    count++;
    lastUs = nowUs();
    const t = payloadTimeUs(payload);
    if (t === t) samples.push(lastUs - t);
  };
  // BENCH_AGENTS=sdk: the agent SDK (src/agent) on its transport (MESHLB_AGENT_TRANSPORT) instead of SimAgent.
  if (process.env.BENCH_AGENTS === 'sdk') {
    const { Agent, AgentChannelPool } = await import('../src/agent/index.js');
    const pool = new AgentChannelPool();
    const list = Array.from({ length: n }, (_, i) => {
      const a = new Agent({ address, agentId: `bench-${i}`, kinds: ['bench'], slots, openStream: pool.openStream });
      a.handle('bench', (t) => onPayload(t.payload));
      return a;
    });
    await Promise.all(list.map((a) => a.start()));
    console.error(`[bench] agents: ${n} agent SDK agents on ${pool.transport}`);
    listen();
    send({ type: 'ready' });
    return;
  }
  const client = new AgentServiceClient(address, credentials.createInsecure());
  const onStart = (d: Dispatch): void => {
    onPayload(d.spec!.payload);
    if (hopTrace) hopTrace.record(taskSeq(d.taskId), payloadTimeUs(d.spec!.payload), lastUs);
  };
  const list: SimAgent[] = [];
  for (let i = 0; i < n; i++)
    list.push(new SimAgent({ address, agentId: `bench-${i}`, kinds: ['bench'], slots, client, onStart }));
  await Promise.all(list.map((a) => a.start()));
  listen();
  send({ type: 'ready' });
}

async function agentSim(address: string, n: number): Promise<void> {
  const { startAgentSim } = await import('../src/cli/agent-sim.js');
  const sim = startAgentSim({ address, agents: n, slots: 4, kinds: ['bench'], statsIntervalMs: 0 });
  extra = () => ({ connected: sim.stats().connected });
  listen();
  send({ type: 'ready' });
}

const [role, ...args] = process.argv.slice(2);
if (role === 'cells') await cells(args[0]!, args.slice(1));
else if (role === 'agents') await agents(args[0]!, Number(args[1]), Number(args[2]));
else if (role === 'agentsim') await agentSim(args[0]!, Number(args[1]));
