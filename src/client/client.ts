// MeshClient: submit, read, watch and cancel tasks at any replica of any cell.
//
// Where a call goes: the replica that last answered (or the leader a follower
// named), else the first address. FAILED_PRECONDITION with a
// `meshlb-leader-address` trailer is retried at that leader (bounded hops).
// UNAVAILABLE moves to the next address only for calls that are safe to repeat
// (get, watch, cancel, and submits whose specs all carry an idempotency key).
// RESOURCE_EXHAUSTED is retried only when the caller opted in, after the
// server's `meshlb-retry-after-ms` hint, within the call's deadline.
import {
  credentials as grpcCredentials,
  Metadata,
  status,
  type ChannelCredentials,
  type ChannelOptions,
  type ClientDuplexStream,
  type ServiceError,
} from '@grpc/grpc-js';
import {
  TaskServiceClient,
  type SubmitBatchItem,
  type SubmitStreamRequest,
  type SubmitStreamResponse,
  type Task,
  type TaskSpec,
  type TaskState,
} from '../gen/meshlb/v1/task.js';
import { Backoff } from '../agent/backoff.js';
import { MeshClientError } from './errors.js';
import { isTerminal, toTaskSpec, type TaskInput } from './spec.js';

export interface RetryExhaustedOptions {
  /** Max retries of one call (default 5). */
  maxRetries?: number;
  /** Wait used when the server gave no hint (ms, default 50, doubling with jitter). */
  fallbackMs?: number;
}

export interface MeshClientOptions {
  /** host:port of any replica, or several (tried in turn on UNAVAILABLE for safe calls). */
  address: string | readonly string[];
  /** Deadline of each call unless given per call (default 10 s). */
  deadlineMs?: number;
  /** Max gRPC message size both ways (default 4 MiB). */
  maxMessageBytes?: number;
  credentials?: ChannelCredentials;
  channelOptions?: ChannelOptions;
  /** Opt-in: retry RESOURCE_EXHAUSTED after the server's retry hint. */
  retryResourceExhausted?: boolean | RetryExhaustedOptions;
  /** Leader redirects followed per call (default 3). */
  maxRedirects?: number;
  /** Random source for retry jitter. */
  random?: () => number;
}

export interface CallOpts {
  /** This call's deadline (ms from now). */
  deadlineMs?: number;
}

export interface SubmitResult {
  taskId: string;
  /** True when the idempotency key named an existing task. */
  existing: boolean;
  state: TaskState;
}

/** One entry of a batch or stream submission, in order; a bad spec fails alone. */
export interface SubmitItem {
  ok: boolean;
  taskId: string;
  existing: boolean;
  /** gRPC status code (status.OK when accepted). */
  code: number;
  message: string;
}

type UnaryMethod = 'submit' | 'submitBatch' | 'get' | 'cancel';

const MAX_BATCH = 1000;

export class MeshClient {
  readonly addresses: readonly string[];
  /** Leader redirects followed so far (all calls). */
  redirects = 0;
  private preferred: string;
  private readonly clients = new Map<string, TaskServiceClient>();
  private readonly defaultDeadlineMs: number;
  private readonly retry: Required<RetryExhaustedOptions> | undefined;
  private readonly maxRedirects: number;
  private readonly random: () => number;
  private closed = false;

  constructor(private readonly opts: MeshClientOptions) {
    const addrs = typeof opts.address === 'string' ? [opts.address] : [...opts.address];
    if (addrs.length === 0 || addrs.some((a) => !a)) throw new TypeError('client: address is required');
    this.addresses = addrs;
    this.preferred = addrs[0]!;
    this.defaultDeadlineMs = opts.deadlineMs ?? 10_000;
    this.maxRedirects = opts.maxRedirects ?? 3;
    this.random = opts.random ?? Math.random;
    const r = opts.retryResourceExhausted;
    this.retry = r ? { maxRetries: 5, fallbackMs: 50, ...(r === true ? {} : r) } : undefined;
  }

  /** The address calls go to first (the last one that answered, or the leader a follower named). */
  get address(): string {
    return this.preferred;
  }

  async submit(task: TaskInput, opts: CallOpts = {}): Promise<SubmitResult> {
    const spec = toTaskSpec(task);
    const res = await this.unary('submit', { task: spec }, opts, spec.idempotencyKey !== '');
    return { taskId: res.taskId, existing: res.existing, state: res.state };
  }

  /** Submit many; one item per spec, in order. Large inputs go in several calls of up to 1000. */
  async submitBatch(tasks: readonly TaskInput[], opts: CallOpts = {}): Promise<SubmitItem[]> {
    const specs = tasks.map(toTaskSpec);
    const out: SubmitItem[] = [];
    for (let i = 0; i < specs.length; i += MAX_BATCH) {
      const chunk = specs.length <= MAX_BATCH ? specs : specs.slice(i, i + MAX_BATCH);
      const safe = chunk.every((s) => s.idempotencyKey !== '');
      const res = await this.unary('submitBatch', { tasks: chunk }, opts, safe);
      for (const it of res.items) out.push(toItem(it));
    }
    return out;
  }

  /**
   * A pipelined submission stream: many submits in flight on one gRPC stream,
   * each resolving with its own item. Call end() when done.
   */
  submitStream(opts: CallOpts & { deadlineMs?: number } = {}): SubmitStream {
    const deadline = opts.deadlineMs !== undefined ? Date.now() + opts.deadlineMs : Infinity;
    const call = this.clientFor(this.preferred).submitStream(new Metadata(), { deadline });
    return new SubmitStream(call);
  }

  async get(taskId: string, opts: CallOpts = {}): Promise<Task> {
    const res = await this.unary('get', { taskId }, opts, true);
    if (!res.task) throw new MeshClientError(status.INTERNAL, `server returned no task for ${taskId}`);
    return res.task;
  }

  async cancel(taskId: string, reason = '', opts: CallOpts = {}): Promise<Task> {
    const res = await this.unary('cancel', { taskId, reason }, opts, true);
    if (!res.task) throw new MeshClientError(status.INTERNAL, `server returned no task for ${taskId}`);
    return res.task;
  }

  /**
   * The task now and at every change; the iterator ends after a terminal state
   * (completed, failed, cancelled, dead-lettered). Breaking out of the loop cancels the watch.
   */
  async *watch(
    taskId: string,
    opts: { deadlineMs?: number; signal?: AbortSignal } = {},
  ): AsyncGenerator<Task, void, undefined> {
    const deadline = opts.deadlineMs !== undefined ? Date.now() + opts.deadlineMs : Infinity;
    let address = this.preferred;
    let hops = 0;
    let failovers = 0;
    for (;;) {
      if (opts.signal?.aborted)
        throw new MeshClientError(status.CANCELLED, 'watch aborted', {}, { cause: opts.signal.reason });
      const call = this.clientFor(address).watch({ taskId }, new Metadata(), { deadline });
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
          yield msg.task;
          if (over) return;
        }
        over = true;
        return;
      } catch (e) {
        over = true;
        const err = MeshClientError.from(e);
        if (opts.signal?.aborted)
          throw new MeshClientError(status.CANCELLED, 'watch aborted', {}, { cause: opts.signal.reason });
        if (err.code === status.FAILED_PRECONDITION && err.leaderAddress && hops < this.maxRedirects) {
          hops++;
          this.redirects++;
          address = this.preferred = err.leaderAddress;
          continue;
        }
        if (err.code === status.UNAVAILABLE && failovers < this.addresses.length - 1) {
          failovers++;
          address = this.nextAddress(address);
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
   * Wait until the task ends and return its final record. Throws MeshClientError
   * DEADLINE_EXCEEDED after timeoutMs (default: no limit). Survives a watch stream
   * ending early by watching again.
   */
  async waitForResult(taskId: string, opts: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<Task> {
    const until = opts.timeoutMs !== undefined ? Date.now() + opts.timeoutMs : Infinity;
    const backoff = new Backoff({ initialMs: 20, maxMs: 1000 }, this.random);
    for (;;) {
      const left = until - Date.now();
      if (left <= 0) break;
      try {
        let last: Task | undefined;
        for await (const t of this.watch(taskId, {
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

  close(): void {
    this.closed = true;
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }

  // ---- plumbing ----

  private clientFor(address: string): TaskServiceClient {
    if (this.closed) throw new MeshClientError(status.CANCELLED, 'client closed');
    let c = this.clients.get(address);
    if (!c) {
      const max = this.opts.maxMessageBytes ?? 4 * 1024 * 1024;
      c = new TaskServiceClient(address, this.opts.credentials ?? grpcCredentials.createInsecure(), {
        'grpc.max_send_message_length': max,
        'grpc.max_receive_message_length': max,
        ...this.opts.channelOptions,
      });
      this.clients.set(address, c);
    }
    return c;
  }

  private nextAddress(current: string): string {
    const i = this.addresses.indexOf(current);
    return this.addresses[(i + 1) % this.addresses.length]!;
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

  private async unary(method: 'submit', req: { task: TaskSpec }, opts: CallOpts, safe: boolean): Promise<SubmitResult>;
  private async unary(
    method: 'submitBatch',
    req: { tasks: TaskSpec[] },
    opts: CallOpts,
    safe: boolean,
  ): Promise<{ items: SubmitBatchItem[] }>;
  private async unary(method: 'get', req: { taskId: string }, opts: CallOpts, safe: boolean): Promise<{ task?: Task }>;
  private async unary(
    method: 'cancel',
    req: { taskId: string; reason: string },
    opts: CallOpts,
    safe: boolean,
  ): Promise<{ task?: Task }>;
  private async unary(method: UnaryMethod, req: unknown, opts: CallOpts, safe: boolean): Promise<unknown> {
    const deadline = Date.now() + (opts.deadlineMs ?? this.defaultDeadlineMs);
    let address = this.preferred;
    let hops = 0;
    let failovers = 0;
    let retries = 0;
    let fallback: Backoff | undefined;
    for (;;) {
      try {
        const res = await this.invoke(address, method, req, deadline);
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
        if (err.code === status.UNAVAILABLE && safe && failovers < this.addresses.length - 1) {
          failovers++;
          address = this.nextAddress(address);
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

/** Pipelined submissions over one SubmitStream call; responses matched by request id. */
export class SubmitStream {
  private nextId = 1;
  private readonly pending = new Map<
    number,
    { resolve: (i: SubmitItem) => void; reject: (e: MeshClientError) => void }
  >();
  private failure: MeshClientError | undefined;
  private done: Promise<void>;

  constructor(private readonly call: ClientDuplexStream<SubmitStreamRequest, SubmitStreamResponse>) {
    call.on('data', (res: SubmitStreamResponse) => {
      const p = this.pending.get(res.requestId);
      if (!p) return;
      this.pending.delete(res.requestId);
      p.resolve(
        res.item
          ? toItem(res.item)
          : { ok: false, taskId: '', existing: false, code: status.INTERNAL, message: 'empty response item' },
      );
    });
    this.done = new Promise<void>((resolve) => {
      call.on('error', (e) => {
        this.failure = MeshClientError.from(e);
      });
      call.on('status', () => {
        const err = this.failure ?? new MeshClientError(status.UNAVAILABLE, 'submit stream ended before answering');
        for (const p of this.pending.values()) p.reject(err);
        this.pending.clear();
        resolve();
      });
    });
  }

  /** Submissions sent and not yet answered. */
  get inFlight(): number {
    return this.pending.size;
  }

  submit(task: TaskInput): Promise<SubmitItem> {
    if (this.failure) return Promise.reject(this.failure);
    const spec = toTaskSpec(task);
    const requestId = this.nextId++;
    return new Promise<SubmitItem>((resolve, reject) => {
      this.pending.set(requestId, { resolve, reject });
      this.call.write({ requestId, task: spec });
    });
  }

  /** Half-close and wait for every answer. */
  async end(): Promise<void> {
    this.call.end();
    await this.done;
  }

  cancel(): void {
    this.call.cancel();
  }
}

/** Watching is read-only, so it is retried after transport failures and saturation. */
function retryableWatchError(err: MeshClientError): boolean {
  if (err.code === status.UNAVAILABLE || err.code === status.RESOURCE_EXHAUSTED) return true;
  return err.code === status.INTERNAL && /RST_STREAM|Session closed/i.test(err.details);
}

function toItem(it: SubmitBatchItem): SubmitItem {
  return { ok: it.code === status.OK, taskId: it.taskId, existing: it.existing, code: it.code, message: it.message };
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
