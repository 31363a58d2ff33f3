// The per-task waiting path: one Watch stream per waited task, watched again
// (with backoff) when a stream ends early or fails for a reason a new watch
// can fix. MeshClient uses it with `sharedWatch: false`, and the shared
// WatchMany path (result-stream.ts) falls back to it at a cell without WatchMany.
import { status } from '@grpc/grpc-js';
import { Backoff } from '../agent/backoff.js';
import { MeshClientError } from './errors.js';
import type { WaitOpts } from './result-stream.js';
import { retryableWatchError, sleep } from './retry.js';
import { isTerminal, type TaskRecord } from './spec.js';

type Watch = (taskId: string, opts: { deadlineMs?: number; signal?: AbortSignal }) => AsyncIterable<TaskRecord>;

/** The task's final record, over `watch` streams; DEADLINE_EXCEEDED after `timeoutMs`. */
export async function waitPerTask(
  watch: Watch,
  random: () => number,
  taskId: string,
  opts: WaitOpts,
): Promise<TaskRecord> {
  const until = opts.timeoutMs !== undefined ? Date.now() + opts.timeoutMs : Infinity;
  const backoff = new Backoff({ initialMs: 20, maxMs: 1000 }, random);
  for (;;) {
    const left = until - Date.now();
    if (left <= 0) break;
    try {
      let last: TaskRecord | undefined;
      for await (const t of watch(taskId, {
        deadlineMs: Number.isFinite(left) ? left : undefined,
        signal: opts.signal,
      }))
        last = t;
      if (last && isTerminal(last.state)) return last;
    } catch (e) {
      const err = MeshClientError.from(e);
      if (err.code === status.DEADLINE_EXCEEDED && !opts.signal?.aborted) break;
      if (!retryableWatchError(err)) throw err;
    }
    await sleep(Math.min(backoff.next(), Math.max(0, until - Date.now())));
  }
  throw new MeshClientError(status.DEADLINE_EXCEEDED, `task ${taskId} did not finish within ${opts.timeoutMs} ms`);
}
