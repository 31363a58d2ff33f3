// TaskService for one replica: Submit, SubmitBatch, SubmitStream, Get, Watch,
// Cancel, on every replica of a cell (active-active). Writes are decided by
// the cell's leader: on the leader they are served here, on a follower they
// are forwarded to the leader (task-forward.ts) and the answer comes back as
// if served here. Reads pass a ReadIndex barrier (read-barrier.ts) and then
// read the local ledger, so they are linearizable on any replica.
//
// Input is validated here, every field against its limit (src/util/limits.ts)
// before any lookup or forward; every failure becomes a status through
// toServiceError with one log line. A client that goes away mid-call loses
// nothing: a task accepted is in the ledger whether or not the answer reached
// the client (the idempotency key lets it find the task again).
import {
  status,
  type ChannelCredentials,
  type Deadline,
  type Metadata,
  type sendUnaryData,
  type ServerDuplexStream,
  type ServerUnaryCall,
  type ServerWritableStream,
} from '@grpc/grpc-js';
import type {
  CancelRequest,
  CancelResponse,
  GetRequest,
  GetResponse,
  SubmitBatchItem,
  SubmitBatchRequest,
  SubmitBatchResponse,
  SubmitRequest,
  SubmitResponse,
  SubmitStreamRequest,
  SubmitStreamResponse,
  TaskServiceServer,
  TaskSpec,
  WatchManyRequest,
  WatchManyResponse,
  WatchRequest,
  WatchResponse,
} from '../gen/meshlb/v1/task.js';
import { TaskServiceService } from '../gen/meshlb/v1/task.js';
import { decodeSubmitBatchRequest, encodeSubmitBatchResponse, encodeSubmitStreamResponse } from './wire-codec.js';
import { checkLength, invalidArgument, notFound, notLeader, toServiceError } from '../util/errors.js';
import { clip, LIMITS } from '../util/limits.js';
import { toMeshError } from '../util/raft-status.js';
import { isUndecodable, safePeer } from './grpc-util.js';
import type { Home, SubmitOutcome } from './home.js';
import { submitNow } from './home-submit.js';
import type { CellMeter } from './meter.js';
import { isTerminal, toProtoTask, type TaskRecord } from './ledger.js';
import { ReadBarrier } from './read-barrier.js';
import {
  isForwarded,
  LeaderForwarder,
  leaderTrailers,
  LOCAL,
  unavailableRetry,
  type Cancellable,
  type Exchange,
  type ForwardMethod,
  type WriteRoute,
} from './task-forward.js';
import { serveSubmitStream } from './task-stream.js';
import { watchLedger, type TaskWatchers } from './task-watch.js';
import { serveWatchMany } from './task-watch-many.js';
import { MAX_BATCH, validateSpec } from './task-validate.js';

/** TaskService as a replica serves it: its submit answers written on the shared writer (wire-codec.ts). */
export const TASK_SERVICE = {
  ...TaskServiceService,
  submitStream: { ...TaskServiceService.submitStream, responseSerialize: encodeSubmitStreamResponse },
  submitBatch: {
    ...TaskServiceService.submitBatch,
    requestDeserialize: decodeSubmitBatchRequest,
    responseSerialize: encodeSubmitBatchResponse,
  },
};

/** What the service needs of its cell (Cell implements it). */
export interface TaskCell {
  readonly home: Home;
  readonly replicaId: string;
  /** Whether this replica decides for the cell now, and who leads as far as it knows. */
  leaderHint(): { leading: boolean; leader: string; leaderAddress: string };
  readonly ledgerLog: { readIndex(): Promise<void> };
  /** Counts refusals (metrics); none when absent. */
  readonly meter?: Pick<CellMeter, 'rejected'>;
}

export interface TaskServiceOptions {
  /** Forwarded calls in flight per replica before RESOURCE_EXHAUSTED (default 1024). */
  readonly maxForwarding?: number;
  /** TLS to the leader a follower forwards to (src/security); default plaintext. */
  readonly credentials?: ChannelCredentials | undefined;
}

/** `items` with the accepted ones' answers at their places `where`. */
function filled(items: SubmitBatchItem[], where: readonly number[], outs: readonly SubmitOutcome[]): SubmitBatchItem[] {
  for (let j = 0; j < outs.length; j++) {
    items[where[j]!] = { taskId: outs[j]!.id, existing: outs[j]!.existing, code: 0, message: '', retryAfterMs: 0 };
  }
  return items;
}

/** A task id a caller sent: required, and within its limit before any lookup. */
function checkTaskId(id: string): void {
  if (!id) throw invalidArgument('task_id is required');
  checkLength('task_id', id, LIMITS.taskId);
}

export class TaskService {
  /** Open Watch streams and WatchMany ids (bounded per task and per replica). */
  readonly watchers: TaskWatchers;
  /** Ids one WatchMany stream may watch (LIMITS; tests lower it). */
  readonly watchManyLimits: { idsPerStream: number } = { idsPerStream: LIMITS.watchManyIdsPerStream };
  private readonly home: Home;
  /** Every refusal this replica answers, by status (metrics). */
  private readonly rejected: (code: status) => void;
  private readonly forwarder: LeaderForwarder;
  private readonly barrier: ReadBarrier;

  constructor(
    private readonly cell: TaskCell,
    opts: TaskServiceOptions = {},
  ) {
    const home = (this.home = cell.home);
    const meter = cell.meter;
    this.rejected = meter ? (code) => meter.rejected(code) : () => undefined;
    this.forwarder = new LeaderForwarder({
      maxInFlight: opts.maxForwarding,
      maxMessageBytes: home.settings.maxMessageBytes,
      now: () => home.scheduler.now(),
      retryHintMs: () => home.retryHintMs(),
      credentials: opts.credentials,
    });
    this.barrier = new ReadBarrier(() => cell.ledgerLog.readIndex());
    // Told of every ledger change, and at the leader of refused attempts waiting again (task-watch.ts).
    this.watchers = watchLedger(home, () => home.retryHintMs());
  }

  /** Tasks with at least one watcher. */
  get watcherCount(): number {
    return this.watchers.tasks;
  }

  /** Calls forwarded to the leader and not yet answered. */
  get forwarding(): number {
    return this.forwarder.inFlight;
  }

  implementation(): TaskServiceServer {
    return {
      submit: (call, cb) => this.submit(call, cb),
      submitBatch: (call, cb) => this.submitBatch(call, cb),
      submitStream: (call) => this.submitStream(call),
      get: (call, cb) => void this.get(call, cb),
      watch: (call) => void this.watch(call),
      watchMany: (call) => this.watchMany(call),
      cancel: (call, cb) => this.cancel(call, cb),
    };
  }

  private fail<T>(cb: sendUnaryData<T>, err: unknown, what: string, peer: string): void {
    const se = toServiceError(toMeshError(err));
    this.rejected(se.code ?? status.INTERNAL);
    const level = se.code === status.INTERNAL ? 'error' : 'warn';
    this.home.log[level]({ code: se.code, err: se.details, peer }, what);
    cb(se, null);
  }

  private request<R>(call: ServerUnaryCall<R, unknown>): R {
    if (isUndecodable(call.request)) throw invalidArgument(`undecodable request: ${call.request.$invalid}`);
    return call.request;
  }

  /**
   * Where a write goes. The leader serves it; a follower forwards it to the
   * leader it knows, unless the call was forwarded to it already (it answers
   * with the hint then: one hop at most). Throws while no leader is ready.
   */
  private route(md: Metadata | undefined): WriteRoute {
    const h = this.cell.leaderHint();
    if (h.leading) return LOCAL;
    const known = h.leader !== '' && h.leaderAddress !== '' && h.leader !== this.cell.replicaId;
    if (known && !(md && isForwarded(md))) return { type: 'forward', leader: h.leader, address: h.leaderAddress };
    if (known) {
      throw notLeader(`cell ${this.home.path}: not the leader; the leader is ${h.leader}`, h.leader, h.leaderAddress);
    }
    // No leader known (an election), or this replica leads but is still catching up.
    throw unavailableRetry(`cell ${this.home.path}: no leader ready yet; retry shortly`, this.home.retryHintMs());
  }

  /** Cancel what this call forwarded when its caller goes away. */
  private upstreamOf(call: { on(ev: 'cancelled', fn: () => void): unknown }): Set<Cancellable> {
    const calls = new Set<Cancellable>();
    call.on('cancelled', () => {
      for (const c of calls) c.cancel();
    });
    return calls;
  }

  /** Repeat a unary write at the leader; its answer (and the leader hint) goes back to the caller. */
  private relay<M extends ForwardMethod>(
    call: ServerUnaryCall<Exchange[M][0], Exchange[M][1]>,
    cb: sendUnaryData<Exchange[M][1]>,
    to: { leader: string; address: string },
    method: M,
    req: Exchange[M][0],
  ): void {
    this.forwarder.forward(to, method, req, call.getDeadline(), this.upstreamOf(call)).then(
      (res) => cb(null, res, leaderTrailers(to)),
      (err: unknown) => this.fail(cb, err, `${method} failed at the leader`, safePeer(call)),
    );
  }

  private submit(call: ServerUnaryCall<SubmitRequest, SubmitResponse>, cb: sendUnaryData<SubmitResponse>): void {
    try {
      const req = this.request(call);
      const why = validateSpec(req.task, this.home.settings, this.home.scheduler.now());
      if (why) throw invalidArgument(why);
      const to = this.route(call.metadata);
      if (to.type === 'forward') {
        this.relay(call, cb, to, 'submit', req);
        return;
      }
      this.home.submit([req.task!]).then(
        ([o]) => cb(null, { taskId: o!.id, existing: o!.existing, state: o!.state }),
        (err: unknown) => this.fail(cb, err, 'submit failed', safePeer(call)),
      );
    } catch (err) {
      this.fail(cb, err, 'submit refused', safePeer(call));
    }
  }

  private submitBatch(
    call: ServerUnaryCall<SubmitBatchRequest, SubmitBatchResponse>,
    cb: sendUnaryData<SubmitBatchResponse>,
  ): void {
    try {
      const req = this.request(call);
      if (req.tasks.length > MAX_BATCH)
        throw invalidArgument(`tasks has ${req.tasks.length} items, over the limit of ${MAX_BATCH} per batch`);
      const to = this.route(call.metadata);
      if (to.type === 'forward') {
        this.relay(call, cb, to, 'submitBatch', req);
        return;
      }
      // Answered in this turn when nothing was to wait for (submitNow, home-submit.ts); a throw is refused below.
      const items = this.submitMany(req.tasks, LOCAL);
      if (Array.isArray(items)) cb(null, { items });
      else
        items.then(
          (items) => cb(null, { items }),
          (err: unknown) => this.fail(cb, err, 'submit batch failed', safePeer(call)),
        );
    } catch (err) {
      this.fail(cb, err, 'submit batch refused', safePeer(call));
    }
  }

  /**
   * One item per spec, in order; a bad spec fails alone, saturation (or a
   * failed forward) fails the batch. Forwarded: the good specs go to the
   * leader as one SubmitBatch. Local: the items at once when the home had
   * nothing to wait for (submitNow); throws instead of rejecting.
   */
  private submitMany(
    specs: readonly (TaskSpec | undefined)[],
    to: WriteRoute,
    deadline: Deadline = Infinity,
    upstream?: Set<Cancellable>,
  ): SubmitBatchItem[] | Promise<SubmitBatchItem[]> {
    const now = this.home.scheduler.now();
    const items: SubmitBatchItem[] = new Array(specs.length);
    const good: TaskSpec[] = [];
    const where: number[] = [];
    let bad = 0;
    for (let i = 0; i < specs.length; i++) {
      const why = validateSpec(specs[i], this.home.settings, now);
      if (why) {
        bad++;
        this.rejected(status.INVALID_ARGUMENT);
        items[i] = { taskId: '', existing: false, code: status.INVALID_ARGUMENT, message: why, retryAfterMs: 0 };
      } else {
        good.push(specs[i]!);
        where.push(i);
      }
    }
    if (bad > 0) this.home.log.warn({ bad, of: specs.length }, 'submit batch: invalid specs refused');
    if (good.length === 0) return items;
    if (to.type === 'forward') {
      return this.forwarder.forward(to, 'submitBatch', { tasks: good }, deadline, upstream).then((res) => {
        for (let j = 0; j < where.length; j++) {
          items[where[j]!] = res.items[j] ?? {
            taskId: '',
            existing: false,
            code: status.INTERNAL,
            message: 'the leader answered fewer items than sent',
            retryAfterMs: 0,
          };
        }
        return items;
      });
    }
    const outs = submitNow(this.home, good);
    return Array.isArray(outs) ? filled(items, where, outs) : outs.then((o) => filled(items, where, o));
  }

  private submitStream(call: ServerDuplexStream<SubmitStreamRequest, SubmitStreamResponse>): void {
    serveSubmitStream(call, {
      home: this.home,
      route: () => this.route(undefined),
      submitMany: (specs, to, upstream) => this.submitMany(specs, to, call.getDeadline(), upstream),
      rejected: this.rejected,
      upstreamOf: (c) => this.upstreamOf(c),
    });
  }

  private find(id: string): TaskRecord {
    checkTaskId(id);
    const rec = this.home.ledger.get(id);
    if (!rec)
      throw notFound(
        `task ${clip(id)} is not known at cell ${this.home.path} (its home cell, or expired from retention)`,
      );
    return rec;
  }

  /** The ReadIndex barrier; a barrier that cannot pass (no leader reachable) is UNAVAILABLE. */
  private async readBarrier(): Promise<void> {
    try {
      await this.barrier.wait();
    } catch (err) {
      const why = err instanceof Error ? err.message : String(err);
      throw unavailableRetry(`cell ${this.home.path}: read barrier failed (${why}); retry`, this.home.retryHintMs());
    }
  }

  private async get(call: ServerUnaryCall<GetRequest, GetResponse>, cb: sendUnaryData<GetResponse>): Promise<void> {
    try {
      const id = this.request(call).taskId;
      checkTaskId(id);
      await this.readBarrier();
      cb(null, { task: this.home.refusals.view(this.find(id)) }); // QUEUED, and why, for a refused attempt at the leader
    } catch (err) {
      this.fail(cb, err, 'get refused', safePeer(call));
    }
  }

  private cancel(call: ServerUnaryCall<CancelRequest, CancelResponse>, cb: sendUnaryData<CancelResponse>): void {
    try {
      const req = this.request(call);
      checkTaskId(req.taskId);
      checkLength('reason', req.reason, LIMITS.reason);
      const to = this.route(call.metadata);
      if (to.type === 'forward') {
        this.relay(call, cb, to, 'cancel', req);
        return;
      }
      this.find(req.taskId);
      this.home.cancel(req.taskId, req.reason).then(
        (rec) => cb(null, { task: toProtoTask(rec) }),
        (err: unknown) => this.fail(cb, err, 'cancel failed', safePeer(call)),
      );
    } catch (err) {
      this.fail(cb, err, 'cancel refused', safePeer(call));
    }
  }

  /** After a read barrier, the record now and at every change (followers apply the same changes). */
  private async watch(call: ServerWritableStream<WatchRequest, WatchResponse>): Promise<void> {
    let rec: TaskRecord;
    try {
      if (isUndecodable(call.request)) throw invalidArgument(`undecodable request: ${call.request.$invalid}`);
      checkTaskId(call.request.taskId);
      await this.readBarrier();
      rec = this.find(call.request.taskId);
      this.watchers.admit(rec.id);
    } catch (err) {
      const se = toServiceError(toMeshError(err));
      this.rejected(se.code ?? status.INTERNAL);
      this.home.log.warn({ code: se.code, err: se.details, peer: safePeer(call) }, 'watch refused');
      call.emit('error', se);
      return;
    }
    if (call.cancelled) return;
    call.write({ task: this.home.refusals.view(rec) });
    if (isTerminal(rec.state)) {
      call.end();
      return;
    }
    this.watchers.add(rec.id, call);
  }

  /** Many tasks' results on one stream (task-watch-many.ts); served on every replica, as Watch. */
  private watchMany(call: ServerDuplexStream<WatchManyRequest, WatchManyResponse>): void {
    serveWatchMany(call, {
      home: this.home,
      watchers: this.watchers,
      readBarrier: () => this.readBarrier(),
      rejected: this.rejected,
      maxIds: this.watchManyLimits.idsPerStream,
    });
  }

  /** End every watch and drop the connections to the leader (shutdown). */
  closeAll(): void {
    this.watchers.closeAll();
    this.forwarder.close();
  }
}
