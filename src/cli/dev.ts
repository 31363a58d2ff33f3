// `meshlb dev`: the whole example hierarchy in one process over real gRPC on
// 127.0.0.1 (port 0 per replica), simulated agents spread over the node
// cells, a workload submitted at "/" through the client SDK. Each replica's
// live address goes to stderr first (the topology file's ports are not used),
// then progress (a live line on a terminal, plain lines when piped), and the
// summary on stdout (or one JSON object with --json).
//
// Accounting is taken from the home ledger of "/" (in-process): every task it
// accepted must reach exactly one terminal record; `lost` counts those that
// did not by the end (after waiting for the drain, bounded), and
// `duplicates_recorded` those with more than one terminal record.
import { fileURLToPath } from 'node:url';
import { credentials, status } from '@grpc/grpc-js';
import { build as buildHistogram } from 'hdr-histogram-js';
import { MeshClient, MeshClientError, type TaskInput } from '../client/index.js';
import { AgentServiceClient } from '../gen/meshlb/v1/agent.js';
import { TaskState } from '../gen/meshlb/v1/task.js';
import { startMesh } from '../dev/harness.js';
import type { MeterFactory } from '../mesh/meter.js';
import type { TracerFactory } from '../mesh/tracer.js';
import { SimAgent } from '../dev/sim-agent.js';
import { seededRandom } from '../policies/index.js';
import { loadTopology } from '../topology/parse.js';
import { packagePath } from '../util/package-root.js';
import type { Topology } from '../topology/types.js';
import { progressLines, progressTo } from './progress.js';
import { servePage } from './serve.js';

export interface DevOptions {
  tasks?: number;
  agents?: number;
  /** Submissions per second; 0 = as fast as the mesh admits. */
  rate?: number;
  /** Stop submitting after this many seconds (0 = when `tasks` are submitted). */
  durationS?: number;
  seed?: number;
  json?: boolean;
  topologyFile?: string;
  serviceTimeMs?: number;
  failureRate?: number;
  /** Slots per simulated agent (default 8). */
  slots?: number;
  /** 'logged' (default) or 'none'. */
  durability?: 'logged' | 'none';
  /** How long to wait for accepted tasks to end after the last submit (default 30 s). */
  drainTimeoutMs?: number;
  /** Progress line period (default 500 ms; 0 = none). */
  progressMs?: number;
  /** Where the summary line goes (default stdout). */
  stdout?: (s: string) => void;
  /** Where addresses and progress lines go, one line per call (default stderr: a live line on a terminal). */
  stderr?: (s: string) => void;
  /** Count every cell into these metrics (--metrics-port). */
  meter?: MeterFactory;
  /** Trace the tasks crossing every cell (--otlp-endpoint). */
  tracer?: TracerFactory;
  /** Serve the live page (as the root's replica sees the mesh) on this port while it runs (--http-port). */
  httpPort?: number;
}

export interface DevReport {
  submitted: number;
  completed: number;
  failed: number;
  dead_lettered: number;
  cancelled: number;
  lost: number;
  duplicates_recorded: number;
  rejected_submits: number;
  throughput_per_s: number;
  latency_ms: { p50: number; p90: number; p99: number; max: number };
  elapsed_s: number;
  agents: number;
  cells: number;
  seed: number;
  max_agent_over_slots: number;
}

/**
 * The topology file given, else the package's deploy/topologies/example.yaml (found from the package root, so
 * also from dist/ and an installed package): the one source for dev, sim and deploy.
 */
function defaultTopology(file?: string): Topology {
  return loadTopology(file ?? packagePath('deploy', 'topologies', 'example.yaml'));
}

export async function runDev(opts: DevOptions = {}): Promise<number> {
  const report = await devRun(opts);
  const out = opts.stdout ?? ((s: string) => process.stdout.write(s + '\n'));
  if (opts.json) out(JSON.stringify(report));
  else {
    out(
      `meshlb dev: ${report.submitted} submitted, ${report.completed} completed, ${report.failed} failed, ` +
        `${report.dead_lettered} dead-lettered, ${report.lost} lost, ${report.duplicates_recorded} duplicates — ` +
        `${report.throughput_per_s} tasks/s, p50 ${report.latency_ms.p50} ms, p99 ${report.latency_ms.p99} ms ` +
        `(${report.cells} cells, ${report.agents} agents, seed ${report.seed}, ${report.elapsed_s} s)`,
    );
  }
  return report.lost === 0 && report.duplicates_recorded === 0 ? 0 : 1;
}

export async function devRun(opts: DevOptions = {}): Promise<DevReport> {
  // The defaults are the demo `npm start` shows: ~5 s of paced traffic with
  // some failing attempts, so progress, retries and the summary are all seen.
  // `--rate 0` submits as fast as the mesh admits.
  const tasks = opts.tasks ?? 10_000;
  const agentCount = opts.agents ?? 40;
  const seed = opts.seed ?? 1;
  const rate = opts.rate ?? 2000;
  const slots = opts.slots ?? 8;
  const progressMs = opts.progressMs ?? 500;
  const say = opts.stderr ?? ((s: string) => process.stderr.write(s + '\n'));
  const progress = opts.stderr ? progressLines(opts.stderr) : progressTo(process.stderr);
  const random = seededRandom(seed);
  const topology = defaultTopology(opts.topologyFile);
  const mesh = await startMesh(topology, {
    seed,
    prefetchRatio: 1,
    ...(opts.meter ? { meter: opts.meter } : {}),
    ...(opts.tracer ? { tracer: opts.tracer } : {}),
  });
  const root = mesh.replicas.get('/')!.cell;
  // Every replica listens on a port of its own choosing: say where, so grpcurl, an agent
  // or a client can reach this mesh while it runs.
  say(`meshlb dev: ${topology.name}, ${mesh.replicas.size} cells, one replica each, listening at:`);
  const width = Math.max(...[...mesh.replicas.keys()].map((p) => p.length));
  for (const [path, r] of mesh.replicas)
    say(`  ${path.padEnd(width)}  ${r.address}  ${r.cell.tier}${r.cell.agents ? ' (agents connect here)' : ''}`);
  const page = opts.httpPort === undefined ? undefined : await servePage(mesh.replicas.get('/')!, opts.httpPort);
  if (page) say(`  live page at ${page.url}`);
  if (process.env.MESHLB_DEV_TRACE) {
    const t00 = performance.now();
    const iv = setInterval(() => {
      const parts: string[] = [];
      for (const [p, r] of mesh.replicas)
        if (p.split('/').length <= 3) parts.push(`${p}:q${r.cell.queue.size}/r${r.cell.routes.size}`);
      say(`${(performance.now() - t00).toFixed(0)} ${parts.join(' ')} done ${completed}`);
    }, 100);
    iv.unref();
  }

  // Accounting from the home ledger.
  const acceptedAt = new Map<string, number>();
  const terminalCount = new Map<string, number>();
  const hist = buildHistogram({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 3_600_000_000,
    numberOfSignificantValueDigits: 3,
  });
  let completed = 0;
  let failed = 0;
  let dead = 0;
  let cancelled = 0;
  root.ledger.onChange((rec) => {
    if (rec.attempt === 0 && rec.state === TaskState.TASK_STATE_QUEUED && !acceptedAt.has(rec.id)) {
      acceptedAt.set(rec.id, performance.now());
    }
  });
  root.ledger.onTerminal((rec) => {
    terminalCount.set(rec.id, (terminalCount.get(rec.id) ?? 0) + 1);
    const t0 = acceptedAt.get(rec.id);
    if (t0 !== undefined) hist.recordValue(Math.max(1, Math.round((performance.now() - t0) * 1000)));
    if (rec.state === TaskState.TASK_STATE_COMPLETED) completed++;
    else if (rec.state === TaskState.TASK_STATE_FAILED) failed++;
    else if (rec.state === TaskState.TASK_STATE_DEAD_LETTERED) dead++;
    else cancelled++;
  });

  // Simulated agents, round-robin over the node cells, one shared connection per node.
  const clients = new Map<string, AgentServiceClient>();
  const agents: SimAgent[] = [];
  for (let i = 0; i < agentCount; i++) {
    const node = mesh.nodes[i % mesh.nodes.length]!;
    let client = clients.get(node);
    if (!client) clients.set(node, (client = new AgentServiceClient(mesh.address(node), credentials.createInsecure())));
    agents.push(
      new SimAgent({
        address: mesh.address(node),
        agentId: `sim-${i}`,
        kinds: ['sim'],
        slots,
        serviceTimeMs: opts.serviceTimeMs ?? 2,
        failureRate: opts.failureRate ?? 0.02,
        random: seededRandom(seed * 7919 + i),
        client,
      }),
    );
  }
  await Promise.all(agents.map((a) => a.start()));
  await mesh.ready();

  const client = new MeshClient({ address: mesh.address('/'), deadlineMs: 30_000 });
  const t0 = performance.now();
  let submitted = 0;
  let rejected = 0;
  let stopSubmitting = false;
  const ticker =
    progressMs > 0
      ? setInterval(() => {
          const el = (performance.now() - t0) / 1000;
          progress.line(
            `[dev] ${el.toFixed(1)}s submitted ${submitted} completed ${completed} failed ${failed + dead} ` +
              `rate ${Math.round(completed / Math.max(el, 0.001))}/s p50 ${(hist.getValueAtPercentile(50) / 1000).toFixed(1)}ms ` +
              `p99 ${(hist.getValueAtPercentile(99) / 1000).toFixed(1)}ms`,
          );
        }, progressMs)
      : undefined;
  const durationTimer =
    opts.durationS && opts.durationS > 0 ? setTimeout(() => (stopSubmitting = true), opts.durationS * 1000) : undefined;

  const batchSize = rate > 0 ? Math.max(1, Math.min(500, Math.ceil(rate / 100))) : 500;
  const spec = (i: number): TaskInput => ({
    kind: 'sim',
    payload: `t${i}`,
    priority: (['normal', 'high', 'low', 'critical'] as const)[Math.floor(random() * 4)]!,
    tenant: `tenant-${i % 4}`,
    durability: opts.durability ?? 'logged',
    idempotencyKey: `dev-${seed}-${i}`,
  });
  // Keep a bounded number of batches in flight; pace by the rate if any.
  const maxInFlightBatches = 4;
  let inFlight = 0;
  let next = 0;
  await new Promise<void>((resolve) => {
    const pump = (): void => {
      while (!stopSubmitting && next < tasks && inFlight < maxInFlightBatches) {
        if (rate > 0) {
          const due = ((next + batchSize) / rate) * 1000;
          const wait = due - (performance.now() - t0);
          if (wait > 0) {
            setTimeout(pump, wait);
            return;
          }
        }
        const from = next;
        const n = Math.min(batchSize, tasks - next);
        next += n;
        inFlight++;
        const batch = Array.from({ length: n }, (_, k) => spec(from + k));
        client
          .submitBatch(batch)
          .then((items) => {
            for (const it of items) {
              if (it.ok) submitted++;
              else rejected++;
            }
          })
          .catch((e: unknown) => {
            // Saturated: put the batch back after the hint (idempotency keys make it safe).
            if (e instanceof MeshClientError && e.code === status.RESOURCE_EXHAUSTED) {
              next = Math.min(next, from);
              return new Promise((r) => setTimeout(r, e.retryAfterMs ?? 100));
            }
            rejected += n;
            return undefined;
          })
          .finally(() => {
            inFlight--;
            if ((next >= tasks || stopSubmitting) && inFlight === 0) resolve();
            else pump();
          });
      }
      if ((next >= tasks || stopSubmitting) && inFlight === 0) resolve();
    };
    pump();
  });
  if (durationTimer) clearTimeout(durationTimer);

  // Drain: wait (bounded) for every accepted task to end.
  const drainBy = performance.now() + (opts.drainTimeoutMs ?? 30_000);
  while (root.ledger.liveCount > 0 && performance.now() < drainBy) await new Promise((r) => setTimeout(r, 10));
  const elapsed = (performance.now() - t0) / 1000;
  if (ticker) clearInterval(ticker);
  progress.done();

  let duplicates = 0;
  let lost = 0;
  for (const id of acceptedAt.keys()) {
    const n = terminalCount.get(id) ?? 0;
    if (n === 0) lost++;
    else if (n > 1) duplicates++;
  }
  // How many tasks past its slots the worst agent ever held: 0 when none was over.
  let over = 0;
  for (const r of mesh.replicas.values()) if (r.cell.agents) over = Math.max(over, r.cell.agents.maxOverSlots);
  for (const a of agents) over = Math.max(over, a.maxHeld - slots);

  if (process.env.MESHLB_DEV_TRACE) {
    let msgs = 0;
    let items = 0;
    for (const r of mesh.replicas.values()) {
      const c = r.cell;
      for (const l of c.children?.links.values() ?? []) {
        msgs += l.batcher.messages;
        items += l.batcher.items;
      }
      for (const s of c.agents?.byId.values() ?? []) {
        msgs += s.batcher.messages;
        items += s.batcher.items;
      }
      const pb = (c.parent as unknown as { batcher?: { messages: number; items: number } } | undefined)?.batcher;
      if (pb) {
        msgs += pb.messages;
        items += pb.items;
      }
    }
    say(`batching: ${msgs} messages carried ${items} items (${(items / Math.max(1, msgs)).toFixed(1)} per message)`);
  }
  client.close();
  for (const a of agents) a.end();
  for (const c of clients.values()) c.close();
  await page?.close();
  await mesh.close();

  const q = (p: number): number => Math.round(hist.getValueAtPercentile(p) / 10) / 100;
  const report: DevReport = {
    submitted: acceptedAt.size,
    completed,
    failed,
    dead_lettered: dead,
    cancelled,
    lost,
    duplicates_recorded: duplicates,
    rejected_submits: rejected,
    throughput_per_s: Math.round((completed + failed + dead) / Math.max(elapsed, 0.001)),
    latency_ms: { p50: q(50), p90: q(90), p99: q(99), max: Math.round(hist.maxValue / 10) / 100 },
    elapsed_s: Math.round(elapsed * 100) / 100,
    agents: agentCount,
    cells: topology.cells.length,
    seed,
    max_agent_over_slots: over,
  };
  hist.destroy();
  return report;
}

// `npx tsx src/cli/dev.ts [--tasks N] [--agents N] [--json]` works without main.ts.
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const arg = (name: string): string | undefined => {
    const i = process.argv.indexOf(`--${name}`);
    return i >= 0 ? process.argv[i + 1] : undefined;
  };
  const num = (name: string): number | undefined => (arg(name) !== undefined ? Number(arg(name)) : undefined);
  runDev({
    tasks: num('tasks'),
    agents: num('agents'),
    rate: num('rate'),
    seed: num('seed'),
    serviceTimeMs: num('service-time-ms'),
    failureRate: num('failure-rate'),
    slots: num('slots'),
    durability: arg('durability') === 'none' ? 'none' : 'logged',
    json: process.argv.includes('--json'),
  }).then(
    (code) => process.exit(code),
    (e: unknown) => {
      process.stderr.write(`meshlb dev failed: ${e instanceof Error ? e.stack : String(e)}\n`);
      process.exit(1);
    },
  );
}
