// watch(id): every change of one task until it ends. Two paths:
// - `watchPerTask`: one TaskService.Watch stream for the task, following a
//   follower's leader hint and moving to the next address on UNAVAILABLE;
// - `followChanges`: the task's changes as a shared WatchMany stream with
//   `all_changes` hands them over (result-stream.ts), many watched tasks on
//   one stream; it turns that stream's callbacks into the same async iterator.
import { Metadata, status } from '@grpc/grpc-js';
import type { Task, TaskServiceClient } from '../gen/meshlb/v1/task.js';
import { MeshClientError } from './errors.js';
import type { FollowOpts } from './result-stream.js';
import { nextAddress } from './retry.js';
import { isTerminal, withStateName, type TaskRecord } from './spec.js';

export interface WatchOpts {
  deadlineMs?: number;
  signal?: AbortSignal;
}

/** What the per-task path needs of the client. */
export interface WatchPorts {
  readonly addresses: readonly string[];
  /** The address to start at (the client's preferred one). */
  preferred(): string;
  /** A follower named its leader: the client's preferred address from now on. */
  redirect(address: string): void;
  clientFor(address: string): TaskServiceClient;
  readonly maxRedirects: number;
}

/**
 * Changes a consumer has not read yet, per watched task. A task changes a
 * handful of times per attempt; past this the oldest unread change is dropped
 * (the consumer still sees the later ones and the final record).
 */
const MAX_UNREAD = 1024;

function aborted(signal: AbortSignal): MeshClientError {
  return new MeshClientError(status.CANCELLED, 'watch aborted', {}, { cause: signal.reason });
}

/** One Watch stream per task (a cell without WatchMany, or `sharedWatch: false`). */
export async function* watchPerTask(
  p: WatchPorts,
  taskId: string,
  opts: WatchOpts = {},
): AsyncGenerator<TaskRecord, void, undefined> {
  const deadline = opts.deadlineMs !== undefined ? Date.now() + opts.deadlineMs : Infinity;
  let address = p.preferred();
  let hops = 0;
  let failovers = 0;
  for (;;) {
    if (opts.signal?.aborted) throw aborted(opts.signal);
    const call = p.clientFor(address).watch({ taskId }, new Metadata(), { deadline });
    const onAbort = () => call.cancel();
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    // Cancel (RST_STREAM) only a watch the caller abandons. A stream that reached a
    // terminal state or failed is over already: thousands of needless RSTs at once
    // trip HTTP/2 flood protection and take the whole connection down.
    let over = false;
    try {
      for await (const msg of call as AsyncIterable<{ task?: Task }>) {
        if (!msg.task) continue;
        if (isTerminal(msg.task.state)) over = true;
        yield withStateName(msg.task);
        if (over) return;
      }
      over = true;
      return;
    } catch (e) {
      over = true;
      const err = MeshClientError.from(e);
      if (opts.signal?.aborted) throw aborted(opts.signal);
      if (err.code === status.FAILED_PRECONDITION && err.leaderAddress && hops < p.maxRedirects) {
        hops++;
        p.redirect((address = err.leaderAddress));
        continue;
      }
      if (err.code === status.UNAVAILABLE && failovers < p.addresses.length - 1) {
        failovers++;
        address = nextAddress(p.addresses, address);
        continue;
      }
      throw err;
    } finally {
      opts.signal?.removeEventListener('abort', onAbort);
      if (!over) call.cancel();
    }
  }
}

/**
 * The task's changes from `follow` (a shared stream's wait that calls
 * `onChange` for each change and resolves with the final record) as an async
 * iterator. Leaving the loop early ends the wait (the id is dropped from the
 * stream when nobody else watches it).
 */
export async function* followChanges(
  follow: (id: string, opts: FollowOpts) => Promise<TaskRecord>,
  taskId: string,
  opts: WatchOpts = {},
): AsyncGenerator<TaskRecord, void, undefined> {
  if (opts.signal?.aborted) throw aborted(opts.signal);
  const unread: TaskRecord[] = [];
  let wake: (() => void) | undefined;
  let outcome: { rec: TaskRecord } | { err: unknown } | undefined;
  const stop = new AbortController();
  const onAbort = () => stop.abort(opts.signal?.reason);
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  let last: TaskRecord | undefined;
  const onChange = (rec: TaskRecord): void => {
    // The per-task fallback watches again after a broken stream: the record it starts with may be a repeat.
    if (last && last.state === rec.state && last.attempt === rec.attempt && last.updatedUnixMs === rec.updatedUnixMs)
      return;
    last = rec;
    if (unread.length >= MAX_UNREAD) unread.shift();
    unread.push(rec);
    wake?.();
  };
  follow(taskId, { timeoutMs: opts.deadlineMs, signal: stop.signal, onChange }).then(
    (rec) => ((outcome = { rec }), wake?.()),
    (err) => ((outcome = { err }), wake?.()),
  );
  try {
    for (;;) {
      while (unread.length > 0) yield unread.shift()!;
      if (outcome) {
        if ('err' in outcome) throw outcome.err;
        yield outcome.rec;
        return;
      }
      await new Promise<void>((resolve) => (wake = resolve));
      wake = undefined;
    }
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
    if (!outcome) stop.abort();
  }
}

/** `it`'s records, each change before the final one also handed to `onChange` (the shared path's fallback). */
export async function* tapChanges(
  it: AsyncIterable<TaskRecord>,
  onChange: ((t: TaskRecord) => void) | undefined,
): AsyncGenerator<TaskRecord, void, undefined> {
  for await (const t of it) {
    if (!isTerminal(t.state)) onChange?.(t);
    yield t;
  }
}
