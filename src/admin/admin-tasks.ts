// AdminService calls about the tasks a cell is home for, run on the cell's
// leader (admin-route.ts brings them there): list with filters and pages,
// get with where the task is now, cancel, retry, the dead letters and their
// replay. A replay is the ledger's `replayed` command (ledger.ts): a task that
// ended FAILED, DEAD_LETTERED or CANCELLED starts a new attempt series,
// replicated like any decision of the cell; then this leader queues it.
//
// Paging: tasks are ordered by (submit time, id), a total order every replica
// of the cell shares, so a page token is the last task's key and the next page
// starts after it, wherever the next call lands and whatever was evicted
// meanwhile. A page is picked in one pass over the ledger keeping the
// page_size + 1 first keys (O(tasks), nothing sorted in full).
import { status } from '@grpc/grpc-js';
import type {
  GetTaskResponse,
  ListTasksRequest,
  ListTasksResponse,
  ReplayDeadLettersRequest,
  ReplayDeadLettersResponse,
  RetryTaskResponse,
  TaskBrief,
} from '../gen/meshlb/v1/admin.js';
import { TaskState } from '../gen/meshlb/v1/task.js';
import type { Cell } from '../mesh/cell.js';
import {
  isLogged,
  isTerminal,
  toProtoTask,
  type ApplyResult,
  type LedgerCommand,
  type TaskEntry,
  type TaskRecord,
} from '../mesh/ledger.js';
import { nextAttemptId, routeKey } from '../mesh/types.js';
import { checkLength, invalidArgument, MeshError, notFound } from '../util/errors.js';
import { clip, LIMITS, overCount } from '../util/limits.js';
import { toMeshError } from '../util/raft-status.js';

export const DEFAULT_PAGE_SIZE = 100;
const failedPrecondition = (msg: string) => new MeshError(status.FAILED_PRECONDITION, msg);
const stateName = (s: TaskState): string => TaskState[s] ?? String(s);

export function taskBrief(cell: Cell, rec: TaskRecord): TaskBrief {
  return {
    id: rec.id,
    kind: rec.spec.kind,
    tenant: rec.spec.tenant,
    priority: rec.spec.priority,
    state: rec.state,
    attempt: rec.attempt,
    failures: rec.failures,
    maxAttempts: cell.ledger.maxAttempts(rec),
    homeCell: rec.homeCell,
    createdUnixMs: Math.round(rec.createdMs),
    updatedUnixMs: Math.round(rec.updatedMs),
    reason: rec.reason,
    replays: rec.replays,
    payloadBytes: rec.spec.payload.length,
    idempotencyKey: rec.spec.idempotencyKey,
    location: location(cell, rec),
  };
}

export function checkTaskId(id: string): void {
  if (!id) throw invalidArgument('task_id is required');
  checkLength('task_id', id, LIMITS.taskId);
}

function record(cell: Cell, id: string): TaskRecord {
  checkTaskId(id);
  const rec = cell.ledger.get(id);
  if (!rec) throw notFound(`task ${clip(id)} not found at cell ${cell.path} (its home, or evicted after it ended)`);
  return rec;
}

/** A page of the cell's tasks (ListTasks, ListDeadLetters). */
export function listTasks(cell: Cell, req: ListTasksRequest): ListTasksResponse {
  checkLength('kind', req.kind, LIMITS.kind);
  checkLength('tenant', req.tenant, LIMITS.tenant);
  checkLength('page_token', req.pageToken, LIMITS.pageToken);
  if (req.pageSize > LIMITS.adminPageSize) {
    throw invalidArgument(`page_size is ${req.pageSize}, over the limit of ${LIMITS.adminPageSize}`);
  }
  const size = req.pageSize || DEFAULT_PAGE_SIZE;
  const states = new Set(req.states);
  const after = req.pageToken ? decodeToken(req.pageToken) : undefined;
  const sign = req.newestFirst ? -1 : 1;
  const cmp = (a: Key, b: Key): number => sign * compareKeys(a, b);
  // The size + 1 first tasks after the token, in order (one more tells whether a next page exists). A
  // terminal task is held encoded (src/mesh/ledger-tasks.ts): decoded only for a kind or tenant filter.
  const best: TaskEntry[] = [];
  for (const rec of cell.ledger.entries()) {
    if (states.size > 0 && !states.has(rec.state)) continue;
    if (req.kind || req.tenant) {
      const spec = cell.ledger.get(rec.id)!.spec;
      if ((req.kind && spec.kind !== req.kind) || (req.tenant && spec.tenant !== req.tenant)) continue;
    }
    const key = keyOf(rec);
    if (after && cmp(key, after) <= 0) continue;
    if (best.length > size && cmp(key, keyOf(best[best.length - 1]!)) >= 0) continue;
    let lo = 0;
    let hi = best.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cmp(keyOf(best[mid]!), key) < 0) lo = mid + 1;
      else hi = mid;
    }
    best.splice(lo, 0, rec);
    if (best.length > size + 1) best.pop();
  }
  const page = best.slice(0, size);
  const last = page[page.length - 1];
  return {
    cell: cell.path,
    tasks: page.map((r) => taskBrief(cell, cell.ledger.get(r.id)!)),
    nextPageToken: best.length > size && last ? encodeToken(keyOf(last)) : '',
  };
}

type Key = readonly [number, string];
const keyOf = (r: TaskEntry): Key => [r.createdMs, r.id];
const compareKeys = (a: Key, b: Key): number => (a[0] !== b[0] ? a[0] - b[0] : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0);

function encodeToken(k: Key): string {
  return Buffer.from(JSON.stringify(['t1', k[0], k[1]])).toString('base64url');
}

function decodeToken(token: string): Key {
  try {
    const v: unknown = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
    if (Array.isArray(v) && v[0] === 't1' && typeof v[1] === 'number' && typeof v[2] === 'string') return [v[1], v[2]];
  } catch {
    // answered below
  }
  throw invalidArgument(`page_token ${clip(token)} is not one this service gave (use next_page_token as it came)`);
}

/** GetTask: the task, its counts and where its attempt is now (only the leader knows routes). */
export function getTask(cell: Cell, id: string): GetTaskResponse {
  const rec = record(cell, id);
  return {
    task: cell.home.refusals.view(rec), // the ledger's record; QUEUED for a refused attempt waiting here again
    failures: rec.failures,
    maxAttempts: cell.ledger.maxAttempts(rec),
    replays: rec.replays,
    location: location(cell, rec),
    preemptions: rec.preemptions,
    preemptedBy: rec.preemptedBy,
  };
}

function location(cell: Cell, rec: TaskRecord): string {
  if (isTerminal(rec.state)) return 'ended';
  if (rec.state === TaskState.TASK_STATE_QUEUED) {
    if (cell.home.retrying.has(rec.id)) return 'waiting to retry';
    // Held for its flow key or its debounce window (docs/flow-control.md): "waiting: concurrency key c at
    // its limit of 3", "waiting: debounced until T".
    const why = cell.home.flow.whyWaiting(rec.id) ?? cell.home.debounce.whyWaiting(rec);
    if (why !== undefined) return `waiting: ${why}`;
    const queued = cell.queue.get(nextAttemptId(rec.id));
    // Its own reason (several slots, docs/gang.md): "waiting: no agent with 4 free slots".
    if (queued?.waitingFor) return `waiting: ${queued.waitingFor}`;
    return queued ? 'queued' : 'queued (between attempts)';
  }
  const item = cell.routes.get(routeKey(rec.id, rec.attempt));
  const via = item?.via;
  // Refused before it started, it waits here to be sent again (src/mesh/refusal-wait.ts): "waiting: refused by ...".
  if (item && !via) return `waiting: ${cell.home.refusals.wait.waiting(item, cell.scheduler.now()) || 'queued again'}`;
  if (!via) return `attempt ${rec.attempt} out (no route here: from before a change of leader)`;
  if (via.type === 'child') return `sent to child ${via.cell}`;
  if (via.type === 'agent') return `assigned to agent ${via.agentId}`;
  return `sent to parent ${cell.spec.parent}`;
}

/** The cell's ledger is a Raft log (what an admin write answers as `replicated`). */
export const replicated = (cell: Cell): boolean => cell.ledgerLog.replication() !== undefined;

/** One command through the cell's log (logged) or straight to its ledger (durability NONE). */
export function commit(cell: Cell, cmd: LedgerCommand, logged: boolean): Promise<ApplyResult[]> {
  if (!logged) return Promise.resolve(cell.ledger.apply(cmd));
  return cell.ledgerLog.propose([cmd]).then(
    (rs) => rs[0]!,
    (err: unknown) => {
      throw toMeshError(err);
    },
  );
}

/** Why `rec` cannot be replayed, or ''. `only` limits it to one terminal state. */
function whyNotReplay(cell: Cell, rec: TaskRecord | undefined, only?: TaskState): string {
  if (!rec) return 'not found';
  if (only !== undefined && rec.state !== only) return `not ${stateName(only)} (${stateName(rec.state)})`;
  if (rec.state === TaskState.TASK_STATE_COMPLETED) return 'it completed: submit it again to run it again';
  if (!isTerminal(rec.state)) return `it has not ended (${stateName(rec.state)})`;
  const deadline = rec.spec.deadlineUnixMs;
  if (deadline > 0 && deadline <= cell.scheduler.now()) return 'its deadline has passed';
  return '';
}

/** Replay `ids` (checked first; the rest skipped with why), then queue what the ledger reopened. */
export async function replay(
  cell: Cell,
  ids: readonly string[],
  reason: string,
  only?: TaskState,
): Promise<{ replayed: TaskRecord[]; skipped: { taskId: string; why: string }[] }> {
  cell.home.mustLead();
  const skipped: { taskId: string; why: string }[] = [];
  const logged: string[] = [];
  const none: string[] = [];
  for (const id of new Set(ids)) {
    const rec = cell.ledger.get(id);
    const why = whyNotReplay(cell, rec, only);
    if (why) skipped.push({ taskId: id, why });
    else (isLogged(rec!.spec) ? logged : none).push(id);
  }
  const atMs = cell.scheduler.now();
  const why = reason || 'replayed by operator';
  const replayed: TaskRecord[] = [];
  for (const [list, isLog] of [
    [logged, true],
    [none, false],
  ] as const) {
    if (list.length === 0) continue;
    const results = await commit(cell, { type: 'replayed', ids: list, reason: why, atMs }, isLog);
    for (const r of results) {
      const rec = cell.ledger.get(r.id);
      if (!r.ok || !rec) {
        skipped.push({ taskId: r.id, why: r.ok ? 'evicted' : `${r.why}${r.state ? ` (${stateName(r.state)})` : ''}` });
        continue;
      }
      replayed.push(rec);
      // Committed after a change of leader: the new leader queues it from its ledger.
      if (!cell.leading) continue;
      cell.home.enqueue(rec);
      if (rec.spec.deadlineUnixMs > 0) cell.timers.schedule(rec.spec.deadlineUnixMs, { type: 'deadline', id: rec.id });
    }
  }
  if (replayed.length > 0)
    cell.log.info({ replayed: replayed.length, skipped: skipped.length }, 'tasks replayed by operator');
  return { replayed, skipped };
}

/** RetryTask: replay a task that ended (not COMPLETED), or cut a retry backoff short. */
export async function retryTask(cell: Cell, id: string, reason: string): Promise<RetryTaskResponse> {
  checkLength('reason', reason, LIMITS.reason);
  const rec = record(cell, id);
  cell.home.mustLead();
  if (isTerminal(rec.state)) {
    const { replayed, skipped } = await replay(cell, [id], reason);
    if (replayed.length === 0)
      throw failedPrecondition(`task ${id} cannot be retried: ${skipped[0]?.why ?? 'unknown'}`);
    return { task: toProtoTask(replayed[0]!), action: 'replayed' };
  }
  if (rec.state === TaskState.TASK_STATE_QUEUED && cell.home.retrying.delete(id)) {
    cell.home.enqueue(rec);
    cell.log.info({ task: id }, 'retry backoff cut short by operator');
    return { task: toProtoTask(rec), action: 'retried now' };
  }
  if (rec.state === TaskState.TASK_STATE_QUEUED) throw failedPrecondition(`task ${id} is queued for dispatch already`);
  throw failedPrecondition(
    `task ${id}: attempt ${rec.attempt} is out (${stateName(rec.state)}); cancel it, or wait for it to end`,
  );
}

/** ReplayDeadLetters: the ids given, or with `all` the oldest dead letters matching kind and tenant. */
export async function replayDeadLetters(cell: Cell, req: ReplayDeadLettersRequest): Promise<ReplayDeadLettersResponse> {
  const tooMany = overCount('task_ids', req.taskIds.length, LIMITS.replayPerCall);
  if (tooMany) throw invalidArgument(tooMany);
  for (const id of req.taskIds) checkTaskId(id);
  checkLength('reason', req.reason, LIMITS.reason);
  if (req.limit > LIMITS.replayPerCall) {
    throw invalidArgument(`limit is ${req.limit}, over the limit of ${LIMITS.replayPerCall}`);
  }
  let ids: string[] = [...req.taskIds];
  if (ids.length === 0) {
    if (!req.all)
      throw invalidArgument(
        'name task_ids, or set all (with kind and tenant to narrow it) to replay every dead letter',
      );
    const page = listTasks(cell, {
      cell: '',
      states: [TaskState.TASK_STATE_DEAD_LETTERED],
      kind: req.kind,
      tenant: req.tenant,
      pageSize: req.limit || LIMITS.replayPerCall,
      pageToken: '',
      newestFirst: false,
    });
    ids = page.tasks.map((t) => t.id);
  } else if (req.all || req.kind || req.tenant) {
    throw invalidArgument('give task_ids, or all with kind and tenant, not both');
  }
  const { replayed, skipped } = await replay(cell, ids, req.reason, TaskState.TASK_STATE_DEAD_LETTERED);
  return {
    replayed: replayed.map((r) => taskBrief(cell, r)),
    skipped: skipped.map((s) => ({ taskId: s.taskId, why: s.why })),
  };
}
