// Prometheus metrics: one Registry per process holding the objects the mesh
// increments. `meshlb dev` runs many replicas in one process, so every metric
// carries a `cell` label. On hot paths take the labelled child once
// (`const c = m.tasksSubmitted.labels(cell)`) and `inc(n)` per batch: label
// lookup per task would cost more than the work it counts.
//
// Exposition is off by default; `startMetricsServer(port)` serves GET /metrics
// on loopback with a small connection cap and timeouts (nothing else).
import { createServer, type Server } from 'node:http';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface MeshMetrics {
  readonly registry: Registry;
  /** Tasks accepted at their home cell. */
  readonly tasksSubmitted: Counter<'cell'>;
  /** Terminal outcomes recorded at the home cell; status = completed|failed|cancelled|dead_lettered. */
  readonly tasksCompleted: Counter<'cell' | 'status'>;
  /** Re-dispatches after a lapsed lease or a failed attempt. */
  readonly tasksRetried: Counter<'cell'>;
  /** Requests refused; reason = invalid_argument|resource_exhausted|not_found|... */
  readonly rejected: Counter<'cell' | 'reason'>;
  /** Submit → agent start, seconds. */
  readonly dispatchLatency: Histogram<'cell'>;
  /** Submit → result recorded, seconds. */
  readonly taskLatency: Histogram<'cell'>;
  readonly queueDepth: Gauge<'cell'>;
  readonly inFlight: Gauge<'cell'>;
  readonly agentsConnected: Gauge<'cell'>;
  /** Child links connected (for cells with children). */
  readonly childLinks: Gauge<'cell'>;
  /** gRPC messages on links; direction = up|down, link = parent|child|agent. */
  readonly linkMessages: Counter<'cell' | 'direction' | 'link'>;
  /** Items per link message (tasks, results, acks coalesced into one gRPC message). */
  readonly linkBatchSize: Histogram<'cell' | 'link'>;
  readonly leader: Gauge<'cell'>;
}

const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024];

/** A fresh, independent set of metrics (tests; several meshes in one process). */
export function createMetrics(opts: { defaultMetrics?: boolean; prefix?: string } = {}): MeshMetrics {
  const registry = new Registry();
  const p = opts.prefix ?? 'meshlb_';
  if (opts.defaultMetrics) collectDefaultMetrics({ register: registry, prefix: p });
  const registers = [registry];
  return {
    registry,
    tasksSubmitted: new Counter({
      name: `${p}tasks_submitted_total`,
      help: 'Tasks accepted at their home cell',
      labelNames: ['cell'],
      registers,
    }),
    tasksCompleted: new Counter({
      name: `${p}tasks_completed_total`,
      help: 'Terminal task outcomes recorded at the home cell',
      labelNames: ['cell', 'status'],
      registers,
    }),
    tasksRetried: new Counter({
      name: `${p}tasks_retried_total`,
      help: 'Task re-dispatches (attempt > 1)',
      labelNames: ['cell'],
      registers,
    }),
    rejected: new Counter({
      name: `${p}requests_rejected_total`,
      help: 'Requests refused, by reason',
      labelNames: ['cell', 'reason'],
      registers,
    }),
    dispatchLatency: new Histogram({
      name: `${p}dispatch_latency_seconds`,
      help: 'Submit to agent start',
      labelNames: ['cell'],
      buckets: LATENCY_BUCKETS,
      registers,
    }),
    taskLatency: new Histogram({
      name: `${p}task_latency_seconds`,
      help: 'Submit to result recorded',
      labelNames: ['cell'],
      buckets: LATENCY_BUCKETS,
      registers,
    }),
    queueDepth: new Gauge({
      name: `${p}queue_depth`,
      help: 'Tasks queued in the cell',
      labelNames: ['cell'],
      registers,
    }),
    inFlight: new Gauge({
      name: `${p}in_flight`,
      help: 'Tasks dispatched and not yet resolved',
      labelNames: ['cell'],
      registers,
    }),
    agentsConnected: new Gauge({
      name: `${p}agents_connected`,
      help: 'Agent streams open at a node cell',
      labelNames: ['cell'],
      registers,
    }),
    childLinks: new Gauge({
      name: `${p}child_links_connected`,
      help: 'Child cells linked',
      labelNames: ['cell'],
      registers,
    }),
    linkMessages: new Counter({
      name: `${p}link_messages_total`,
      help: 'gRPC messages on links',
      labelNames: ['cell', 'direction', 'link'],
      registers,
    }),
    linkBatchSize: new Histogram({
      name: `${p}link_batch_size`,
      help: 'Items coalesced per link message',
      labelNames: ['cell', 'link'],
      buckets: BATCH_BUCKETS,
      registers,
    }),
    leader: new Gauge({
      name: `${p}is_leader`,
      help: '1 if this replica leads its cell',
      labelNames: ['cell'],
      registers,
    }),
  };
}

let processMetrics: MeshMetrics | undefined;

/** The process-wide metrics (with Node's default process metrics). */
export function metrics(): MeshMetrics {
  processMetrics ??= createMetrics({ defaultMetrics: true });
  return processMetrics;
}

export interface MetricsServer {
  readonly port: number;
  readonly url: string;
  close(): Promise<void>;
}

/**
 * Serve GET /metrics (Prometheus text format). Loopback by default; bounded:
 * at most 16 connections, 5 s timeouts, every other path 404.
 */
export async function startMetricsServer(
  port: number,
  opts: { host?: string; registry?: Registry } = {},
): Promise<MetricsServer> {
  const host = opts.host ?? '127.0.0.1';
  const registry = opts.registry ?? metrics().registry;
  const server: Server = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try GET /metrics\n');
      return;
    }
    registry
      .metrics()
      .then((body) => res.writeHead(200, { 'content-type': registry.contentType }).end(body))
      .catch((err: unknown) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`${String(err)}\n`));
  });
  server.maxConnections = 16;
  server.requestTimeout = 5_000;
  server.headersTimeout = 5_000;
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address();
  const actual = typeof addr === 'object' && addr ? addr.port : port;
  return {
    port: actual,
    url: `http://${host.includes(':') ? `[${host}]` : host}:${actual}/metrics`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
