// Prometheus metrics: one Registry per process. `metrics()` is the process's
// (with Node's process metrics); `createMetrics()` an independent set (tests,
// several meshes in one process). A cell counts into a set when its replica
// is given the set's `meter` (CellOptions.meter; `meshlb serve` and `meshlb
// dev` do so with --metrics-port). The families are in metric-families.ts,
// how a cell is counted in cell-metrics.ts.
//
// Exposition is off by default; `startMetricsServer(port)` serves GET /metrics
// on loopback with a small connection cap and timeouts (nothing else).
import { createServer, type Server } from 'node:http';
import { Registry, collectDefaultMetrics } from 'prom-client';
import type { MeterFactory } from '../mesh/meter.js';
import { CellMeters } from './cell-metrics.js';
import { createFamilies, type MeshFamilies } from './metric-families.js';
import { registerPreemptionCounter } from './preemption-metrics.js';
import { registerRefusalCounters } from './refusal-metrics.js';
import { registerFlowGauges } from './flow-metrics.js';
import { registerQueueGauges } from './queue-metrics.js';
import { registerForecastGauges } from './forecast-metrics.js';
import { listenBounded } from './http-listen.js';

export { BATCH_BUCKETS, LATENCY_BUCKETS } from './metric-families.js';

export interface MeshMetrics extends MeshFamilies {
  readonly registry: Registry;
  /** Give it to a replica (CellOptions.meter) to count its cell here. */
  readonly meter: MeterFactory;
}

/** A fresh, independent set of metrics (tests; several meshes in one process). */
export function createMetrics(opts: { defaultMetrics?: boolean; prefix?: string } = {}): MeshMetrics {
  const registry = new Registry();
  const p = opts.prefix ?? 'meshlb_';
  if (opts.defaultMetrics) collectDefaultMetrics({ register: registry, prefix: p });
  // Gauges are read from the cells only when scraped, by then `cells` is set.
  const families = createFamilies(
    registry,
    p,
    (name, gauge) => cells.collect(name, gauge),
    (states, trips) => cells.collectBreakers(states, trips),
  );
  const cells = new CellMeters(families);
  registerFlowGauges(registry, p, () => cells.byPath());
  registerQueueGauges(registry, p, () => cells.byPath());
  registerPreemptionCounter(registry, p, () => cells.byPath());
  registerRefusalCounters(registry, p, () => cells.byPath());
  registerForecastGauges(registry, p, () => cells.byPath());
  return { ...families, registry, meter: cells.factory };
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
  const l = await listenBounded(server, port, host, 16);
  return { port: l.port, url: `${l.base}/metrics`, close: l.close };
}
