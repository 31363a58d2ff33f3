// TaskService for one replica: Submit, SubmitBatch, SubmitStream, Get, Watch,
// Cancel. Input is validated here; every failure becomes a status through
// toServiceError with one log line. A client that goes away mid-call loses
// nothing: a task accepted is in the ledger whether or not the answer reached
// the client (the idempotency key lets it find the task again).
import {
  status,
  type sendUnaryData,
  type ServerDuplexStream,
  type ServerUnaryCall,
  type ServerWritableStream,
} from '@grpc/grpc-js';
import {
  Durability,
  Priority,
  type CancelRequest,
  type CancelResponse,
  type GetRequest,
  type GetResponse,
  type SubmitBatchItem,
  type SubmitBatchRequest,
  type SubmitBatchResponse,
  type SubmitRequest,
  type SubmitResponse,
  type SubmitStreamRequest,
  type SubmitStreamResponse,
  type TaskServiceServer,
  type TaskSpec,
  type WatchRequest,
  type WatchResponse,
} from '../gen/meshlb/v1/task.js';
import { invalidArgument, MeshError, notFound, toServiceError } from '../util/errors.js';
import { isUndecodable, safePeer } from './grpc-util.js';
import type { Home } from './home.js';
import { isTerminal, toProtoTask, type TaskRecord } from './ledger.js';

const MAX_BATCH = 10_000;
const MAX_KEY = 256;
const MAX_LABELS = 64;

/** Why a spec is unacceptable, or '' if it is fine. */
function validateSpec(spec: TaskSpec | undefined, maxPayloadBytes: number, now: number): string {
  if (!spec) return 'task is required';
  if (!spec.kind) return 'task.kind is required';
  if (spec.kind.length > 128) return 'task.kind is longer than 128 characters';
  if (spec.idempotencyKey.length > MAX_KEY) return `task.idempotency_key is longer than ${MAX_KEY} characters`;
  if (spec.payload.length > maxPayloadBytes) {
    return `task.payload is ${spec.payload.length} bytes, over the cap of ${maxPayloadBytes}`;
  }
  if (!(spec.priority in Priority) || spec.priority < 0)
    return `task.priority ${spec.priority} is not a known priority`;
  if (!(spec.durability in Durability) || spec.durability < 0) return `task.durability ${spec.durability} is unknown`;
  if (spec.labels.length > MAX_LABELS || spec.affinity.length > MAX_LABELS) return `at most ${MAX_LABELS} labels`;
  for (const l of spec.labels) if (!l.key) return 'label keys must be non-empty';
  for (const l of spec.affinity) if (!l.key) return 'label keys must be non-empty';
  if (spec.deadlineUnixMs < 0) return 'task.deadline_unix_ms must not be negative';
  if (spec.deadlineUnixMs > 0 && spec.deadlineUnixMs <= now) return 'task.deadline_unix_ms is in the past';
  if (spec.maxAttempts > 100) return 'task.max_attempts must be <= 100';
  return '';
}

export class TaskService {
  /** Open Watch streams by task id. */
  private readonly watchers = new Map<string, Set<ServerWritableStream<WatchRequest, WatchResponse>>>();

  constructor(private readonly home: Home) {
    home.ledger.onChange((rec) => this.changed(rec));
  }

  get watcherCount(): number {
    return this.watchers.size;
  }

  implementation(): TaskServiceServer {
    return {
      submit: (call, cb) => this.submit(call, cb),
      submitBatch: (call, cb) => this.submitBatch(call, cb),
      submitStream: (call) => this.submitStream(call),
      get: (call, cb) => this.get(call, cb),
      watch: (call) => this.watch(call),
      cancel: (call, cb) => this.cancel(call, cb),
    };
  }

  private fail<T>(cb: sendUnaryData<T>, err: unknown, what: string, peer: string): void {
    const se = toServiceError(err);
    const level = se.code === status.INTERNAL ? 'error' : 'warn';
    this.home.log[level]({ code: se.code, err: se.details, peer }, what);
    cb(se, null);
  }

  private request<R>(call: ServerUnaryCall<R, unknown>): R {
    if (isUndecodable(call.request)) throw invalidArgument(`undecodable request: ${call.request.$invalid}`);
    return call.request;
  }

  private submit(call: ServerUnaryCall<SubmitRequest, SubmitResponse>, cb: sendUnaryData<SubmitResponse>): void {
    try {
      const req = this.request(call);
      const why = validateSpec(req.task, this.home.settings.maxPayloadBytes, this.home.scheduler.now());
      if (why) throw invalidArgument(why);
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
        throw invalidArgument(`at most ${MAX_BATCH} tasks per batch, got ${req.tasks.length}`);
      this.submitMany(req.tasks).then(
        (items) => cb(null, { items }),
        (err: unknown) => this.fail(cb, err, 'submit batch failed', safePeer(call)),
      );
    } catch (err) {
      this.fail(cb, err, 'submit batch refused', safePeer(call));
    }
  }

  /** One item per spec, in order; a bad spec fails alone, saturation fails the batch. */
  private async submitMany(specs: readonly TaskSpec[]): Promise<SubmitBatchItem[]> {
    const now = this.home.scheduler.now();
    const items: SubmitBatchItem[] = new Array(specs.length);
    const good: TaskSpec[] = [];
    const where: number[] = [];
    let bad = 0;
    for (let i = 0; i < specs.length; i++) {
      const why = validateSpec(specs[i], this.home.settings.maxPayloadBytes, now);
      if (why) {
        bad++;
        items[i] = { taskId: '', existing: false, code: status.INVALID_ARGUMENT, message: why };
      } else {
        good.push(specs[i]!);
        where.push(i);
      }
    }
    if (bad > 0) this.home.log.warn({ bad, of: specs.length }, 'submit batch: invalid specs refused');
    if (good.length > 0) {
      const outs = await this.home.submit(good);
      for (let j = 0; j < outs.length; j++) {
        items[where[j]!] = { taskId: outs[j]!.id, existing: outs[j]!.existing, code: 0, message: '' };
      }
    }
    return items;
  }

  private submitStream(call: ServerDuplexStream<SubmitStreamRequest, SubmitStreamResponse>): void {
    const home = this.home;
    let open = true;
    // Responses must keep request order: each waits for the ones before it.
    let chain: Promise<void> = Promise.resolve();
    let pending: SubmitStreamRequest[] = [];
    let scheduled = false;
    const flush = (): void => {
      scheduled = false;
      const batch = pending;
      pending = [];
      const run = async (): Promise<void> => {
        let items: SubmitBatchItem[];
        try {
          items = await this.submitMany(batch.map((r) => r.task!));
        } catch (err) {
          const se = toServiceError(err);
          items = batch.map(() => ({
            taskId: '',
            existing: false,
            code: se.code ?? status.INTERNAL,
            message: se.details ?? '',
          }));
        }
        if (!open) return;
        for (let i = 0; i < batch.length; i++) call.write({ requestId: batch[i]!.requestId, item: items[i] });
      };
      chain = chain.then(run, run);
    };
    call.on('data', (req: SubmitStreamRequest) => {
      if (isUndecodable(req)) {
        home.log.warn({ peer: safePeer(call) }, 'submit stream: undecodable message');
        call.emit('error', toServiceError(invalidArgument(`undecodable request: ${req.$invalid}`)));
        open = false;
        return;
      }
      const why = validateSpec(req.task, home.settings.maxPayloadBytes, home.scheduler.now());
      if (why) {
        chain = chain.then(() => {
          if (open)
            call.write({
              requestId: req.requestId,
              item: { taskId: '', existing: false, code: status.INVALID_ARGUMENT, message: why },
            });
        });
        return;
      }
      pending.push(req);
      if (!scheduled) {
        scheduled = true;
        home.scheduler.defer(flush);
      }
    });
    call.on('end', () => {
      const finish = (): void => {
        if (open) call.end();
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

  private find(id: string): TaskRecord {
    if (!id) throw invalidArgument('task_id is required');
    const rec = this.home.ledger.get(id);
    if (!rec)
      throw notFound(`task ${id} is not known at cell ${this.home.path} (its home cell, or expired from retention)`);
    return rec;
  }

  private get(call: ServerUnaryCall<GetRequest, GetResponse>, cb: sendUnaryData<GetResponse>): void {
    try {
      cb(null, { task: toProtoTask(this.find(this.request(call).taskId)) });
    } catch (err) {
      this.fail(cb, err, 'get refused', safePeer(call));
    }
  }

  private cancel(call: ServerUnaryCall<CancelRequest, CancelResponse>, cb: sendUnaryData<CancelResponse>): void {
    try {
      const req = this.request(call);
      this.find(req.taskId);
      this.home.cancel(req.taskId, req.reason).then(
        (rec) => cb(null, { task: toProtoTask(rec) }),
        (err: unknown) => this.fail(cb, err, 'cancel failed', safePeer(call)),
      );
    } catch (err) {
      this.fail(cb, err, 'cancel refused', safePeer(call));
    }
  }

  private watch(call: ServerWritableStream<WatchRequest, WatchResponse>): void {
    let rec: TaskRecord;
    try {
      if (isUndecodable(call.request)) throw invalidArgument(`undecodable request: ${call.request.$invalid}`);
      rec = this.find(call.request.taskId);
    } catch (err) {
      const se = toServiceError(err);
      this.home.log.warn({ code: se.code, err: se.details, peer: safePeer(call) }, 'watch refused');
      call.emit('error', se);
      return;
    }
    call.write({ task: toProtoTask(rec) });
    if (isTerminal(rec.state)) {
      call.end();
      return;
    }
    let set = this.watchers.get(rec.id);
    if (!set) this.watchers.set(rec.id, (set = new Set()));
    set.add(call);
    const id = rec.id;
    const drop = (): void => {
      const s = this.watchers.get(id);
      s?.delete(call);
      if (s && s.size === 0) this.watchers.delete(id);
    };
    call.on('cancelled', drop);
    call.on('error', drop);
    call.on('close', drop);
  }

  private changed(rec: TaskRecord): void {
    const set = this.watchers.get(rec.id);
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
    if (done) this.watchers.delete(rec.id);
  }

  /** End every watch (shutdown). */
  closeAll(): void {
    for (const set of this.watchers.values()) {
      for (const call of set) {
        try {
          call.emit('error', toServiceError(new MeshError(status.UNAVAILABLE, 'replica shutting down')));
        } catch {
          // gone
        }
      }
    }
    this.watchers.clear();
  }
}
