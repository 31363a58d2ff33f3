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
//       latency, the result as recorded by the home ledger (after a paced
//       warm-up, so that V8 has compiled the low-rate path);
//   (d) a paced sweep (bench/lib/sweep.ts): 100, 500, 2,000, 8,000 tasks/s and
//       half of the peak measured in (b), the tasks due each millisecond in one
//       SubmitBatch: submit-to-result p50/p99/p99.9, dispatch latency (submit to
//       agent start, measured in the agents process), CPU, wakeups and link
//       messages per task per process; a table, and a chart beside the JSON;
//   (e) 5,000 agent streams from one agent-sim process (the agent SDK) against
//       one node replica process: the node's RSS;
//   (f) durable (bench/durable.ts): LOGGED tasks (the default durability) through
//       the same four tiers with the root a 3-replica Raft group, one process
//       per replica, lmdb with fsync, the client at the root's leader: full-rate
//       tasks/s and CPU per task (against (b)'s NONE figure of the same run),
//       and paced 500/s submit-to-result.
//
// Every process stamps times with process.hrtime (CLOCK_MONOTONIC, one clock
// for the host); the submit time travels in the task payload. CPU time per
// task is the sum of process.cpuUsage over the mesh, agents and client
// processes: it is the figure to compare across runs on a loaded machine.
//
// Bounded: every phase stops by count or by time; the whole run takes two to
// four minutes (longer on a loaded machine). Writes bench/results/mesh-<timestamp>.json
// (and the sweep's chart beside it, -sweep.svg) and prints the tables.
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { Durability } from '../src/gen/meshlb/v1/task.js';
import { DurableMesh, fsyncBaseline, ROOT_REPLICAS, type LeaderInfo } from './durable.js';
import { runEcho, type EchoResult } from './echo.js';
import {
  idleCpu,
  NO_LAT,
  NO_PACED,
  NO_TP,
  paced,
  round,
  sleep,
  throughput,
  type Mesh,
  type Paced,
  type Throughput,
} from './lib/phases.js';
import type { LatencySummary } from './lib/histogram.js';
import { Proc } from './lib/proc.js';
import { writeBeside, writeResults } from './lib/results.js';
import { sweep, sweepChart, sweepTable, SWEEP_RATES, type SweepPoint } from './lib/sweep.js';
import { renderTable, type Cell } from './lib/table.js';
import { NO_PASSES, pacedPasses, type Spread } from './lib/passes.js';

/** A spread as a table cell ('-' when no pass ran). */
const spreadCell = (s: Spread): Cell => (Number.isFinite(s.median) ? `${s.min}-${s.max}` : NaN);
const medianCell = (s: Spread): Cell => (Number.isFinite(s.median) ? `${s.median} (${s.min}-${s.max})` : NaN);
import { chainTopologyYaml } from '../src/topology/chain.js';

const QUICK = process.argv.includes('--quick');
/**
 * --only=echo,multi,paced,paced500,sweep,single,pacedsingle,agents,durable runs a subset (for profiling; paced500 =
 * the 500/s phase alone; sweep = (d) alone; paced = (c) and (d); pacedsingle = 500/s against the four cells in one process, a diagnostic; durable = (f), with
 * (b)'s NONE full-rate figure for its ratio); the table then has gaps.
 */
const ONLY = process.argv
  .find((a) => a.startsWith('--only='))
  ?.slice(7)
  .split(',');
const runs = (phase: string): boolean => !ONLY || ONLY.includes(phase);
/** --half-rate=N: the half-of-peak rate of (d) when (b) did not run (--only=paced); default half of (b)'s peak, else 1000. */
const HALF_RATE = Number(process.argv.find((a) => a.startsWith('--half-rate='))?.slice(12) ?? 0);
/** --sweep-rates=100,500: the sweep's fixed rates (default SWEEP_RATES; empty: half of peak alone), for A/B runs. */
const SWEEP_ARG = process.argv.find((a) => a.startsWith('--sweep-rates='))?.slice(14);
const SWEEP_FIXED = SWEEP_ARG === undefined ? SWEEP_RATES : SWEEP_ARG.split(',').filter(Boolean).map(Number);
/**
 * --point-seconds=N: every sweep point runs N seconds (default 3-10 s, by rate): e.g. 20 at half of peak so the
 * root's ledger reaches its retention (100,000 ended tasks) inside the phase, as in a long-running mesh.
 */
const POINT_SECONDS = Number(process.argv.find((a) => a.startsWith('--point-seconds='))?.slice(16) ?? 0);
/**
 * --paced-passes=K: the paced 500/s phase as K passes of the same length (default 3, 1 with --quick), each
 * with a wakeup probe after it; the table shows the medians, and the spread (bench/lib/passes.ts).
 */
const PACED_PASSES = Math.max(
  1,
  Number(process.argv.find((a) => a.startsWith('--paced-passes='))?.slice(15) ?? (QUICK ? 1 : 3)),
);
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
/** The default durability: UNSPECIFIED is LOGGED (accepted once in the home cell's log). */
const LOGGED = Durability.DURABILITY_UNSPECIFIED;

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

interface Durable {
  /** One fsync'd lmdb write on the data dirs' file system just before (f): the disk's floor. */
  fsyncWrite: LatencySummary;
  throughput: Throughput;
  paced500: Paced;
  /** The root leader once elected, after the warm-up, the full-rate phase and the paced phase: a change is reported. */
  leaders: LeaderInfo[];
  leaderChanges: number;
}

const NO_DURABLE: Durable = {
  fsyncWrite: NO_LAT,
  throughput: NO_TP,
  paced500: NO_PACED,
  leaders: [],
  leaderChanges: NaN,
};

/** (f): LOGGED tasks (durability left at its default) with the root a 3-replica Raft group; see bench/durable.ts. */
async function durablePhases(n: number): Promise<Durable> {
  log(`(f) durable: LOGGED tasks, root cell of ${ROOT_REPLICAS} replicas (Raft, lmdb, fsync), process per replica`);
  const fsyncWrite = await fsyncBaseline(300, 3000);
  log(`one fsync'd lmdb write: p50 ${fsyncWrite.p50Ms} p99 ${fsyncWrite.p99Ms} ms (${fsyncWrite.count} writes)`);
  const m = await DurableMesh.start(TOPOLOGY, AGENTS, SLOTS);
  try {
    const leaders: LeaderInfo[] = [];
    const leader = async (): Promise<void> => {
      const l = await m.findLeader();
      leaders.push(l);
      log(`root leader ${l.id} (term ${l.term}) at ${l.address}, pid ${m.root.pid}`);
    };
    await leader();
    await throughput(m, 5_000, 10_000, LOGGED); // warm-up (JIT, connections, lmdb)
    await leader();
    const tp = await throughput(m, n, 20_000, LOGGED);
    log(
      `durable full rate: ${tp.tasksPerSecond} tasks/s (${tp.completed}/${tp.tasks} in ${tp.seconds} s, ${tp.rejectedBatches} batches refused), ${tp.cpuUsPerTask} µs CPU/task ${JSON.stringify(tp.cpuUsPerTaskByProcess)}`,
    );
    await leader();
    const p = await paced(m, 500, QUICK ? 3 : 6, 'stream', LOGGED);
    log(
      `durable paced 500/s: p50 ${p.submitToResult.p50Ms} p99 ${p.submitToResult.p99Ms} p99.9 ${p.submitToResult.p999Ms} ms (${p.completed}/${p.tasks}, ${p.refused} refused), ${p.cpuUsPerTask} µs CPU/task ${JSON.stringify(p.cpuUsPerTaskByProcess)}, wakeups/task ${JSON.stringify(p.wakeupsPerTask)}, waiting for CPU ${JSON.stringify(p.runQueueWaitShare)}`,
    );
    await leader();
    const changes = leaders.slice(1).filter((l, i) => l.id !== leaders[i]!.id || l.term !== leaders[i]!.term).length;
    if (changes > 0) log(`WARNING: the root leader changed ${changes} time(s) during the durable phases`);
    return { fsyncWrite, throughput: tp, paced500: p, leaders, leaderChanges: changes };
  } finally {
    await m.stop();
  }
}

const NO_ECHO_RESULT: EchoResult = { itemsPerMessage: 1, items: 0, seconds: 0, roundTripsPerSecond: NaN };
const NO_ECHO = { unbatched: NO_ECHO_RESULT, batched: NO_ECHO_RESULT };

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
  let lowPasses = NO_PASSES(NO_PACED);
  let pacedHalf = NO_PACED;
  let pacedWarm = NO_PACED;
  let sweepPoints: SweepPoint[] = [];
  let idle: Record<string, number> = {};
  if (runs('multi') || runs('paced') || runs('paced500') || runs('sweep') || runs('durable')) {
    log('(b) four tiers, one process per cell');
    const multi = await startMesh('multi');
    try {
      await throughput(multi, 5_000, 10_000); // warm-up (JIT, connections)
      if (runs('multi') || runs('durable')) {
        multiTp = await throughput(multi, N, 20_000);
        log(`multi-process: ${multiTp.tasksPerSecond} tasks/s, ${multiTp.cpuUsPerTask} µs CPU/task`);
        log(`multi-process flow per 1,000 tasks (pumps, deferrals, messages): ${JSON.stringify(multiTp.flow)}`);
      }
      if (runs('paced') || runs('paced500') || runs('sweep')) {
        idle = await idleCpu(multi, 2000);
        log(`idle CPU (µs per second of wall time): ${JSON.stringify(idle)}`);
        // The paced path's own JIT warm-up: the full-rate warm-up leaves code that runs per message at low rates
        // (one task per message, a flush per task) unoptimized, and V8 would spend the measured phase compiling
        // it: in a first 500/s pass V8 still compiled ~150 functions per process, and it cost 25-40% more CPU
        // per task than the third pass (docs/performance.md, "Low-rate path"). A long-running mesh is past this.
        pacedWarm = await paced(multi, 1000, QUICK ? 3 : 8, 'stream');
        log(
          `paced warm-up 1000/s: ${pacedWarm.cpuUsPerTask} µs CPU/task ${JSON.stringify(pacedWarm.cpuUsPerTaskByProcess)}`,
        );
      }
      if (runs('paced') || runs('paced500')) {
        log(`(c) paced 500 tasks/s, ${PACED_PASSES} passes (the figures below: the pass of median CPU per task)`);
        lowPasses = await pacedPasses(multi, 500, QUICK ? 3 : 6, PACED_PASSES, log);
        pacedLow = lowPasses.median;
        log(
          `paced 500/s: p50 ${pacedLow.submitToResult.p50Ms} p99 ${pacedLow.submitToResult.p99Ms} ms, dispatch p99 ${pacedLow.dispatch.p99Ms} ms, ${pacedLow.cpuUsPerTask} µs CPU/task ${JSON.stringify(pacedLow.cpuUsPerTaskByProcess)}, credit stalls ${JSON.stringify(pacedLow.creditStalls)}, wakeups/task ${JSON.stringify(pacedLow.wakeupsPerTask)}, messages/task ${JSON.stringify(pacedLow.messagesPerTask)} by lane ${JSON.stringify(pacedLow.messagesPerTaskByLane)}, system CPU share ${JSON.stringify(pacedLow.systemCpuShare)}, waiting for CPU ${JSON.stringify(pacedLow.runQueueWaitShare)}, heap bytes allocated/task ${JSON.stringify(pacedLow.allocBytesPerTask)}, flow ${JSON.stringify(pacedLow.flow)}, stalls ${JSON.stringify(pacedLow.stalls)}`,
        );
      }
      if (runs('paced') || runs('sweep')) {
        const peak = HALF_RATE ? 2 * HALF_RATE : multiTp.tasksPerSecond || 2000;
        log(`(d) paced sweep: ${SWEEP_FIXED.join(', ')} tasks/s and half of peak (${Math.round(peak / 2)})`);
        sweepPoints = await sweep(multi, peak, QUICK, log, SWEEP_FIXED, POINT_SECONDS);
        pacedHalf = sweepPoints.find((p) => p.why !== 'fixed') ?? NO_PACED;
        log(
          `dispatch at ${pacedHalf.rate}/s: p50 ${pacedHalf.dispatch.p50Ms} p99 ${pacedHalf.dispatch.p99Ms} ms, ${pacedHalf.cpuUsPerTask} µs CPU/task ${JSON.stringify(pacedHalf.cpuUsPerTaskByProcess)}, credit stalls ${JSON.stringify(pacedHalf.creditStalls)}, wakeups/task ${JSON.stringify(pacedHalf.wakeupsPerTask)}, waiting for CPU ${JSON.stringify(pacedHalf.runQueueWaitShare)}, flow ${JSON.stringify(pacedHalf.flow)}${process.env.BENCH_FLUSH ? `, batcher wait and write ${JSON.stringify(pacedHalf.flushes)}` : ''}`,
        );
      }
    } finally {
      await multi.stop();
    }
  }

  const durable = runs('durable') ? await durablePhases(N) : NO_DURABLE;

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
  const dTp = durable.throughput;
  const dPaced = durable.paced500;
  const dRatio = round(dTp.tasksPerSecond / multiTp.tasksPerSecond);
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
      // Issue 12's target (also >= 3x BullMQ in the same run: npm run bench:peers).
      '>= 50% echo',
      yes(multiTp.tasksPerSecond >= 0.5 * echoRt),
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
      `paced 500/s submit→result p99 ms (median of ${lowPasses.passes.length} passes)`,
      lowPasses.p99Ms.median,
      '< 5',
      yes(lowPasses.p99Ms.median < 5),
      round(lowPasses.p99Ms.median / 5),
    ],
    [`  p99 ms, min-max of the passes`, spreadCell(lowPasses.p99Ms), '-', '-', '-'],
    ['  CPU µs per task, median (min-max)', medianCell(lowPasses.cpuUsPerTask), '-', '-', '-'],
    ['  empty wakeup µs (probe), median (min-max)', medianCell(lowPasses.probeUsPerWakeup), '-', '-', '-'],
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
    [
      `tasks/s, LOGGED, ${ROOT_REPLICAS}-replica root, fsync`,
      dTp.tasksPerSecond,
      '>= 12,000',
      yes(dTp.tasksPerSecond >= 12_000),
      round(dTp.tasksPerSecond / 12_000),
    ],
    ['  durable / NONE tasks/s (same run)', dRatio, '>= 0.40', yes(dRatio >= 0.4), round(dRatio / 0.4)],
    ['  CPU µs per task (all processes)', dTp.cpuUsPerTask, '-', '-', '-'],
    ['  root leader changes during (f)', durable.leaderChanges, '-', '-', '-'],
    ['paced 500/s LOGGED submit→result p50 ms', dPaced.submitToResult.p50Ms, '-', '-', '-'],
    [
      'paced 500/s LOGGED submit→result p99 ms',
      dPaced.submitToResult.p99Ms,
      '< 10',
      yes(dPaced.submitToResult.p99Ms < 10),
      round(dPaced.submitToResult.p99Ms / 10),
    ],
    ['paced 500/s LOGGED submit→result p99.9 ms', dPaced.submitToResult.p999Ms, '-', '-', '-'],
    ['  CPU µs per task (all processes)', dPaced.cpuUsPerTask, '-', '-', '-'],
    ["one fsync'd lmdb write p50 ms (disk floor, same run)", durable.fsyncWrite.p50Ms, '-', '-', '-'],
    ["one fsync'd lmdb write p99 ms", durable.fsyncWrite.p99Ms, '-', '-', '-'],
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
    pacedWarmUp: pacedWarm,
    paced500: pacedLow,
    paced500Passes: { ...lowPasses, median: undefined },
    pacedHalfPeak: pacedHalf,
    sweep: sweepPoints,
    paced500OneProcess: pacedSingle,
    idleCpuUsPerSecond: idle,
    manyAgents: many,
    durable: {
      topology: `the same chain, / with ${ROOT_REPLICAS} replicas (Raft, lmdb with fsync, a process each), the other cells one replica in memory`,
      ...durable,
    },
    ratios: {
      multiProcessToEcho: round(multiTp.tasksPerSecond / echoRt),
      oneProcessToEcho: round(singleTp.tasksPerSecond / echoRt),
      durableToNone: dRatio,
    },
  });
  const svg = sweepPoints.length
    ? writeBeside(
        file,
        '-sweep.svg',
        sweepChart(sweepPoints, 'meshlb: four tiers, process per cell, paced (SubmitBatch per ms)'),
      )
    : '';
  const sweepText = sweepPoints.length
    ? `\n\npaced sweep (tasks due each ms in one SubmitBatch)\n${sweepTable(sweepPoints)}`
    : '';
  process.stdout.write(
    `\n${table}${sweepText}\n\nload average before ${load0.map((x) => x.toFixed(2)).join(' ')}, after ${load1.map((x) => x.toFixed(2)).join(' ')}; ${round((Date.now() - t0) / 1000)} s\n${file}${svg ? `\n${svg}` : ''}\n`,
  );
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`bench failed: ${e instanceof Error ? e.stack : String(e)}\n`);
    process.exit(1);
  },
);
