// The open TaskService.Watch streams of one replica, by task id: each is told
// its task's record at every change and ended when the task ends.
//
// Invariants:
// - `count` is the number of streams in `byTask` (a stream is dropped once,
//   whether it leaves or its task ends);
// - at most `limits.perTask` streams per task and `limits.perReplica` in all
//   (LIMITS): beyond them a Watch is refused RESOURCE_EXHAUSTED, so memory
//   stays bounded whatever callers open.
import { status, type ServerWritableStream } from '@grpc/grpc-js';
import type { WatchRequest, WatchResponse } from '../gen/meshlb/v1/task.js';
import { MeshError, resourceExhausted, toServiceError } from '../util/errors.js';
import { clip, LIMITS } from '../util/limits.js';
import { isTerminal, toProtoTask, type TaskRecord } from './ledger.js';

type WatchCall = ServerWritableStream<WatchRequest, WatchResponse>;

export class TaskWatchers {
  private readonly byTask = new Map<string, Set<WatchCall>>();
  private count = 0;
  /** Watch streams allowed per task and per replica (LIMITS; tests lower them). */
  readonly limits: { perTask: number; perReplica: number } = {
    perTask: LIMITS.watchersPerTask,
    perReplica: LIMITS.watchersPerReplica,
  };

  constructor(private readonly retryHintMs: () => number) {}

  /** Tasks with at least one watcher. */
  get tasks(): number {
    return this.byTask.size;
  }

  /** Watch streams open. */
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

  /** Keep `call` until it leaves or its task ends. */
  add(id: string, call: WatchCall): void {
    let set = this.byTask.get(id);
    if (!set) this.byTask.set(id, (set = new Set()));
    set.add(call);
    this.count++;
    const drop = (): void => {
      const s = this.byTask.get(id);
      if (!s?.delete(call)) return; // already dropped, or ended with its task
      this.count--;
      if (s.size === 0) this.byTask.delete(id);
    };
    call.on('cancelled', drop);
    call.on('error', drop);
    call.on('close', drop);
  }

  /** Tell the task's watchers its record; end them if it ended. */
  changed(rec: TaskRecord): void {
    const set = this.byTask.get(rec.id);
    if (!set) return;
    const msg: WatchResponse = { task: toProtoTask(rec) };
    const done = isTerminal(rec.state);
    for (const call of set) {
      try {
        call.write(msg);
        if (done) call.end();
      } catch {
        // the watcher left
      }
    }
    if (done) {
      this.count -= set.size;
      this.byTask.delete(rec.id);
    }
  }

  /** End every watch with UNAVAILABLE (shutdown). */
  closeAll(): void {
    for (const set of this.byTask.values()) {
      for (const call of set) {
        try {
          call.emit('error', toServiceError(new MeshError(status.UNAVAILABLE, 'replica shutting down')));
        } catch {
          // gone
        }
      }
    }
    this.byTask.clear();
    this.count = 0;
  }
}
