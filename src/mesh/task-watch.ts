// Who watches which task on one replica, by task id: the open TaskService.Watch
// streams (each one task) and the WatchMany streams (many tasks each,
// task-watch-many.ts). Each is told its task's record at every change; a
// Watch stream is ended when its task ends, a WatchMany stream forgets the id.
//
// Invariants:
// - `count` is the number of (task, watcher) pairs in `byTask` (a pair is
//   dropped once, whether its watcher leaves or its task ends);
// - at most `limits.perTask` watchers per task and `limits.perReplica` pairs
//   in all (LIMITS): beyond them a Watch, or a WatchMany id, is refused
//   RESOURCE_EXHAUSTED, so memory stays bounded whatever callers open.
import { status, type ServerWritableStream } from '@grpc/grpc-js';
import type { Task, WatchRequest, WatchResponse } from '../gen/meshlb/v1/task.js';
import { MeshError, resourceExhausted, toServiceError } from '../util/errors.js';
import { clip, LIMITS } from '../util/limits.js';
import { isTerminal, toProtoTask, type TaskRecord } from './ledger.js';

type WatchCall = ServerWritableStream<WatchRequest, WatchResponse>;

/** One watcher of one or more tasks. */
export interface TaskWatcher {
  /**
   * The task `id` changed; `task()` is its record as sent (built once per
   * change, only if a watcher asks); `done` once it ended (the pair is dropped then).
   */
  changed(id: string, task: () => Task, done: boolean): void;
  /** The replica shuts down: end with this status. */
  shutdown(err: MeshError): void;
}

export class TaskWatchers {
  private readonly byTask = new Map<string, Set<TaskWatcher>>();
  private count = 0;
  /** Watchers allowed per task and (task, watcher) pairs per replica (LIMITS; tests lower them). */
  readonly limits: { perTask: number; perReplica: number } = {
    perTask: LIMITS.watchersPerTask,
    perReplica: LIMITS.watchersPerReplica,
  };

  constructor(
    private readonly retryHintMs: () => number,
    /** The view of a record a watcher is sent (the home leader's says why a refused attempt waits). */
    private readonly view: (rec: TaskRecord) => Task = toProtoTask,
  ) {}

  /** Tasks with at least one watcher. */
  get tasks(): number {
    return this.byTask.size;
  }

  /** (task, watcher) pairs: Watch streams, plus each id each WatchMany stream watches. */
  get streams(): number {
    return this.count;
  }

  /** Ids of the tasks watched. */
  ids(): string[] {
    return [...this.byTask.keys()];
  }

  /** Throws RESOURCE_EXHAUSTED when another watcher of `id` would pass the limits. */
  admit(id: string): void {
    const onTask = this.byTask.get(id)?.size ?? 0;
    if (onTask >= this.limits.perTask) {
      throw resourceExhausted(`task ${clip(id)} has ${onTask} watchers, the limit per task`, this.retryHintMs());
    }
    if (this.count >= this.limits.perReplica) {
      throw resourceExhausted(`${this.count} watchers on this replica, the limit`, this.retryHintMs());
    }
  }

  /** Keep a Watch `call` until it leaves or its task ends. */
  add(id: string, call: WatchCall): void {
    const w: TaskWatcher = {
      changed(_id, task, done) {
        try {
          call.write({ task: task() });
          if (done) call.end();
        } catch {
          // the watcher left
        }
      },
      shutdown(err) {
        try {
          call.emit('error', toServiceError(err));
        } catch {
          // gone
        }
      },
    };
    this.watch(id, w);
    const drop = (): void => this.unwatch(id, w);
    call.on('cancelled', drop);
    call.on('error', drop);
    call.on('close', drop);
  }

  /** Tell `w` of every change of task `id` until it ends or unwatch(id, w). */
  watch(id: string, w: TaskWatcher): void {
    let set = this.byTask.get(id);
    if (!set) this.byTask.set(id, (set = new Set()));
    if (set.has(w)) return;
    set.add(w);
    this.count++;
  }

  /** Stop telling `w` about `id` (nothing when already dropped, or ended with its task). */
  unwatch(id: string, w: TaskWatcher): void {
    const s = this.byTask.get(id);
    if (!s?.delete(w)) return;
    this.count--;
    if (s.size === 0) this.byTask.delete(id);
  }

  /** Tell the task's watchers its record; drop them if it ended. */
  changed(rec: TaskRecord): void {
    const set = this.byTask.get(rec.id);
    if (!set) return;
    let proto: Task | undefined;
    const task = (): Task => (proto ??= this.view(rec));
    const done = isTerminal(rec.state);
    if (done) {
      this.count -= set.size;
      this.byTask.delete(rec.id);
    }
    for (const w of set) w.changed(rec.id, task, done);
  }

  /** End every watcher with UNAVAILABLE (shutdown). */
  closeAll(): void {
    const all = new Set<TaskWatcher>();
    for (const set of this.byTask.values()) for (const w of set) all.add(w);
    this.byTask.clear();
    this.count = 0;
    const err = new MeshError(status.UNAVAILABLE, 'replica shutting down');
    for (const w of all) w.shutdown(err);
  }
}

/** What watchLedger reads of the home (home.ts, home-refusals.ts). */
export interface WatchedHome {
  readonly ledger: {
    onChange(fn: (rec: TaskRecord) => void): void;
    onRestored(fn: () => void): void;
    get(id: string): TaskRecord | undefined;
  };
  readonly refusals: { view(rec: TaskRecord): Task; readonly wait: { onChange: ((id: string) => void) | undefined } };
}

/**
 * A replica's watchers, told of every change of a watched task's record, and at the home leader of an
 * attempt refused before it started that waits again or leaves again (soft state: no ledger change).
 */
export function watchLedger(home: WatchedHome, retryHintMs: () => number): TaskWatchers {
  const watchers = new TaskWatchers(retryHintMs, (rec) => home.refusals.view(rec));
  const tell = (id: string): void => {
    const rec = home.ledger.get(id);
    if (rec) watchers.changed(rec);
  };
  home.ledger.onChange((rec) => watchers.changed(rec));
  home.refusals.wait.onChange = (id) => watchers.tasks > 0 && tell(id);
  // A follower that caught up by snapshot skipped the changes in it: tell each watcher where its task is now.
  home.ledger.onRestored(() => {
    for (const id of watchers.ids()) tell(id);
  });
  return watchers;
}
