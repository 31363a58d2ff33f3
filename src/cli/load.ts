// How main.ts runs a command: its module is imported only when it runs, so
// startup stays fast and a broken or missing module breaks only its own
// command (a CliFailure: exit 1 with the reason); /metrics runs beside it
// when asked. Apart from main.ts, which is the command table.
import type { MeterFactory } from '../mesh/meter.js';
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
