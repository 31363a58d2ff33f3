// How main.ts runs a command: its module is imported only when it runs, so
// startup stays fast and a broken or missing module breaks only its own
// command (a CliFailure: exit 1 with the reason); /metrics runs beside it
// when asked. Apart from main.ts, which is the command table.
import type { MeterFactory } from '../mesh/meter.js';
import type { TracerFactory } from '../mesh/tracer.js';
import { tracesUrl, tracingFromEnv } from '../trace/config.js';
import type { Opts } from './flags.js';

/** A command's own failure: main() prints its message and exits 1. */
export class CliFailure extends Error {}

/** Import `./<file>` next to this module and return its exported function `name`. */
export async function load<T extends (opts: never) => Promise<number>>(file: string, name: string): Promise<T> {
  const spec = new URL(`./${file}`, import.meta.url).href;
  let mod: Record<string, unknown>;
  try {
    mod = (await import(spec)) as Record<string, unknown>;
  } catch (err) {
    throw new CliFailure(`cannot load ${file}: ${(err as Error).message}`);
  }
  const fn = mod[name];
  if (typeof fn !== 'function') throw new CliFailure(`${file} does not export ${name}()`);
  return fn as T;
}

/**
 * Run `fn`, optionally with a /metrics endpoint beside it; `fn` gets the meter
 * its replicas count into (undefined without --metrics-port).
 */
export async function withMetrics(o: Opts, fn: (meter?: MeterFactory) => Promise<number>): Promise<number> {
  if (typeof o.metricsPort !== 'number') return fn();
  const { metrics, startMetricsServer } = await import('../admin/metrics.js');
  const srv = await startMetricsServer(o.metricsPort, { host: (o.metricsHost as string | undefined) ?? '127.0.0.1' });
  process.stderr.write(`metrics at ${srv.url}\n`);
  try {
    return await fn(metrics().meter);
  } finally {
    await srv.close();
  }
}

/**
 * Run `fn` with /metrics and traces beside it, as asked: `fn` gets the meter
 * and the tracer its replicas report to (each undefined when off).
 */
export function withTelemetry(
  o: Opts,
  fn: (meter?: MeterFactory, tracer?: TracerFactory) => Promise<number>,
): Promise<number> {
  return withMetrics(o, (meter) => withTracing(o, (tracer) => fn(meter, tracer)));
}

/**
 * Run `fn` with task traces exported when --otlp-endpoint (or the
 * environment, trace/config.ts) asks; the OpenTelemetry SDK is loaded only
 * then. Spans still buffered are sent before it returns.
 */
export async function withTracing(o: Opts, fn: (tracer?: TracerFactory) => Promise<number>): Promise<number> {
  let opts;
  try {
    opts = tracingFromEnv({
      otlpEndpoint: o.otlpEndpoint as string | undefined,
      traceSample: o.traceSample as number | undefined,
    });
  } catch (err) {
    throw new CliFailure((err as Error).message);
  }
  if (opts.exporter === 'none') return fn();
  const [{ startTracing }, { cellTracer }] = await Promise.all([
    import('../trace/setup.js'),
    import('../trace/cell-tracer.js'),
  ]);
  const tracing = (await startTracing(opts))!;
  process.stderr.write(`traces to ${opts.endpoint ? tracesUrl(opts.endpoint) : 'the OTEL_EXPORTER_OTLP_* endpoint'}\n`);
  try {
    return await fn(cellTracer(tracing.tracer));
  } finally {
    // Send what is buffered, but never hang the exit on a collector that is gone.
    await Promise.race([tracing.shutdown(), new Promise((r) => setTimeout(r, SHUTDOWN_MS).unref())]);
  }
}

/** How long an exiting command waits for its last spans to be sent. */
const SHUTDOWN_MS = 3000;
