// TaskService.SubmitStream: many submissions on one stream. Requests that
// arrive in one turn of the event loop go as one batch (on a follower, one
// SubmitBatch forwarded to the leader). Batches start at once, without waiting
// for the ones before them, but responses are written in request order:
// task.proto promises one response per request, in order.
//
// Memory stays bounded whatever the client does: with LIMITS.streamInFlight
// requests unanswered, or answers the client is not reading, the stream stops
// reading (HTTP/2 flow control then holds the client) until it catches up.
import { status, type ServerDuplexStream } from '@grpc/grpc-js';
import type { SubmitBatchItem, SubmitStreamRequest, SubmitStreamResponse, TaskSpec } from '../gen/meshlb/v1/task.js';
import { invalidArgument, RETRY_AFTER_TRAILER, toServiceError } from '../util/errors.js';
import { LIMITS } from '../util/limits.js';
import { toMeshError } from '../util/raft-status.js';
import { isUndecodable, safePeer } from './grpc-util.js';
import type { Home } from './home.js';
import { leaderTrailers, type Cancellable, type WriteRoute } from './task-forward.js';
import { validateSpec } from './task-validate.js';

export interface SubmitStreamDeps {
  readonly home: Home;
  /** Where the next batch goes (throws while no leader is ready). */
  route(): WriteRoute;
  /** One item per spec, in order (bad specs fail alone); rejects for the whole batch. */
  submitMany(
    specs: readonly (TaskSpec | undefined)[],
    to: WriteRoute,
    upstream: Set<Cancellable>,
  ): Promise<SubmitBatchItem[]>;
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
  // Responses keep request order: each write waits for the ones before it.
  let chain: Promise<void> = Promise.resolve();
  let pending: SubmitStreamRequest[] = [];
  let scheduled = false;
  /** The leader last forwarded to: its hint goes in the trailers. */
  let forwardedTo: { leader: string; address: string } | undefined;
  const upstream = d.upstreamOf(call);
  /** Requests received and not yet answered; answers the client has not taken yet. */
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
  const answer = (res: SubmitStreamResponse): void => {
    if (res.item && res.item.code !== status.OK) d.rejected(res.item.code);
    unanswered--;
    call.write(res);
    // Counted in answers, not against the stream's small high-water mark: a batch of answers is normal.
    if (call.writableLength >= LIMITS.streamInFlight) unread = true;
  };
  call.on('drain', () => {
    unread = false;
    pace();
  });
  const itemsFor = async (batch: SubmitStreamRequest[]): Promise<SubmitBatchItem[]> => {
    try {
      const to = d.route();
      if (to.type === 'forward') forwardedTo = to;
      return await d.submitMany(
        batch.map((r) => r.task),
        to,
        upstream,
      );
    } catch (err) {
      // Saturation, no leader, a failed forward: every request of the batch gets that status.
      const se = toServiceError(toMeshError(err));
      // One line per refused batch, as a refused unary Submit logs one.
      const level = se.code === status.INTERNAL ? 'error' : 'warn';
      home.log[level](
        { code: se.code, err: se.details, items: batch.length, peer: safePeer(call) },
        'submit stream: batch refused',
      );
      const retryAfterMs = Number(se.metadata?.get(RETRY_AFTER_TRAILER)[0] ?? 0) || 0;
      return batch.map(() => ({
        taskId: '',
        existing: false,
        code: se.code ?? status.INTERNAL,
        message: se.details ?? '',
        retryAfterMs,
      }));
    }
  };
  const flush = (): void => {
    scheduled = false;
    const batch = pending;
    pending = [];
    const work = itemsFor(batch);
    chain = chain.then(async () => {
      const items = await work;
      if (!open) return;
      for (let i = 0; i < batch.length; i++) answer({ requestId: batch[i]!.requestId, item: items[i] });
      pace();
    });
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
    unanswered++;
    pace();
    const why = validateSpec(req.task, home.settings, home.scheduler.now());
    if (why) {
      if (pending.length > 0) flush(); // what came before is answered first
      chain = chain.then(() => {
        if (!open) return;
        answer({
          requestId: req.requestId,
          item: { taskId: '', existing: false, code: status.INVALID_ARGUMENT, message: why, retryAfterMs: 0 },
        });
        pace();
      });
      return;
    }
    pending.push(req);
    if (!scheduled) {
      scheduled = true;
      // A flush forced by a bad spec in between leaves nothing for this one.
      home.scheduler.defer(() => {
        if (scheduled) flush();
      });
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
