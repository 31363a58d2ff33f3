// TaskService.WatchMany: the results of many tasks on one stream. The client
// adds ids (and drops them) whenever it likes; each request's ids are looked
// up after one ReadIndex barrier (linearizable on any replica, as Watch), and
// each id's terminal record is sent once (with all_changes, every change
// before it too). Records that become ready in one turn of the event loop
// leave in one response, so a client waiting on thousands of tasks costs one
// message per turn, not one stream per task.
//
// Invariants:
// - an id is in `watched` exactly while this stream is registered for it in
//   TaskWatchers, or in `adding` while its request waits for the barrier;
//   `watched.size + adding.size <= maxIds` (ids past it get an error entry
//   RESOURCE_EXHAUSTED and a log line), so one stream's memory is bounded;
// - every id added is answered exactly once: a record when it ends, or an
//   error entry (invalid, unknown, over a limit), unless the client unwatches
//   it or the stream ends first;
// - once the client half-closes, the stream ends when nothing is watched.
import { status, type ServerDuplexStream } from '@grpc/grpc-js';
import type { Task, WatchManyError, WatchManyRequest, WatchManyResponse } from '../gen/meshlb/v1/task.js';
import { MeshError, toServiceError } from '../util/errors.js';
import { LIMITS, overLimit } from '../util/limits.js';
import { toMeshError } from '../util/raft-status.js';
import { failStream, isUndecodable, safePeer } from './grpc-util.js';
import type { Home } from './home.js';
import { isTerminal, toProtoTask } from './ledger.js';
import type { TaskWatcher, TaskWatchers } from './task-watch.js';
import { nextBatchAverage } from './scheduler.js';

type ManyCall = ServerDuplexStream<WatchManyRequest, WatchManyResponse>;

/** Records per response, and their rough size in bytes, before a response is cut. */
const MAX_TASKS_PER_MESSAGE = 1024;
const MAX_BYTES_PER_MESSAGE = 1 << 20;

export interface WatchManyDeps {
  readonly home: Home;
  readonly watchers: TaskWatchers;
  /** The ReadIndex barrier (rejects with UNAVAILABLE when no leader is reachable). */
  readBarrier(): Promise<void>;
  /** Count a refused id or stream (metrics). */
  rejected(code: status): void;
  /** Ids watched at once per stream (default LIMITS.watchManyIdsPerStream). */
  readonly maxIds?: number;
}

export function serveWatchMany(call: ManyCall, d: WatchManyDeps): void {
  new WatchManyStream(call, d);
}

class WatchManyStream implements TaskWatcher {
  /** Ids registered in TaskWatchers, and whether every change is wanted. */
  private readonly watched = new Map<string, boolean>();
  /** Ids waiting for their request's barrier, and whether every change is wanted. */
  private readonly adding = new Map<string, boolean>();
  private outTasks: Task[] = [];
  private outErrors: WatchManyError[] = [];
  private flushing = false;
  /** Tasks per flush, averaged: a light stream's flush may run this turn (turn-defer.ts). */
  private flushBatch = 1;
  private open = true;
  private halfClosed = false;
  private readonly maxIds: number;

  constructor(
    private readonly call: ManyCall,
    private readonly d: WatchManyDeps,
  ) {
    this.maxIds = d.maxIds ?? LIMITS.watchManyIdsPerStream;
    call.on('data', (req: WatchManyRequest) => this.onRequest(req));
    call.on('end', () => {
      this.halfClosed = true;
      this.maybeEnd();
    });
    const gone = (): void => this.leave();
    call.on('cancelled', gone);
    call.on('error', gone);
    call.on('close', gone);
  }

  changed(id: string, task: () => Task, done: boolean): void {
    const all = this.watched.get(id);
    if (all === undefined) return;
    if (done) this.watched.delete(id); // TaskWatchers dropped the pair already
    if (done || all) this.send(task());
    if (done) this.maybeEnd();
  }

  shutdown(err: MeshError): void {
    this.watched.clear(); // TaskWatchers forgot every pair already
    this.fail(err, 'watch many: replica shutting down', false);
  }

  private onRequest(req: WatchManyRequest): void {
    if (!this.open) return;
    if (isUndecodable(req)) {
      this.fail(new MeshError(status.INVALID_ARGUMENT, `undecodable request: ${req.$invalid}`), 'watch many refused');
      return;
    }
    for (const id of req.unwatchTaskIds) {
      this.adding.delete(id);
      if (this.watched.delete(id)) this.d.watchers.unwatch(id, this);
    }
    const fresh: string[] = [];
    let over = 0;
    for (const id of req.taskIds) {
      const bad = id === '' ? 'task_id is required' : overLimit('task_id', id, LIMITS.taskId);
      if (bad) {
        this.error(id.slice(0, LIMITS.taskId), status.INVALID_ARGUMENT, bad);
        continue;
      }
      if (this.watched.has(id) || this.adding.has(id)) continue;
      if (this.watched.size + this.adding.size >= this.maxIds) {
        over++;
        this.error(id, status.RESOURCE_EXHAUSTED, `this stream watches ${this.maxIds} tasks, the limit per stream`);
        continue;
      }
      this.adding.set(id, req.allChanges);
      fresh.push(id);
    }
    if (over > 0) {
      this.d.home.log.warn(
        { over, limit: this.maxIds, peer: safePeer(this.call) },
        'watch many: ids over the limit per stream refused',
      );
    }
    if (fresh.length > 0) void this.lookUp(fresh);
  }

  /** After one barrier, answer the ids that ended and register the rest. */
  private async lookUp(ids: string[]): Promise<void> {
    try {
      await this.d.readBarrier();
    } catch (err) {
      this.fail(toMeshError(err), 'watch many: read barrier failed');
      return;
    }
    const ledger = this.d.home.ledger;
    for (const id of ids) {
      const all = this.adding.get(id);
      if (all === undefined || !this.open) continue; // unwatched meanwhile, or the stream is gone
      this.adding.delete(id);
      const rec = ledger.get(id);
      if (!rec) {
        this.error(id, status.NOT_FOUND, `task ${id} is not known at cell ${this.d.home.path}`);
        continue;
      }
      if (isTerminal(rec.state)) {
        this.send(toProtoTask(rec));
        continue;
      }
      try {
        this.d.watchers.admit(id);
      } catch (err) {
        const me = toMeshError(err);
        this.error(id, me.code, me.message);
        continue;
      }
      this.watched.set(id, all);
      this.d.watchers.watch(id, this);
      if (all) this.send(this.d.home.refusals.view(rec)); // a refused attempt waiting at the leader: QUEUED, why
    }
    this.maybeEnd();
  }

  private error(taskId: string, code: status, message: string): void {
    this.d.rejected(code);
    this.outErrors.push({ taskId, code, message });
    this.schedule();
  }

  private send(task: Task): void {
    this.outTasks.push(task);
    this.schedule();
  }

  private schedule(): void {
    if (this.flushing || !this.open) return;
    this.flushing = true;
    this.d.home.scheduler.defer(() => this.flush(), this.flushBatch);
  }

  /** Everything ready goes out, cut into responses of bounded size. */
  private flush(): void {
    this.flushing = false;
    if (!this.open) return;
    const tasks = this.outTasks;
    const errors = this.outErrors;
    this.flushBatch = nextBatchAverage(this.flushBatch, tasks.length + errors.length);
    this.outTasks = [];
    this.outErrors = [];
    let i = 0;
    while (i < tasks.length || errors.length > 0) {
      const part: Task[] = [];
      let bytes = 0;
      while (i < tasks.length && part.length < MAX_TASKS_PER_MESSAGE && bytes < MAX_BYTES_PER_MESSAGE) {
        const t = tasks[i++]!;
        bytes += 256 + (t.spec?.payload.length ?? 0) + (t.result?.output.length ?? 0);
        part.push(t);
      }
      const errs = errors.splice(0, MAX_TASKS_PER_MESSAGE);
      try {
        this.call.write({ tasks: part, errors: errs });
      } catch {
        this.leave();
        return;
      }
    }
    this.maybeEnd();
  }

  private maybeEnd(): void {
    if (!this.open || !this.halfClosed || this.watched.size > 0 || this.adding.size > 0) return;
    if (this.flushing) return; // flush() comes back here
    this.open = false;
    this.call.end();
  }

  private fail(err: MeshError, what: string, refusal = true): void {
    if (refusal) this.d.rejected(toServiceError(err).code ?? status.INTERNAL);
    this.leave();
    failStream(this.call, err, this.d.home.log, what);
  }

  /** Drop every registration; nothing more is written. */
  private leave(): void {
    if (!this.open && this.watched.size === 0) return;
    this.open = false;
    for (const id of this.watched.keys()) this.d.watchers.unwatch(id, this);
    this.watched.clear();
    this.adding.clear();
  }
}
