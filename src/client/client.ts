// MeshClient: submit, read, watch and cancel tasks at any replica of any cell.
//
// Where a call goes: the replica that last answered (or the leader a follower
// named), else the first address. FAILED_PRECONDITION with a
// `meshlb-leader-address` trailer is retried at that leader (bounded hops).
// Every submitted task carries an idempotency key (a random 128-bit one when
// the caller set none), so a submit whose outcome is unknown (no answer by the
// attempt's deadline, the replica unreachable or gone mid-call) is repeated
// with the same keys at the next address, with backoff, within the call's
// deadline (retry.ts): an unknown outcome never becomes two tasks. Get,
// watch and cancel move to the next address on UNAVAILABLE.
// RESOURCE_EXHAUSTED is retried only when the caller opted in, after the
// server's `meshlb-retry-after-ms` hint, within the call's deadline.
//
// Waiting per task is cheap: waitForResult shares one WatchMany stream per
// client (result-stream.ts) and single submits share one SubmitStream
// (shared-submit.ts), or, where a cell has none, are coalesced into
// SubmitBatch calls (submit-coalescer.ts), always where the caller cannot
// tell, so code that submits and waits one task at a time is cheap.
import {
  credentials as grpcCredentials,
  Metadata,
  status,
  type ChannelCredentials,
  type ServiceError,
} from '@grpc/grpc-js';
import { callerCredentials } from '../security/caller.js';
import { TaskServiceClient, type SubmitBatchItem, type SubmitResponse } from '../gen/meshlb/v1/task.js';
import type { Task, TaskSpec } from '../gen/meshlb/v1/task.js';
import { Backoff } from '../agent/backoff.js';
import { MeshClientError } from './errors.js';
import type { CallOpts, MeshClientOptions, RetryExhaustedOptions, SubmitResult } from './options.js';
import {
  newIdempotencyKey,
  nextAddress,
  outcomeUnknown,
  READ,
  sleep,
  SUBMIT_RETRY_DEFAULTS,
  submitAttemptMs,
  submitBackoff,
  type SubmitRetry,
} from './retry.js';
import type { Repeat, SubmitRetryOptions } from './retry.js';
import { taskStateName, toTaskSpec, withStateName, type TaskInput, type TaskRecord } from './spec.js';
import { endSubmit, startSubmit } from './trace.js';
import { SubmitStream, toItem, type SubmitItem } from './submit-stream.js';
import { SubmitCoalescer, type CoalescerPorts } from './submit-coalescer.js';
import { SharedSubmit, type SharedSubmitPorts } from './shared-submit.js';
import { ResultStream, type FollowOpts, type WaitOpts } from './result-stream.js';
import { waitPerTask } from './wait-one.js';
import { followChanges, tapChanges, watchPerTask, type WatchOpts, type WatchPorts } from './watch-one.js';

export { SubmitStream, type SubmitItem };
export type { SubmitRetryOptions };
export type { CallOpts, MeshClientOptions, RetryExhaustedOptions, SubmitResult };

/** The unary calls: request and answer. */
interface Unary {
  submit: [{ task: TaskSpec }, SubmitResponse];
  submitBatch: [{ tasks: TaskSpec[] }, { items: SubmitBatchItem[] }];
  get: [{ taskId: string }, { task?: Task }];
  cancel: [{ taskId: string; reason: string }, { task?: Task }];
}
type UnaryMethod = keyof Unary;

const MAX_BATCH = 1000;
const STREAM_COALESCE = { busyAt: 8, minBatch: 4 };

export class MeshClient {
  readonly addresses: readonly string[];
  /** Leader redirects followed so far (all calls). */
  redirects = 0;
  /** Submit attempts repeated after an unknown outcome, so far (all calls). */
  submitRetries = 0;
  private preferred: string;
  private readonly clients = new Map<string, TaskServiceClient>();
  private readonly defaultDeadlineMs: number;
  private readonly retry: Required<RetryExhaustedOptions> | undefined;
  private readonly maxRedirects: number;
  private readonly random: () => number;
  private readonly autoKey: boolean;
  private readonly submitRetry: SubmitRetry | undefined;
  private closed = false;
  private readonly credentials: ChannelCredentials;
  /** Single submits grouped into SubmitBatch calls; undefined when turned off. */
  readonly coalescer: SubmitCoalescer | undefined;
  /** Single submits on one shared SubmitStream (shared-submit.ts); undefined when turned off. */
  readonly submits: SharedSubmit | undefined;
  /** The shared WatchMany stream(s) waitForResult uses; undefined when turned off. */
  readonly results: ResultStream | undefined;
  /** The shared WatchMany stream(s) with all_changes that watch() uses; undefined when turned off. */
  readonly changes: ResultStream | undefined;
  private readonly watchPorts: WatchPorts;

  constructor(private readonly opts: MeshClientOptions) {
    const addrs = typeof opts.address === 'string' ? [opts.address] : [...opts.address];
    if (addrs.length === 0 || addrs.some((a) => !a)) throw new TypeError('client: address is required');
    this.addresses = addrs;
    this.preferred = addrs[0]!;
    this.defaultDeadlineMs = opts.deadlineMs ?? 10_000;
    this.maxRedirects = opts.maxRedirects ?? 3;
    this.watchPorts = {
      addresses: addrs,
      preferred: () => this.preferred,
      redirect: (address) => {
        this.redirects++;
        this.preferred = address;
      },
      clientFor: (address) => this.clientFor(address),
      maxRedirects: this.maxRedirects,
    };
    this.random = opts.random ?? Math.random;
    const r = opts.retryResourceExhausted;
    this.retry = r ? { maxRetries: 5, fallbackMs: 50, ...(r === true ? {} : r) } : undefined;
    this.autoKey = opts.autoIdempotencyKey ?? true;
    this.submitRetry = opts.submitRetry === false ? undefined : { ...SUBMIT_RETRY_DEFAULTS, ...opts.submitRetry };
    this.credentials = opts.credentials ?? callerCredentials(opts) ?? grpcCredentials.createInsecure();
    const [c, ss] = [opts.submitCoalesce, opts.sharedSubmit];
    const cOpts = typeof c === 'object' ? c : {};
    const unary: CoalescerPorts = {
      one: (spec, deadlineMs) => this.submitCall(spec, { deadlineMs }),
      batch: (specs, deadlineMs) => this.batchCall(specs, { deadlineMs }),
    };
    if (ss !== false) {
      // What the stream hands back (a storm of "no leader" items in an election) goes coalesced, as before it.
      const back = c === false ? undefined : new SubmitCoalescer(unary, cOpts);
      const fallback = back ? back.submit.bind(back) : unary.one;
      this.submits = new SharedSubmit(this.sharedSubmitPorts(fallback, unary.batch), ss === true ? {} : ss);
    }
    // What the coalescer sends rides the stream: alone, or a group in one message (SubmitBatch where the cell has none).
    const s = this.submits;
    const ports = s ? { one: s.submit.bind(s), batch: s.submitBatch.bind(s) } : unary;
    // Singles cheap on the stream: the window only once submits pile up, batches of 4 or more.
    if (c !== false)
      this.coalescer = new SubmitCoalescer(ports, { ...(ss === false ? {} : STREAM_COALESCE), ...cOpts });
    const w = opts.sharedWatch;
    if (w === false) return;
    const first = () => this.preferred;
    const clientFor = (a: string) => this.clientFor(a);
    const fallback = (id: string, o: FollowOpts) => this.waitPerTask(id, o);
    const rs = { addresses: this.addresses, first, clientFor, fallback, random: this.random };
    this.results = new ResultStream(rs, w === true ? {} : w);
    this.changes = new ResultStream(rs, { ...(w === true ? {} : w), allChanges: true });
  }

  /** The address calls go to first (the last one that answered, or the leader a follower named). */
  get address(): string {
    return this.preferred;
  }

  /**
   * Submit one task. `existing` is true when the task's own idempotency key
   * named a task the cell had already; a key the client made up is never
   * reported as existing (a repeat of an attempt whose answer was lost finds
   * the task that attempt created: it is still this call's task; but see `folds`).
   */
  async submit(task: TaskInput, opts: CallOpts = {}): Promise<SubmitResult> {
    const spec = toTaskSpec(task);
    const auto = this.keyed(spec) && !folds(spec);
    const span = startSubmit(this.opts.tracer, opts.context, [spec]);
    // With a tracer each submit keeps its own span and call: not on the stream, not coalesced.
    const call = span ? this.submitCall(spec, opts) : (this.coalescer ?? this.submits)?.submit(spec, opts.deadlineMs);
    const res = await endSubmit(span, call ?? this.submitCall(spec, opts));
    return {
      taskId: res.taskId,
      existing: res.existing && !auto,
      state: res.state,
      stateName: taskStateName(res.state),
    };
  }

  /** Submit many; one item per spec, in order. Large inputs go in several calls of up to 1000. */
  async submitBatch(tasks: readonly TaskInput[], opts: CallOpts = {}): Promise<SubmitItem[]> {
    const specs = tasks.map(toTaskSpec);
    const auto = specs.map((s) => this.keyed(s) && !folds(s));
    // One span for the whole batch (with a tracer): its tasks share one trace.
    const span = startSubmit(this.opts.tracer, opts.context, specs);
    return endSubmit(span, this.submitChunks(specs, auto, opts));
  }

  private async submitChunks(specs: TaskSpec[], auto: boolean[], opts: CallOpts): Promise<SubmitItem[]> {
    const out: SubmitItem[] = [];
    for (let i = 0; i < specs.length; i += MAX_BATCH) {
      const chunk = specs.length <= MAX_BATCH ? specs : specs.slice(i, i + MAX_BATCH);
      for (const it of await this.batchCall(chunk, opts)) {
        const item = toItem(it);
        if (auto[out.length]) item.existing = false;
        out.push(item);
      }
    }
    return out;
  }

  /** One Submit call: repeated after an unknown outcome when the spec has a key. */
  private submitCall(spec: TaskSpec, opts: CallOpts): Promise<SubmitResponse> {
    return this.unary('submit', { task: spec }, opts, { safe: spec.idempotencyKey !== '', submit: true });
  }

  /** One SubmitBatch call: repeated after an unknown outcome when every spec has a key. */
  private async batchCall(tasks: TaskSpec[], opts: CallOpts): Promise<SubmitBatchItem[]> {
    const safe = tasks.every((s) => s.idempotencyKey !== '');
    return (await this.unary('submitBatch', { tasks }, opts, { safe, submit: true })).items;
  }

  /** Give a spec without a key a random one (unless turned off); true when it did. */
  private keyed(spec: TaskSpec): boolean {
    if (spec.idempotencyKey || !this.autoKey) return false;
    spec.idempotencyKey = newIdempotencyKey();
    return true;
  }

  /**
   * A pipelined submission stream: many submits in flight on one gRPC stream,
   * each resolving with its own item. Call end() when done.
   */
  submitStream(opts: CallOpts & { deadlineMs?: number } = {}): SubmitStream {
    const deadline = opts.deadlineMs !== undefined ? Date.now() + opts.deadlineMs : Infinity;
    const call = this.clientFor(this.preferred).submitStream(new Metadata(), { deadline });
    return new SubmitStream(call, this.autoKey ? newIdempotencyKey : undefined);
  }

  async get(taskId: string, opts: CallOpts = {}): Promise<TaskRecord> {
    const res = await this.unary('get', { taskId }, opts, READ);
    if (!res.task) throw new MeshClientError(status.INTERNAL, `server returned no task for ${taskId}`);
    return withStateName(res.task);
  }

  async cancel(taskId: string, reason = '', opts: CallOpts = {}): Promise<TaskRecord> {
    const res = await this.unary('cancel', { taskId, reason }, opts, READ);
    if (!res.task) throw new MeshClientError(status.INTERNAL, `server returned no task for ${taskId}`);
    return withStateName(res.task);
  }

  /**
   * The task now and at every change; the iterator ends after a terminal state
   * (completed, failed, cancelled, dead-lettered). Breaking out of the loop ends the watch.
   * Watches share one WatchMany stream with `all_changes` (re-subscribed on another
   * stream if it breaks) unless `sharedWatch: false`; a cell without WatchMany gets
   * one Watch per task.
   */
  watch(taskId: string, opts: WatchOpts = {}): AsyncGenerator<TaskRecord, void, undefined> {
    const changes = this.changes;
    return changes ? followChanges((id, o) => changes.wait(id, o), taskId, opts) : this.watchPerTask(taskId, opts);
  }

  private watchPerTask(taskId: string, opts: WatchOpts): AsyncGenerator<TaskRecord, void, undefined> {
    return watchPerTask(this.watchPorts, taskId, opts);
  }

  /**
   * Wait until the task ends and return its final record. Throws MeshClientError
   * DEADLINE_EXCEEDED after timeoutMs (default: no limit). Waits share one
   * WatchMany stream (re-subscribed on another stream if it breaks) unless
   * `sharedWatch: false`; a cell without WatchMany gets one Watch per task.
   */
  waitForResult(taskId: string, opts: WaitOpts = {}): Promise<TaskRecord> {
    return this.results ? this.results.wait(taskId, opts) : this.waitPerTask(taskId, opts);
  }

  /** Submit one task and wait for its final record (timeoutMs bounds the wait, after the submit). */
  async submitAndWait(task: TaskInput, opts: CallOpts & WaitOpts = {}): Promise<TaskRecord> {
    const { taskId } = await this.submit(task, opts);
    return this.waitForResult(taskId, opts);
  }

  /** One Watch stream per task (wait-one.ts); `onChange` hears each change before the end. */
  private waitPerTask(taskId: string, opts: FollowOpts): Promise<TaskRecord> {
    const watch = (id: string, o: WatchOpts) => tapChanges(this.watchPerTask(id, o), opts.onChange);
    return waitPerTask(watch, this.random, taskId, opts);
  }

  close(): void {
    this.results?.close();
    this.changes?.close();
    this.submits?.close();
    this.closed = true;
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }

  // ---- plumbing ----

  private sharedSubmitPorts(
    fallback: SharedSubmitPorts['fallback'],
    fallbackBatch: SharedSubmitPorts['fallbackBatch'],
  ): SharedSubmitPorts {
    return {
      addresses: this.addresses,
      first: () => this.preferred,
      answered: (a) => (this.preferred = a),
      open: (a) => this.clientFor(a).submitStream(new Metadata()),
      fallback,
      fallbackBatch,
      defaultDeadlineMs: this.defaultDeadlineMs,
      retry: this.submitRetry,
      random: this.random,
      retryExhausted: this.retry !== undefined,
    };
  }

  private clientFor(address: string): TaskServiceClient {
    if (this.closed) throw new MeshClientError(status.CANCELLED, 'client closed');
    let c = this.clients.get(address);
    if (!c) {
      const max = this.opts.maxMessageBytes ?? 4 * 1024 * 1024;
      c = new TaskServiceClient(address, this.credentials, {
        'grpc.max_send_message_length': max,
        'grpc.max_receive_message_length': max,
        // Pings while a call is open (a long WatchMany): a replica that went silent is found in 40 s.
        'grpc.keepalive_time_ms': 30_000,
        'grpc.keepalive_timeout_ms': 10_000,
        ...this.opts.channelOptions,
      });
      this.clients.set(address, c);
    }
    return c;
  }

  private invoke(address: string, method: UnaryMethod, req: unknown, deadline: number): Promise<unknown> {
    const client = this.clientFor(address) as unknown as Record<
      UnaryMethod,
      (
        req: unknown,
        md: Metadata,
        o: { deadline: number },
        cb: (err: ServiceError | null, res: unknown) => void,
      ) => void
    >;
    return new Promise((resolve, reject) => {
      client[method](req, new Metadata(), { deadline }, (err, res) => (err ? reject(err) : resolve(res)));
    });
  }

  private async unary<M extends UnaryMethod>(
    method: M,
    req: Unary[M][0],
    opts: CallOpts,
    r: Repeat,
  ): Promise<Unary[M][1]>;
  private async unary(method: UnaryMethod, req: unknown, opts: CallOpts, r: Repeat): Promise<unknown> {
    const callMs = opts.deadlineMs ?? this.defaultDeadlineMs;
    const deadline = Date.now() + callMs;
    // Submits under the unknown-outcome policy: each attempt gets part of the deadline.
    const again = r.safe && r.submit ? this.submitRetry : undefined;
    const attemptMs = submitAttemptMs(again, callMs);
    let address = this.preferred;
    let hops = 0;
    let failovers = 0;
    let retries = 0;
    let attempts = 1;
    let fallback: Backoff | undefined;
    let unknownBackoff: Backoff | undefined;
    for (;;) {
      try {
        const res = await this.invoke(address, method, req, Math.min(deadline, Date.now() + attemptMs));
        this.preferred = address;
        return res;
      } catch (e) {
        const err = MeshClientError.from(e);
        if (err.code === status.FAILED_PRECONDITION && err.leaderAddress && hops < this.maxRedirects) {
          hops++;
          this.redirects++;
          address = err.leaderAddress;
          continue;
        }
        if (again && !this.closed && outcomeUnknown(err) && attempts < again.maxAttempts) {
          // Same request, same keys, the next address: the cell answers the task if the lost attempt made it.
          unknownBackoff ??= submitBackoff(again, this.random);
          const wait = Math.max(unknownBackoff.next(), err.retryAfterMs ?? 0);
          if (Date.now() + wait < deadline) {
            attempts++;
            this.submitRetries++;
            address = nextAddress(this.addresses, address);
            await sleep(wait);
            continue;
          }
        }
        if (err.code === status.UNAVAILABLE && r.safe && !again && failovers < this.addresses.length - 1) {
          failovers++;
          address = nextAddress(this.addresses, address);
          continue;
        }
        if (err.code === status.RESOURCE_EXHAUSTED && this.retry && retries < this.retry.maxRetries) {
          retries++;
          fallback ??= new Backoff(
            { initialMs: this.retry.fallbackMs, maxMs: this.retry.fallbackMs * 32 },
            this.random,
          );
          const wait = err.retryAfterMs ?? fallback.next();
          if (Date.now() + wait < deadline) {
            await sleep(wait);
            continue;
          }
        }
        throw err;
      }
    }
  }
}

/** A debounce or singleton key may fold the submit into a live task: the server's `existing` says so. */
const folds = (spec: TaskSpec): boolean => spec.debounceKey !== '' || spec.singletonKey !== '';
