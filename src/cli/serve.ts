// `meshlb serve --topology FILE --cell PATH [--replica N]`: one replica of
// any cell, for multi-process runs. SIGTERM/SIGINT drain it: it stops taking
// work (summaries report no free slots, new dispatches are refused), waits a
// bounded time for what it holds to finish, then closes its links and server.
import { join } from 'node:path';
import { loadTopology, findReplica } from '../topology/parse.js';
import { cellSlug } from '../topology/paths.js';
import { logger } from '../util/log.js';
import { Replica } from '../mesh/replica.js';

export interface ServeOptions {
  topologyFile: string;
  cell: string;
  replica?: number;
  /**
   * This replica's own directory: its Raft log, hard state and snapshots
   * (lmdb). Default: <topology defaults.dataDir>/<cell slug>-<replica>, so
   * replicas of one topology on one machine never share one.
   */
  dataDir?: string;
  /** Bind host (overrides the topology address host), e.g. 0.0.0.0 in containers. */
  listenHost?: string;
  host?: string;
  /** Bind port (overrides the topology's). */
  port?: number;
  logLevel?: string;
  /** How long a drain may take on SIGTERM (default 10 s). */
  drainTimeoutMs?: number;
  /** For tests: resolve the started replica instead of waiting for a signal. */
  onStarted?: (replica: Replica) => void;
  /** For tests: stop when aborted, as on SIGTERM. */
  signal?: AbortSignal;
}

export async function runServe(opts: ServeOptions): Promise<number> {
  const log = logger({ component: 'serve', cell: opts.cell });
  const topology = loadTopology(opts.topologyFile);
  const { replica: spec } = findReplica(topology, opts.cell, opts.replica ?? 1);
  const [, portText] = splitAddress(spec.address);
  const dataDir = opts.dataDir ?? join(topology.defaults.dataDir, `${cellSlug(opts.cell)}-${opts.replica ?? 1}`);
  const replica = new Replica({
    dataDir,
    topology,
    cell: opts.cell,
    replica: opts.replica ?? 1,
    ...(opts.listenHost || opts.host ? { host: opts.listenHost ?? opts.host } : {}),
    port: opts.port ?? Number(portText),
  });
  await replica.start();
  log.info(
    { address: replica.address, replica: replica.cell.replicaId, tier: replica.cell.tier, dataDir },
    'replica serving',
  );
  opts.onStarted?.(replica);

  await new Promise<void>((resolve) => {
    const stop = (why: string): void => {
      log.info({ why }, 'stopping: draining');
      process.off('SIGTERM', onTerm);
      process.off('SIGINT', onInt);
      resolve();
    };
    const onTerm = (): void => stop('SIGTERM');
    const onInt = (): void => stop('SIGINT');
    process.on('SIGTERM', onTerm);
    process.on('SIGINT', onInt);
    if (opts.signal) {
      if (opts.signal.aborted) stop('aborted');
      else opts.signal.addEventListener('abort', () => stop('aborted'), { once: true });
    }
  });

  // Drain: refuse new work, let held attempts finish (bounded), then close.
  const cell = replica.cell;
  cell.draining = true;
  cell.parent?.capacityChanged();
  const by = Date.now() + (opts.drainTimeoutMs ?? 10_000);
  while (Date.now() < by && (cell.routes.size > 0 || cell.queue.size > 0)) {
    await new Promise((r) => setTimeout(r, 50));
  }
  const left = cell.routes.size + cell.queue.size;
  if (left > 0) log.warn({ left }, 'drain timed out; closing with attempts held (their homes retry them)');
  await replica.close(2000);
  log.info('replica closed');
  return 0;
}

function splitAddress(address: string): [string, string] {
  const i = address.lastIndexOf(':');
  return i < 0 ? [address, '0'] : [address.slice(0, i), address.slice(i + 1)];
}
