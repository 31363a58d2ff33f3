// TaskService.SubmitStream: many submissions on one stream. Requests that
// arrive in one turn of the event loop go as one batch (on a follower, one
// SubmitBatch forwarded to the leader). Batches start at once, without waiting
// for the ones before them, but responses are written in request order:
// task.proto promises one response per request, in order. A request carries
// one spec (`task`, answered in `item`) or several (`tasks`, answered in
// `items`): a batching client pays one message each way, not one per task.
//
// Memory stays bounded whatever the client does: with LIMITS.streamInFlight
// specs unanswered, or answers the client is not reading, the stream stops
// reading (HTTP/2 flow control then holds the client) until it catches up.
import { status, type ServerDuplexStream } from '@grpc/grpc-js';
import type { SubmitBatchItem, SubmitStreamRequest, SubmitStreamResponse, TaskSpec } from '../gen/meshlb/v1/task.js';
import { invalidArgument, RETRY_AFTER_TRAILER, toServiceError } from '../util/errors.js';
import { LIMITS } from '../util/limits.js';
import { toMeshError } from '../util/raft-status.js';
import { isUndecodable, safePeer } from './grpc-util.js';
import type { Home } from './home.js';
import { leaderTrailers, type Cancellable, type WriteRoute } from './task-forward.js';
import { MAX_BATCH, validateSpec } from './task-validate.js';
import { nextBatchAverage } from './scheduler.js';

export interface SubmitStreamDeps {
  readonly home: Home;
  /** Where the next batch goes (throws while no leader is ready). */
  route(): WriteRoute;
  /**
   * One item per spec, in order (bad specs fail alone), at once when nothing was to wait for; throws or
   * rejects for the whole batch.
   */
  submitMany(
    specs: readonly (TaskSpec | undefined)[],
    to: WriteRoute,
    upstream: Set<Cancellable>,
  ): SubmitBatchItem[] | Promise<SubmitBatchItem[]>;
  /** Count a refused request (metrics). */
  rejected(code: status): void;
  /** The set of calls forwarded for this stream, cancelled when the stream is. */
  upstreamOf(call: ServerDuplexStream<SubmitStreamRequest, SubmitStreamResponse>): Set<Cancellable>;
}

export function serveSubmitStream(
  call: ServerDuplexStream<SubmitStreamRequest, SubmitStreamResponse>,
  d: SubmitStreamDeps,
): void {
  const home = d.home;
  let open = true;
  // Responses keep request order: each write waits for the ones before it. A batch answered at once
  // (submitNow, home-submit.ts) is written at once when no write waits on the chain: no promise per batch.
  let chain: Promise<void> = Promise.resolve();
  /** Writes chained and not yet run. */
  let waiting = 0;
  const later = (write: () => void): void => {
    waiting++;
    chain = chain.then(() => {
      waiting--;
      if (open) write();
    });
  };
  let pending: SubmitStreamRequest[] = [];
  let scheduled = false;
  /** Tasks per flush, averaged: a light stream's flush may run this turn (turn-defer.ts). */
  let flushBatch = 1;
  /** The leader last forwarded to: its hint goes in the trailers. */
  let forwardedTo: { leader: string; address: string } | undefined;
  const upstream = d.upstreamOf(call);
  /** Specs received and not yet answered; answers the client has not taken yet. */
  let unanswered = 0;
  let unread = false;
  let paused = false;
  const pace = (): void => {
    const full = unanswered >= LIMITS.streamInFlight || unread;
    if (full === paused || !open) return;
    paused = full;
    if (full) call.pause();
    else call.resume();
  };
  /** `specs`: how many the request carried (a batch refused whole is answered in one `item`). */
  const answer = (res: SubmitStreamResponse, specs = res.items.length || 1): void => {
    if (res.item && res.item.code !== status.OK) d.rejected(res.item.code);
    // Bad specs of a batch were counted where they were refused (submitMany).
    for (const it of res.items) if (it.code !== status.OK && it.code !== status.INVALID_ARGUMENT) d.rejected(it.code);
    unanswered -= specs;
    call.write(res);
    // Counted in answers, not against the stream's small high-water mark: a batch of answers is normal.
    if (call.writableLength >= LIMITS.streamInFlight) unread = true;
  };
  call.on('drain', () => {
    unread = false;
    pace();
  });
  const itemsFor = (batch: SubmitStreamRequest[]): SubmitBatchItem[] | Promise<SubmitBatchItem[]> => {
    try {
      const to = d.route();
      if (to.type === 'forward') forwardedTo = to;
      const items = d.submitMany(batch.length === 1 ? specsOf(batch[0]!) : batch.flatMap(specsOf), to, upstream);
      return Array.isArray(items) ? items : items.catch((err: unknown) => refused(batch, err));
    } catch (err) {
      return refused(batch, err);
    }
  };
  const refused = (batch: SubmitStreamRequest[], err: unknown): SubmitBatchItem[] => {
    // Saturation, no leader, a failed forward: every request of the batch gets that status.
    const se = toServiceError(toMeshError(err));
    // One line per refused batch, as a refused unary Submit logs one.
    const level = se.code === status.INTERNAL ? 'error' : 'warn';
    home.log[level](
      { code: se.code, err: se.details, items: batch.length, peer: safePeer(call) },
      'submit stream: batch refused',
    );
    const retryAfterMs = Number(se.metadata?.get(RETRY_AFTER_TRAILER)[0] ?? 0) || 0;
    return batch.flatMap((r) =>
      specsOf(r).map(() => ({
        taskId: '',
        existing: false,
        code: se.code ?? status.INTERNAL,
        message: se.details ?? '',
        retryAfterMs,
      })),
    );
  };
  const answerAll = (batch: SubmitStreamRequest[], items: SubmitBatchItem[]): void => {
    let at = 0;
    for (const r of batch) {
      const n = r.tasks.length;
      if (n === 0) answer({ requestId: r.requestId, item: items[at++], items: [] });
      else answer({ requestId: r.requestId, item: undefined, items: items.slice(at, (at += n)) });
    }
    pace();
  };
  const flush = (): void => {
    scheduled = false;
    const batch = pending;
    pending = [];
    let tasks = 0;
    for (const r of batch) tasks += r.tasks.length || 1;
    flushBatch = nextBatchAverage(flushBatch, tasks);
    const work = itemsFor(batch);
    if (!Array.isArray(work)) {
      waiting++;
      chain = chain.then(async () => {
        const items = await work;
        waiting--;
        if (open) answerAll(batch, items);
      });
    } else if (waiting > 0) later(() => answerAll(batch, work));
    else if (open) answerAll(batch, work);
  };
  // One function for the stream, not a closure per request (one task per request at low rates). A flush
  // forced by a bad spec in between leaves nothing for this one.
  const flushScheduled = (): void => {
    if (scheduled) flush();
  };
  call.on('data', (req: SubmitStreamRequest) => {
    if (!open) return;
    if (isUndecodable(req)) {
      home.log.warn({ peer: safePeer(call) }, 'submit stream: undecodable message');
      d.rejected(status.INVALID_ARGUMENT);
      call.emit('error', toServiceError(invalidArgument(`undecodable request: ${req.$invalid}`)));
      open = false;
      return;
    }
    unanswered += req.tasks.length || 1;
    pace();
    // A batch's specs are checked one by one where it is submitted (a bad one fails alone).
    const why = req.tasks.length > 0 ? batchProblem(req) : validateSpec(req.task, home.settings, home.scheduler.now());
    if (why) {
      if (pending.length > 0) flush(); // what came before is answered first
      later(() => {
        const item = { taskId: '', existing: false, code: status.INVALID_ARGUMENT, message: why, retryAfterMs: 0 };
        if (req.tasks.length > 0)
          home.log.warn({ peer: safePeer(call), items: req.tasks.length, err: why }, 'submit stream: batch refused');
        answer({ requestId: req.requestId, item, items: [] }, req.tasks.length || 1);
        pace();
      });
      return;
    }
    pending.push(req);
    if (!scheduled) {
      scheduled = true;
      home.scheduler.defer(flushScheduled, flushBatch);
    }
  });
  call.on('end', () => {
    const finish = (): void => {
      if (open) call.end(forwardedTo ? leaderTrailers(forwardedTo) : undefined);
      open = false;
    };
    if (scheduled || pending.length > 0) home.scheduler.defer(() => chain.then(finish, finish));
    else chain.then(finish, finish);
  });
  const gone = (): void => {
    open = false;
  };
  call.on('cancelled', gone);
  call.on('error', gone);
}

/** Why a request's batch is refused whole, if it is. */
function batchProblem(req: SubmitStreamRequest): string | undefined {
  if (req.task) return 'set task or tasks, not both';
  if (req.tasks.length > MAX_BATCH)
    return `tasks has ${req.tasks.length} items, over the limit of ${MAX_BATCH} per batch`;
  return undefined;
}

/** A request's specs: its batch, or its one task. */
function specsOf(r: SubmitStreamRequest): (TaskSpec | undefined)[] {
  return r.tasks.length > 0 ? r.tasks : [r.task];
}
