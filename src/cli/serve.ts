// `meshlb serve --topology FILE --cell PATH [--replica N] [--join]`: one
// replica of any cell, for multi-process runs. SIGTERM/SIGINT stop it
// gracefully (stopReplica): a leader first hands its cell's leadership to a
// caught-up follower (bounded), so the cell keeps deciding with no election;
// then the replica stops taking work (summaries report no free slots, new
// dispatches are refused), waits a bounded time for what it still holds to
// finish, and closes its links and server. A follower has nothing to hand
// over or drain and exits at once.
import { DataDirError } from '../mesh/data-dir.js';
import { CliFailure } from './load.js';
import { dirname, join, resolve } from 'node:path';
import { replicaSecurity, type ReplicaSecurity } from '../security/replica-security.js';
import { loadTopology, findReplica } from '../topology/parse.js';
import { cellSlug } from '../topology/paths.js';
import { logger } from '../util/log.js';
import { Replica } from '../mesh/replica.js';
import { startPageServer, type PageServer } from '../admin/page-server.js';
import type { Handover } from '../mesh/leadership.js';
import type { MeterFactory } from '../mesh/meter.js';
import type { TracerFactory } from '../mesh/tracer.js';
import type { Logger } from '../util/log.js';
import type { Topology } from '../topology/types.js';
import { cellHeapFlags } from '../util/heap-flags.js';

export interface ServeOptions {
  topologyFile: string;
  cell: string;
  replica?: number;
  /**
   * This replica's own directory: its Raft log, hard state and snapshots
   * (lmdb). Default: defaultDataDir(), so replicas on one machine never share
   * one, whether of one topology or of two.
   */
  dataDir?: string;
  /** Bind host (overrides the topology address host), e.g. 0.0.0.0 in containers. */
  listenHost?: string;
  host?: string;
  /** Bind port (overrides the topology's). */
  port?: number;
  logLevel?: string;
  /**
   * Joining a running Raft group: start with an empty log, to be added with
   * AdminService AddReplica (docs/topology.md). Harmless once the data dir
   * holds a log.
   */
  join?: boolean;
  /** Count the replica's cell into these metrics (--metrics-port). */
  meter?: MeterFactory;
  /** Trace the tasks crossing the replica's cell (--otlp-endpoint). */
  tracer?: TracerFactory;
  /** Serve the live page and its JSON on this port (--http-port; 0 = any free port). */
  httpPort?: number;
  /** Bind host for the live page (default 127.0.0.1). */
  httpHost?: string;
  /** How long a drain may take on SIGTERM (default 10 s). */
  drainTimeoutMs?: number;
  /** How long a leader may take to hand over on SIGTERM (default 2 s). */
  handOverTimeoutMs?: number;
  /** For tests: resolve the started replica instead of waiting for a signal. */
  onStarted?: (replica: Replica) => void;
  /** For tests: stop when aborted, as on SIGTERM. */
  signal?: AbortSignal;
}

/** The topology's `security:` for this replica (docs/security.md); a bad file is a one-line CLI failure. */
function secured(topology: Topology, opts: ServeOptions): ReplicaSecurity | undefined {
  try {
    return replicaSecurity({
      topology,
      cell: opts.cell,
      replica: opts.replica ?? 1,
      baseDir: dirname(resolve(opts.topologyFile)),
    });
  } catch (err) {
    throw new CliFailure(`security: ${(err as Error).message}`);
  }
}

/** A replica, or a one-line CLI failure when its data dir belongs to someone else. */
function newReplica(o: ConstructorParameters<typeof Replica>[0]): Replica {
  try {
    return new Replica(o);
  } catch (err) {
    if (err instanceof DataDirError) throw new CliFailure(err.message);
    throw err;
  }
}

export async function runServe(opts: ServeOptions): Promise<number> {
  cellHeapFlags();
  const log = logger({ component: 'serve', cell: opts.cell });
  const topology = loadTopology(opts.topologyFile);
  const { replica: spec } = findReplica(topology, opts.cell, opts.replica ?? 1);
  const [, portText] = splitAddress(spec.address);
  const dataDir = opts.dataDir ?? defaultDataDir(topology, opts.cell, opts.replica ?? 1);
  const security = secured(topology, opts);
  const replica = newReplica({
    ...(security ? { security } : {}),
    dataDir,
    ...(opts.join ? { join: true } : {}),
    topology,
    cell: opts.cell,
    replica: opts.replica ?? 1,
    ...(opts.listenHost || opts.host ? { host: opts.listenHost ?? opts.host } : {}),
    port: opts.port ?? Number(portText),
    ...(opts.meter ? { meter: opts.meter } : {}),
    ...(opts.tracer ? { tracer: opts.tracer } : {}),
  });
  await replica.start();
  log.info(
    { address: replica.address, replica: replica.cell.replicaId, tier: replica.cell.tier, dataDir },
    'replica serving',
  );
  const page = opts.httpPort === undefined ? undefined : await servePage(replica, opts.httpPort, opts.httpHost);
  if (page) log.info({ url: page.url }, 'live page serving');
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

  await stopReplica(replica, {
    log,
    ...(opts.drainTimeoutMs !== undefined ? { drainTimeoutMs: opts.drainTimeoutMs } : {}),
    ...(opts.handOverTimeoutMs !== undefined ? { handOverTimeoutMs: opts.handOverTimeoutMs } : {}),
  });
  await page?.close();
  log.info('replica closed');
  return 0;
}

/**
 * <defaults.dataDir>/<mesh name>-<mesh id>/<cell slug>-<replica>, e.g.
 * .data/example-8ac119a12fc792ec/root-1. The mesh is part of the path because
 * a replica opens whatever log it finds there: without it, `/`'s replica 1 of
 * ha.yaml started after example.yaml's (both .data/root-1) took over that
 * one-voter group and led it alone, beside ha.yaml's real root group.
 */
export function defaultDataDir(topology: Topology, cell: string, replica: number): string {
  return join(topology.defaults.dataDir, `${topology.name}-${topology.id}`, `${cellSlug(cell)}-${replica}`);
}

export interface StopOptions {
  log: Logger;
  /** Bound on handing leadership over (default 2 s); past it the replica drains and stops anyway. */
  handOverTimeoutMs?: number;
  /** Bound on the drain (default 10 s). */
  drainTimeoutMs?: number;
  /** Bound on the server's graceful shutdown (default 2 s). */
  graceMs?: number;
}

export interface StopReport {
  /** Set when this replica led and handed leadership over. */
  handedOver?: Handover;
  /** Attempts and queued items still held when the drain ended (their homes retry them). */
  left: number;
}

/**
 * The SIGTERM path: hand leadership over (a leader of a group with another
 * voter), drain, close. Bounded by handOverTimeoutMs + drainTimeoutMs +
 * graceMs. A leader that hands over stops leading at once: its queue and
 * routes go with its soft state, and the new leader adopts the attempts it
 * had out from the children's hellos, so the drain below has nothing left.
 */
export async function stopReplica(replica: Replica, o: StopOptions): Promise<StopReport> {
  const cell = replica.cell;
  const report: StopReport = { left: 0 };
  const self = cell.replicaId;
  const otherVoter = cell.ledgerLog.members().some((m) => m.voter && m.id !== self);
  if (cell.leading && otherVoter) {
    try {
      report.handedOver = await cell.ledgerLog.transferLeader(undefined, o.handOverTimeoutMs ?? 2000);
      o.log.info({ ...report.handedOver }, 'leadership handed over before stopping');
    } catch (err) {
      o.log.warn({ err: String(err) }, 'leadership hand-over failed; draining as leader (the others elect)');
    }
  }
  // Drain: refuse new work, let held attempts finish (bounded), then close.
  cell.draining = true;
  cell.parent?.capacityChanged();
  const by = Date.now() + (o.drainTimeoutMs ?? 10_000);
  while (Date.now() < by && (cell.routes.size > 0 || cell.queue.size > 0)) {
    await new Promise((r) => setTimeout(r, 50));
  }
  report.left = cell.routes.size + cell.queue.size;
  if (report.left > 0) {
    o.log.warn({ left: report.left }, 'drain timed out; closing with attempts held (their homes retry them)');
  }
  await replica.close(o.graceMs ?? 2000);
  return report;
}

/** The live page beside a replica; a port in use is a one-line CLI failure. */
export async function servePage(replica: Replica, port: number, host = '127.0.0.1'): Promise<PageServer> {
  try {
    return await startPageServer(replica.admin, port, { host });
  } catch (err) {
    await replica.close(0);
    throw new CliFailure(`--http-port ${port} on ${host}: ${(err as Error).message}`);
  }
}

function splitAddress(address: string): [string, string] {
  const i = address.lastIndexOf(':');
  return i < 0 ? [address, '0'] : [address.slice(0, i), address.slice(i + 1)];
}
