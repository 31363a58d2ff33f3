// `npm run bench:peers`: meshlb against a peer, BullMQ on a local Redis, with
// the workloads of `npm run bench` in one run, printed side by side.
//
//   (a) baseline: the bare grpc-js echo (bench/echo.ts), unbatched round trips/s;
//   (b) full rate: meshlb's four tiers, a process per cell, 100 no-op agents of
//       16 slots, this process submitting SubmitBatch of 500 with 8 batches in
//       flight — against BullMQ: this process adding jobs with Queue.addBulk of
//       500 with 8 in flight, one Worker process (no-op processor, concurrency
//       --bullmq-concurrency, default 100), one redis-server;
//   (c) paced 500/s: meshlb one task per SubmitStream message; BullMQ one
//       Queue.add per job; the tasks due are sent, then the client sleeps
//       until the next is due (at least 1 ms). Each side
//       first runs 5 s (2 with --quick) at 1,000/s the same way, not measured:
//       V8 compiles the code that runs per message at low rates then. Then
//       --paced-passes passes (default 3, 1 with --quick) of 6 s (3) per side,
//       the sides alternated pass by pass (A B, B A, A B, ...) with both
//       systems up, so a pair's two passes meet the same machine: one pass's
//       CPU per task swings ~1.6x between runs here (docs/performance.md, "Session 12: the paced
//       swing"). The table gives each side's medians, the passes' spread, and
//       meshlb / BullMQ per pair; a wakeup probe (bench/lib/wake-probe.ts) is
//       taken after each pair.
//
// Submit-to-result: from the submit time carried in the task (job) to the
// result recorded — by meshlb's home ledger, by BullMQ's worker when it emits
// 'completed' (the job is complete in Redis). CPU per task: every process of
// each side, this client included — meshlb's cells and agents (process.cpuUsage
// over IPC), BullMQ's producer (this process), worker (the same) and
// redis-server (/proc/<pid>/stat).
//
// Redis: Debian's redis-server (apt-get install -y redis-server), started here
// on a free loopback port with no persistence (no RDB, no AOF) and stopped
// after, on Ctrl-C and on errors too. Without redis-server the BullMQ side is
// skipped with a message; nothing is installed. BullMQ jobs are removed once
// complete (removeOnComplete), as a queue that runs for long would.
//
// Flags: --quick (smaller counts), --only=meshlb|bullmq, --bullmq-concurrency=N, --paced-passes=K.
// Bounded: every phase stops by count or time; about two minutes in all.
// Writes bench/results/peers-<timestamp>.json and .txt (the table).
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { Queue } from 'bullmq';
import { runEcho } from './echo.js';
import { startChainMesh } from './lib/chain-mesh.js';
import { nowUs } from './lib/clock.js';
import type { LatencySummary } from './lib/histogram.js';
import { NO_LAT, paced, round, throughput, waitCount } from './lib/phases.js';
import { procCpuUs } from './lib/procfs.js';
import { Proc } from './lib/proc.js';
import { findRedisServer, REDIS_MISSING, startRedis, type Redis } from './lib/redis.js';
import { writeResults } from './lib/results.js';
import { spread } from './lib/passes.js';
import { wakeProbe } from './lib/wake-probe.js';
import { peerRows, renderPeers, type Side } from './peers-table.js';
import { QUEUE, type BenchJob } from './peers-bullmq.js';

const QUICK = process.argv.includes('--quick');
const ONLY = process.argv.find((a) => a.startsWith('--only='))?.slice(7);
const flag = (name: string, def: number): number =>
  Number(process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? def);
const CONCURRENCY = flag('bullmq-concurrency', 100);
const N = QUICK ? 20_000 : 60_000;
const PACED_S = QUICK ? 3 : 6;
/** Before the paced phase, each side runs this many seconds at WARM_RATE (not measured). */
const WARM_S = QUICK ? 2 : 5;
const WARM_RATE = 1000;
const RATE = 500;
const PASSES = Math.max(1, flag('paced-passes', QUICK ? 1 : 3));
const AGENTS = 100;
const SLOTS = 16;
const WORKER = fileURLToPath(new URL('./peers-bullmq.ts', import.meta.url));
const log = (s: string): void => void process.stderr.write(`[bench:peers] ${s}\n`);

const EMPTY: Side = {
  tasksPerSecond: NaN,
  fullRate: NO_LAT,
  cpuUsPerTask: NaN,
  cpuUsPerTaskByProcess: {},
  paced: NO_LAT,
  pacedCompleted: NaN,
  pacedCpuUsPerTask: NaN,
  pacedCpuUsPerTaskByProcess: {},
};

/** One paced pass of a side: its latency, CPU per task and where that CPU went. */
interface Pass {
  latency: LatencySummary;
  completed: number;
  cpuUsPerTask: number;
  byProcess: Record<string, number>;
}

/** A side started, measured at full rate and warmed for the paced passes; `pass` runs one, `stop` ends it. */
interface Running {
  full: Omit<Side, 'paced' | 'pacedCompleted' | 'pacedCpuUsPerTask' | 'pacedCpuUsPerTaskByProcess'>;
  pass(): Promise<Pass>;
  stop(): Promise<void>;
}

async function meshlb(): Promise<Running> {
  log(`meshlb: four tiers, process per cell, ${AGENTS} no-op agents x ${SLOTS} slots`);
  const m = await startChainMesh(AGENTS, SLOTS);
  try {
    await throughput(m, 5_000, 10_000); // warm-up (JIT, connections)
    const tp = await throughput(m, N, 20_000);
    const full = (await m.root.report()).latency;
    log(`meshlb full rate: ${tp.tasksPerSecond} tasks/s, p99 ${full.p99Ms} ms, ${tp.cpuUsPerTask} µs CPU/task`);
    // The paced path's own warm-up, as bench/mesh.ts does (and BullMQ gets below): the full-rate phase leaves
    // the code that runs once per message at low rates uncompiled, and V8 would compile it during the measurement.
    await paced(m, WARM_RATE, WARM_S, 'stream');
    return {
      full: {
        tasksPerSecond: tp.tasksPerSecond,
        fullRate: full,
        cpuUsPerTask: tp.cpuUsPerTask,
        cpuUsPerTaskByProcess: tp.cpuUsPerTaskByProcess,
      },
      pass: async () => {
        const p = await paced(m, RATE, PACED_S, 'stream');
        log(
          `meshlb paced ${RATE}/s: p50 ${p.submitToResult.p50Ms} p99 ${p.submitToResult.p99Ms} ms, ${p.cpuUsPerTask} µs CPU/task`,
        );
        return {
          latency: p.submitToResult,
          completed: p.completed,
          cpuUsPerTask: p.cpuUsPerTask,
          byProcess: p.cpuUsPerTaskByProcess,
        };
      },
      stop: () => m.stop(),
    };
  } catch (err) {
    await m.stop();
    throw err;
  }
}

interface BullPhase {
  completed: number;
  seconds: number;
  latency: LatencySummary;
  cpuUsPerTask: number;
  byProcess: Record<string, number>;
}

/** Run `submit` (which adds `n` jobs) and wait for the worker to complete them; CPU over producer, worker, Redis. */
async function bullPhase(
  worker: Proc,
  redis: Redis,
  n: number,
  maxMs: number,
  submit: () => Promise<void>,
): Promise<BullPhase> {
  await worker.ask('reset');
  const redis0 = procCpuUs(redis.pid);
  const cpu0 = process.cpuUsage();
  const start = nowUs();
  await submit();
  const r = await waitCount(worker, n, maxMs);
  const c = process.cpuUsage(cpu0);
  const producer = c.user + c.system;
  const redisUs = procCpuUs(redis.pid) - redis0;
  const done = Math.max(1, r.count);
  return {
    completed: r.count,
    seconds: round(((r.lastUs || nowUs()) - start) / 1e6),
    latency: r.latency,
    cpuUsPerTask: round((producer + r.cpuUs + redisUs) / done),
    byProcess: {
      producer: round(producer / done),
      worker: round(r.cpuUs / done),
      'redis-server': round(redisUs / done),
    },
  };
}

/** Add `n` jobs as fast as Redis takes them: addBulk of 500, 8 calls in flight. */
async function addFullRate(q: Queue<BenchJob>, n: number): Promise<void> {
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < n) {
      const k = Math.min(500, n - next);
      next += k;
      const jobs = [];
      for (let i = 0; i < k; i++) jobs.push({ name: 'bench', data: { t: nowUs() } });
      await q.addBulk(jobs);
    }
  };
  await Promise.all(Array.from({ length: 8 }, lane));
}

/**
 * `rate` jobs/s for `seconds`, one Queue.add each, paced as meshlb's client is (bench/lib/phases.ts `paced`):
 * the jobs due, then sleep until the next is due (at least a millisecond). Polling every millisecond instead
 * woke the producer twice per job at 500/s, CPU that meshlb's side did not pay.
 */
async function addPaced(q: Queue<BenchJob>, rate: number, seconds: number): Promise<void> {
  const n = Math.round(rate * seconds);
  const start = nowUs();
  let sent = 0;
  const pending: Promise<unknown>[] = [];
  await new Promise<void>((resolve) => {
    const tick = (): void => {
      const due = Math.min(n, Math.floor(((nowUs() - start) / 1e6) * rate));
      while (sent < due) {
        sent++;
        pending.push(q.add('bench', { t: nowUs() }));
      }
      if (sent >= n) resolve();
      else setTimeout(tick, Math.max(1, Math.ceil((start + ((sent + 1) / rate) * 1e6 - nowUs()) / 1000)));
    };
    tick();
  });
  await Promise.all(pending);
}

async function bullmq(redis: Redis): Promise<Running> {
  log(
    `BullMQ: redis-server ${redis.version} on 127.0.0.1:${redis.port} (no persistence), one worker of concurrency ${CONCURRENCY}`,
  );
  const [worker] = await Proc.start('bullmq worker', ['worker', String(redis.port), String(CONCURRENCY)], WORKER);
  const q = new Queue<BenchJob>(QUEUE, {
    connection: { host: '127.0.0.1', port: redis.port },
    defaultJobOptions: { removeOnComplete: true, removeOnFail: true },
  });
  const stop = async (): Promise<void> => {
    await q.close();
    await worker.stop();
  };
  try {
    await q.waitUntilReady();
    await bullPhase(worker, redis, 5_000, 20_000, () => addFullRate(q, 5_000)); // warm-up
    const full = await bullPhase(worker, redis, N, 60_000, () => addFullRate(q, N));
    const tps = Math.round(full.completed / full.seconds);
    log(
      `BullMQ full rate: ${tps} jobs/s (${full.completed}/${N}), p99 ${full.latency.p99Ms} ms, ${full.cpuUsPerTask} µs CPU/job`,
    );
    await bullPhase(worker, redis, WARM_RATE * WARM_S, 15_000, () => addPaced(q, WARM_RATE, WARM_S)); // paced warm-up
    return {
      full: {
        tasksPerSecond: tps,
        fullRate: full.latency,
        cpuUsPerTask: full.cpuUsPerTask,
        cpuUsPerTaskByProcess: full.byProcess,
      },
      pass: async () => {
        const p = await bullPhase(worker, redis, RATE * PACED_S, 15_000, () => addPaced(q, RATE, PACED_S));
        log(`BullMQ paced ${RATE}/s: p50 ${p.latency.p50Ms} p99 ${p.latency.p99Ms} ms, ${p.cpuUsPerTask} µs CPU/job`);
        return { latency: p.latency, completed: p.completed, cpuUsPerTask: p.cpuUsPerTask, byProcess: p.byProcess };
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** A side's paced figures over its passes: medians (latency per percentile), the median pass's CPU split. */
function sideOf(r: Running | undefined, passes: readonly Pass[]): Side {
  if (!r) return EMPTY;
  const med = (f: (p: Pass) => number): number => spread(passes.map(f)).median;
  const cpu = med((p) => p.cpuUsPerTask);
  return {
    ...r.full,
    paced: {
      ...passes[0]!.latency,
      p50Ms: med((p) => p.latency.p50Ms),
      p99Ms: med((p) => p.latency.p99Ms),
      p999Ms: med((p) => p.latency.p999Ms),
    },
    pacedCompleted: med((p) => p.completed),
    pacedCpuUsPerTask: cpu,
    pacedCpuUsPerTaskByProcess: passes.find((p) => p.cpuUsPerTask === cpu)?.byProcess ?? {},
    pacedPasses: passes.map((p) => ({ p99Ms: p.latency.p99Ms, cpuUsPerTask: p.cpuUsPerTask })),
  };
}

async function main(): Promise<void> {
  const t0 = Date.now();
  const load0 = os.loadavg();
  log(`load average ${load0.map((x) => x.toFixed(2)).join(' ')} on ${os.cpus().length} cpus`);
  log('(a) echo baseline');
  const echo = await runEcho({ items: QUICK ? 50_000 : 200_000, maxMs: 10_000 });
  const echoRt = echo.unbatched.roundTripsPerSecond;
  log(`echo: ${Math.round(echoRt)} rt/s unbatched`);

  let mesh: Running | undefined;
  let bull: Running | undefined;
  let redis: Redis | undefined;
  let skipped = '';
  let redisVersion = '';
  const meshPasses: Pass[] = [];
  const bullPasses: Pass[] = [];
  const probes: number[] = [];
  try {
    if (ONLY !== 'bullmq') mesh = await meshlb();
    if (ONLY !== 'meshlb') {
      const bin = findRedisServer();
      if (!bin) {
        skipped = REDIS_MISSING;
        log(skipped);
      } else {
        redis = await startRedis(bin);
        redisVersion = redis.version;
        bull = await bullmq(redis);
      }
    }
    // The paced passes, the sides alternated (A B, B A, ...): a pair's two passes meet the same machine.
    log(`(c) paced ${RATE}/s: ${PASSES} passes of ${PACED_S} s per side, alternated`);
    for (let i = 0; i < PASSES; i++) {
      const order: [Running | undefined, Pass[]][] = [
        [mesh, meshPasses],
        [bull, bullPasses],
      ];
      if (i % 2 === 1) order.reverse();
      for (const [side, into] of order) if (side) into.push(await side.pass());
      probes.push((await wakeProbe()).usPerWakeup);
    }
  } finally {
    await mesh?.stop();
    await bull?.stop();
    await redis?.stop();
  }
  const meshSide = sideOf(mesh, meshPasses);
  const bullSide = sideOf(bull, bullPasses);
  const probe = spread(probes);
  log(`empty wakeup (probe after each pair) median ${probe.median} µs (${probe.min}-${probe.max})`);

  const table = renderPeers(peerRows(meshSide, bullSide, echoRt, RATE));
  const load1 = os.loadavg();
  const data = {
    quick: QUICK,
    seconds: round((Date.now() - t0) / 1000),
    loadAverage: { before: load0, after: load1 },
    echo: echo.unbatched,
    meshlb: {
      setup: `chain / → /r → /r/z → /r/z/n, a process per cell, durability NONE, ${AGENTS} no-op agents x ${SLOTS} slots`,
      ...meshSide,
    },
    bullmq: {
      setup: `redis-server ${redisVersion || '-'} (no persistence, loopback), one Worker process of concurrency ${CONCURRENCY}, jobs removed on completion`,
      skipped,
      ...bullSide,
    },
    tasks: { fullRate: N, pacedRate: RATE, pacedSeconds: PACED_S, pacedPasses: PASSES },
    emptyWakeupUs: { ...probe, each: probes },
    table,
  };
  const file = writeResults('peers', data);
  writeFileSync(file.replace(/\.json$/, '.txt'), `${table}\n`);
  process.stdout.write(
    `\n${table}\n${skipped ? `\n${skipped}\n` : ''}\nload average before ${load0.map((x) => x.toFixed(2)).join(' ')}, after ${load1.map((x) => x.toFixed(2)).join(' ')}; ${round((Date.now() - t0) / 1000)} s\n${file}\n`,
  );
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bench:peers failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
