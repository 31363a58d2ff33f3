// `meshlb status --address HOST:PORT`: the mesh as AdminService GetMeshStatus
// shows it, asked at any replica, printed as a tree: per cell its health,
// leader, agents, free slots, queue depth, tasks in flight and rates. Rates
// need two answers: it asks, waits --interval seconds, asks again, and prints
// the second answer with the change per second. Exit 0 when every cell is
// healthy, 1 otherwise (or when the replica does not answer). On a secured
// mesh it takes the callers' flags (--ca, --token-file; an admin-read token).
import { credentials, Metadata, type ServiceError } from '@grpc/grpc-js';
import { AdminServiceClient, CellHealth, type CellStatus, type GetMeshStatusResponse } from '../gen/meshlb/v1/admin.js';
import { callerCredentials, type CallerSecurity } from '../security/caller.js';
import { CliFailure } from './load.js';

export interface StatusOptions {
  address: string;
  /** Seconds between the two answers rates are taken from (0: one answer, no rates). */
  intervalS?: number;
  json?: boolean;
  timeoutMs?: number;
  /** TLS and a token for a secured mesh (--ca, --token-file...; docs/security.md). */
  security?: CallerSecurity;
  stdout?: (s: string) => void;
}

export interface CellRates {
  /** Per second, between the two answers (undefined with one answer). */
  accepted?: number;
  completed?: number;
  failed?: number;
  deadLettered?: number;
  dispatched?: number;
}

function ask(client: AdminServiceClient, timeoutMs: number): Promise<GetMeshStatusResponse> {
  return new Promise((resolve, reject) =>
    client.getMeshStatus(
      { subtree: false, cell: '', hops: 0 },
      new Metadata(),
      { deadline: Date.now() + timeoutMs },
      (err: ServiceError | null, res?: GetMeshStatusResponse) => (err ? reject(err) : resolve(res!)),
    ),
  );
}

export async function runStatus(o: StatusOptions): Promise<number> {
  const out = o.stdout ?? ((s: string) => process.stdout.write(s + '\n'));
  const timeoutMs = o.timeoutMs ?? 5_000;
  const intervalS = o.intervalS ?? 1;
  const client = new AdminServiceClient(o.address, callerCredentials(o.security ?? {}) ?? credentials.createInsecure());
  let first: GetMeshStatusResponse;
  let second: GetMeshStatusResponse | undefined;
  try {
    first = await ask(client, timeoutMs);
    if (intervalS > 0) {
      await new Promise((r) => setTimeout(r, intervalS * 1000));
      second = await ask(client, timeoutMs);
    }
  } catch (err) {
    const e = err as ServiceError;
    throw new CliFailure(`${o.address} did not answer GetMeshStatus: ${e.details || e.message}`);
  } finally {
    client.close();
  }
  const now = second ?? first;
  const rates = ratesBetween(second ? first : undefined, now);
  if (o.json) {
    out(
      JSON.stringify({
        answered_by: now.answeredBy,
        at_unix_ms: now.atUnixMs,
        partial: now.partial,
        cells: now.cells.map((c) => ({ ...c, health: CellHealth[c.health], rates: rates.get(c.path) ?? {} })),
      }),
    );
  } else {
    out(formatStatus(now, rates, second ? intervalS : 0));
  }
  return now.cells.every((c) => c.health === CellHealth.CELL_HEALTH_HEALTHY) ? 0 : 1;
}

/** Per cell, the change per second of its counters between two answers (by each cell's own clock). */
export function ratesBetween(
  before: GetMeshStatusResponse | undefined,
  now: GetMeshStatusResponse,
): Map<string, CellRates> {
  const out = new Map<string, CellRates>();
  const prior = new Map(before?.cells.map((c) => [c.path, c]) ?? []);
  for (const c of now.cells) {
    const p = prior.get(c.path);
    const dt = p ? (c.observedUnixMs - p.observedUnixMs) / 1000 : 0;
    if (!p || dt <= 0 || c.health === CellHealth.CELL_HEALTH_UNREACHABLE) {
      out.set(c.path, {});
      continue;
    }
    const per = (a: number, b: number): number => Math.max(0, (a - b) / dt);
    out.set(c.path, {
      accepted: per(c.tasksAccepted, p.tasksAccepted),
      completed: per(c.tasksCompleted, p.tasksCompleted),
      failed: per(c.tasksFailed, p.tasksFailed),
      deadLettered: per(c.tasksDeadLettered, p.tasksDeadLettered),
      dispatched: per(c.dispatched, p.dispatched),
    });
  }
  return out;
}

const HEALTH: Record<number, string> = {
  [CellHealth.CELL_HEALTH_HEALTHY]: 'healthy',
  [CellHealth.CELL_HEALTH_DEGRADED]: 'DEGRADED',
  [CellHealth.CELL_HEALTH_UNREACHABLE]: 'UNREACHABLE',
};

const rate = (r: number | undefined): string => (r === undefined ? '-' : r >= 100 ? r.toFixed(0) : r.toFixed(1));

/** The tree as a table, then each unhealthy cell's problems. */
export function formatStatus(s: GetMeshStatusResponse, rates: ReadonlyMap<string, CellRates>, overS: number): string {
  const header = [
    'CELL',
    'HEALTH',
    'LEADER',
    'AGENTS',
    'FREE/SLOTS',
    'QUEUE',
    'IN-FLIGHT',
    'DONE/S',
    'FAIL/S',
    'DISP/S',
    'COMPLETED',
    'DEAD',
  ];
  const rows = s.cells.map((c) => {
    const r = rates.get(c.path) ?? {};
    const fails = r.failed === undefined ? undefined : r.failed + (r.deadLettered ?? 0);
    return [
      indent(s.cells, c) + c.path + (c.draining ? ' (draining)' : ''),
      HEALTH[c.health] ?? 'unknown',
      c.leaderId ? `${c.leaderId} ${c.leaderAddress || c.address}` : '-',
      `${c.healthyAgents}/${c.agents}`,
      `${c.freeSlots}/${c.totalSlots}`,
      String(c.queueDepth),
      String(c.inFlight),
      rate(r.completed),
      rate(fails),
      rate(r.dispatched),
      String(c.tasksCompleted),
      String(c.tasksDeadLettered),
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cols: string[]): string =>
    cols
      .map((v, i) => (i < 3 ? v.padEnd(widths[i]!) : v.padStart(widths[i]!)))
      .join('  ')
      .trimEnd();
  const lines = [
    `mesh status from ${s.answeredBy || '?'}${overS > 0 ? `, rates over ${overS} s` : ' (one answer: no rates; --interval > 0 for rates)'}`,
  ];
  if (s.partial) lines.push(`partial: ${s.partial}`);
  lines.push(line(header), ...rows.map(line));
  const problems = s.cells.filter((c) => c.problems.length > 0);
  if (problems.length > 0) {
    lines.push('', 'problems:');
    for (const c of problems) for (const p of c.problems) lines.push(`  ${c.path}: ${p}`);
  }
  return lines.join('\n');
}

/** Tree guides: a cell's depth below the first cell of the answer. */
function indent(cells: readonly CellStatus[], c: CellStatus): string {
  const top = cells[0]?.path ?? '/';
  const depthOf = (p: string): number => (p === '/' ? 0 : p.split('/').length - 1);
  const d = depthOf(c.path) - depthOf(top);
  return d <= 0 ? '' : '  '.repeat(d - 1) + '└ ';
}
