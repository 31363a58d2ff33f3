// Single submits on one long-lived TaskService.SubmitStream per client, instead
// of one unary Submit per call: a submit is one message each way on a stream
// that stays open while submits flow (the cell batches what arrives in one
// turn, task-stream.ts). What each caller sees is what its own Submit would
// have answered (the coalescer's contract, submit-coalescer.ts):
// - a new task answers QUEUED; a task its key named already is asked again
//   alone on the unary path, so its state (and `existing`) are the cell's;
// - a spec the cell refuses (INVALID_ARGUMENT) rejects only its submit;
// - an item the cell could not decide (no leader, a forward that failed,
//   saturation: statuses the server gives every item of a batch) goes down
//   the unary path (`fallback`), which has the client's redirects, retries
//   and retry hints;
// - a stream refused for one of its messages (a tenant the token may not
//   submit for, a quota, an oversized message): every unanswered submit goes
//   down the unary path, where only the guilty one fails;
// - a stream that breaks (UNAVAILABLE, a reset, a hung replica: an unknown
//   outcome) has its unanswered submits sent again, with the same idempotency
//   keys, on a new stream at the next address after a jittered backoff,
//   within each submit's deadline and attempts (submitRetry): the cell
//   answers a repeated key with the task it has, so a task is never lost nor
//   doubled;
// - a submit not answered by its deadline rejects DEADLINE_EXCEEDED (its
//   outcome unknown, as a unary deadline); one unanswered for the attempt
//   timeout marks the stream hung: it is cancelled and its submits resent;
// - a cell without SubmitStream (UNIMPLEMENTED) sends this and every later
//   submit down the unary path;
// - a batch (the coalescer's groups) is one message answered in one (`tasks`,
//   `items`: stream-batch.ts); a cell that reads no `tasks` gets SubmitBatch.
// Only keyed specs ride the stream (MeshClient keys every spec unless
// `autoIdempotencyKey: false`): a resend must be safe.
//
// Invariants: every entry not yet settled is in exactly one place: `queue`
// (to send, in order) or one Conn's `pending` (sent, unanswered); at most
// `maxInFlight` are pending; an entry settles once (`done`).
import { status } from '@grpc/grpc-js';
import { TaskState, type SubmitBatchItem, type SubmitResponse, type TaskSpec } from '../gen/meshlb/v1/task.js';
import type { SubmitStreamRequest, SubmitStreamResponse } from '../gen/meshlb/v1/task.js';
import { Backoff } from '../agent/backoff.js';
import { MeshClientError, RETRY_AFTER_TRAILER } from './errors.js';
import { REAL_CLOCK, type Clock } from './clock.js';
import { merge, undecided, weight } from './stream-batch.js';
import { nextAddress, outcomeUnknown, submitAttemptMs, submitBackoff, type SubmitRetry } from './retry.js';

export type { Clock };

/** MeshClientOptions.sharedSubmit. */
export interface SharedSubmitOptions {
  /** Submits sent and not yet answered (default 1000); more wait in the client, in order. */
  maxInFlight?: number;
  /** How long a stream with nothing in flight stays open for the next submit (ms, default 250). */
  lingerMs?: number;
}

export const SHARED_SUBMIT_DEFAULTS: Required<SharedSubmitOptions> = { maxInFlight: 1000, lingerMs: 250 };

/** The part of a duplex call used here (grpc-js's ClientDuplexStream has it). */
export interface SubmitCall {
  write(req: SubmitStreamRequest): unknown;
  end(): void;
  cancel(): void;
  on(ev: 'data', fn: (res: SubmitStreamResponse) => void): unknown;
  on(ev: 'error', fn: (e: Error) => void): unknown;
  on(ev: 'status', fn: (s: { code: status; details: string }) => void): unknown;
}

export interface SharedSubmitPorts {
  readonly addresses: readonly string[];
  /** Where the next stream opens (the client's preferred address). */
  first(): string;
  /** A stream answered at `address`: later calls go there first. */
  answered(address: string): void;
  open(address: string): SubmitCall;
  /** The unary path (coalesced or one Submit), with the client's redirects and retries. */
  fallback(spec: TaskSpec, deadlineMs: number | undefined): Promise<SubmitResponse>;
  /** The unary path for a batch (one SubmitBatch), with the client's redirects and retries. */
  fallbackBatch(specs: TaskSpec[], deadlineMs: number | undefined): Promise<SubmitBatchItem[]>;
  readonly defaultDeadlineMs: number;
  /** Resends after an unknown outcome (MeshClient's submitRetry); undefined: once per address on UNAVAILABLE. */
  readonly retry: SubmitRetry | undefined;
  readonly random: () => number;
  /** The caller opted in to retries of RESOURCE_EXHAUSTED (retryResourceExhausted). */
  readonly retryExhausted: boolean;
  readonly clock?: Clock;
}

interface Entry {
  readonly spec: TaskSpec;
  /** A batch (`submitBatch`): its specs, sent in one message and answered in one, as SubmitBatch's items. */
  readonly batch?: { readonly specs: TaskSpec[]; resolve(items: SubmitBatchItem[]): void };
  readonly deadlineMs: number | undefined;
  /** The submit's deadline and its current attempt's (clock ms). */
  readonly until: number;
  attemptUntil: number;
  /** Times sent on a stream. */
  sends: number;
  done: boolean;
  resolve(r: SubmitResponse): void;
  reject(e: unknown): void;
}

class Conn {
  readonly pending = new Map<number, Entry>();
  nextId = 1;
  ending = false;
  ended = false;
  answered = false;
  linger: unknown;
  failure: MeshClientError | undefined;
  constructor(
    readonly address: string,
    readonly call: SubmitCall,
  ) {}
}

export class SharedSubmit {
  private readonly o: Required<SharedSubmitOptions>;
  private readonly clock: Clock;
  private conn: Conn | undefined;
  private queue: Entry[] = [];
  private inFlight = 0;
  /** Where the next stream opens after a break (else ports.first()). */
  private next: string | undefined;
  private reopenTimer: unknown;
  private reopenBackoff: Backoff;
  private sweepTimer: unknown;
  private sweepAt = Infinity;
  private closed = false;
  /** A cell without SubmitStream: everything goes down the unary path. */
  off = false;
  /** A cell that does not take batches on the stream (older than `tasks`): batches go as SubmitBatch. */
  batchesOff = false;
  /** Streams opened, broken (not by linger), submits sent again on a new stream, handed to the unary path. */
  readonly stats = { streams: 0, broken: 0, resent: 0, fallbacks: 0 };

  constructor(
    private readonly ports: SharedSubmitPorts,
    opts: SharedSubmitOptions = {},
  ) {
    this.o = { ...SHARED_SUBMIT_DEFAULTS, ...opts };
    this.o.maxInFlight = Math.max(1, this.o.maxInFlight);
    this.clock = ports.clock ?? REAL_CLOCK;
    this.reopenBackoff = submitBackoff(ports.retry, ports.random);
  }

  submit(spec: TaskSpec, deadlineMs: number | undefined): Promise<SubmitResponse> {
    if (this.off || this.closed || spec.idempotencyKey === '') return this.ports.fallback(spec, deadlineMs);
    return new Promise<SubmitResponse>((resolve, reject) => this.enqueue({ spec, resolve, reject }, deadlineMs));
  }

  /**
   * Several submits in one stream message, answered in one: the items a SubmitBatch of them would
   * answer (the coalescer reads them). Resent, failed over and timed out as single submits are.
   */
  submitBatch(specs: TaskSpec[], deadlineMs: number | undefined): Promise<SubmitBatchItem[]> {
    if (this.off || this.batchesOff || this.closed || specs.some((s) => s.idempotencyKey === ''))
      return this.ports.fallbackBatch(specs, deadlineMs);
    return new Promise<SubmitBatchItem[]>((resolve, reject) =>
      this.enqueue({ spec: specs[0]!, batch: { specs, resolve }, resolve: () => undefined, reject }, deadlineMs),
    );
  }

  private enqueue(e: Pick<Entry, 'spec' | 'batch' | 'resolve' | 'reject'>, deadlineMs: number | undefined): void {
    const until = this.clock.now() + (deadlineMs ?? this.ports.defaultDeadlineMs);
    this.queue.push({ ...e, deadlineMs, until, attemptUntil: until, sends: 0, done: false });
    this.armAt(until);
    this.pump();
  }

  /** Submits sent and not answered. */
  get sent(): number {
    return this.inFlight;
  }

  close(): void {
    this.closed = true;
    this.clock.clearTimeout(this.reopenTimer);
    this.clock.clearTimeout(this.sweepTimer);
    const err = new MeshClientError(status.CANCELLED, 'client closed');
    for (const e of this.queue) this.settle(e, err);
    this.queue = [];
    const c = this.conn;
    this.conn = undefined;
    if (c) {
      for (const e of c.pending.values()) this.settle(e, err);
      c.pending.clear();
      this.inFlight = 0;
      this.clock.clearTimeout(c.linger);
      c.call.cancel();
    }
  }

  // ---- sending ----

  private pump(): void {
    if (this.reopenTimer !== undefined || this.closed) return;
    while (this.queue.length > 0 && this.inFlight < this.o.maxInFlight) {
      const e = this.queue.shift()!;
      if (e.done) continue;
      this.send(e, this.current());
    }
  }

  private current(): Conn {
    if (this.conn && !this.conn.ending) return this.conn;
    const address = this.next ?? this.ports.first();
    this.next = undefined;
    const c = new Conn(address, this.ports.open(address));
    this.stats.streams++;
    c.call.on('data', (res) => this.onData(c, res));
    c.call.on('error', (e) => (c.failure ??= MeshClientError.from(e)));
    c.call.on('status', (s) => this.onEnded(c, c.failure ?? new MeshClientError(s.code, s.details)));
    return (this.conn = c);
  }

  private send(e: Entry, c: Conn): void {
    const requestId = c.nextId++;
    e.sends++;
    const attemptMs = submitAttemptMs(this.ports.retry, e.deadlineMs ?? this.ports.defaultDeadlineMs);
    e.attemptUntil = Math.min(e.until, this.clock.now() + attemptMs);
    c.pending.set(requestId, e);
    this.inFlight += weight(e);
    this.armAt(e.attemptUntil);
    if (c.linger !== undefined) {
      this.clock.clearTimeout(c.linger);
      c.linger = undefined;
    }
    c.call.write(
      e.batch ? { requestId, task: undefined, tasks: e.batch.specs } : { requestId, task: e.spec, tasks: [] },
    );
  }

  // ---- answers ----

  private onData(c: Conn, res: SubmitStreamResponse): void {
    const e = c.pending.get(res.requestId);
    if (!e) return;
    c.pending.delete(res.requestId);
    this.inFlight -= weight(e);
    if (!c.answered) {
      c.answered = true;
      this.reopenBackoff.attempt = 0;
      this.ports.answered(c.address);
    }
    if (e.batch) this.answerBatch(e, e.batch, res);
    else this.answer(e, res.item);
    if (this.queue.length > 0) this.pump();
    else if (c.pending.size === 0 && c === this.conn) this.idle(c);
  }

  private answer(e: Entry, item: SubmitBatchItem | undefined): void {
    if (e.done) return;
    if (!item) return this.settle(e, new MeshClientError(status.INTERNAL, 'submit stream: empty response item'));
    if (item.code === status.OK && !item.existing)
      return this.settle(e, undefined, { taskId: item.taskId, existing: false, state: TaskState.TASK_STATE_QUEUED });
    if (item.code === status.INVALID_ARGUMENT) return this.settle(e, new MeshClientError(item.code, item.message));
    if (item.code === status.RESOURCE_EXHAUSTED) {
      // Saturation: what a unary Submit answers (with the hint), retried only when the caller opted in.
      const hint: Record<string, string> =
        item.retryAfterMs > 0 ? { [RETRY_AFTER_TRAILER]: String(item.retryAfterMs) } : {};
      const err = new MeshClientError(item.code, item.message, hint);
      if (!this.ports.retryExhausted) return this.settle(e, err);
      return this.toFallback(e, item.retryAfterMs);
    }
    // A key that named a task (its state is the cell's), or a status for the whole batch it went in.
    this.toFallback(e);
  }

  private answerBatch(e: Entry, b: NonNullable<Entry['batch']>, res: SubmitStreamResponse): void {
    if (e.done) return;
    if (res.items.length !== b.specs.length) {
      // Refused whole, or a cell that reads no `tasks` (it saw a request without a task): SubmitBatch answers it.
      if (res.items.length === 0) this.batchesOff = true;
      return this.toFallback(e);
    }
    const again = undecided(res.items, this.ports.retryExhausted);
    if (again.at.length === 0) {
      e.done = true;
      return b.resolve(res.items);
    }
    this.toFallback(e, again.waitMs, { items: res.items, at: again.at });
  }

  /** The submit goes down the unary path (after `delayMs`), which answers it (of a batch, `part.at` alone). */
  private toFallback(e: Entry, delayMs = 0, part?: { items: SubmitBatchItem[]; at: number[] }): void {
    if (e.done) return;
    e.done = true;
    this.stats.fallbacks++;
    const go = (): void => {
      const left = Math.max(1, e.until - this.clock.now());
      const b = e.batch;
      if (b)
        this.ports.fallbackBatch(part ? part.at.map((i) => b.specs[i]!) : b.specs, left).then(merge(b, part), e.reject);
      else this.ports.fallback(e.spec, left).then(e.resolve, e.reject);
    };
    if (delayMs > 0) this.clock.setTimeout(go, Math.min(delayMs, Math.max(0, e.until - this.clock.now())));
    else go();
  }

  private settle(e: Entry, err: unknown, res?: SubmitResponse): void {
    if (e.done) return;
    e.done = true;
    if (err !== undefined) e.reject(err);
    else e.resolve(res!);
  }

  /** Nothing in flight: keep the stream open `lingerMs` for the next submit, then half-close it. */
  private idle(c: Conn): void {
    if (c.linger !== undefined || c.ending) return;
    c.linger = this.clock.setTimeout(() => {
      c.linger = undefined;
      if (c.pending.size > 0 || c.ending) return;
      c.ending = true;
      c.call.end();
    }, this.o.lingerMs);
  }

  private onEnded(c: Conn, err: MeshClientError): void {
    if (c.ended) return;
    c.ended = true;
    this.clock.clearTimeout(c.linger);
    c.ending = true;
    if (this.conn === c) this.conn = undefined;
    const left = [...c.pending.values()]; // in request order
    c.pending.clear();
    for (const e of left) this.inFlight -= weight(e);
    if (this.closed) return;
    if (left.length === 0 && err.code === status.OK) return this.pump();
    if (err.code === status.UNIMPLEMENTED) {
      this.off = true;
      for (const e of [...left, ...this.queue.splice(0)]) this.toFallback(e);
      return;
    }
    this.stats.broken++;
    if (err.code !== status.OK && !outcomeUnknown(err)) {
      // Refused for one of its messages, which is not known: each submit goes alone.
      for (const e of left) this.toFallback(e);
      return this.pump();
    }
    const again: Entry[] = [];
    for (const e of left) {
      if (e.done) continue;
      if (this.mayResend(e, err)) again.push(e);
      else this.settle(e, err.code === status.OK ? unanswered() : err);
    }
    this.stats.resent += again.length;
    this.queue.unshift(...again);
    // The next stream: the next address, after a jittered backoff (or the server's hint).
    this.next = nextAddress(this.ports.addresses, c.address);
    if (this.queue.length === 0 || this.reopenTimer !== undefined) return;
    const wait = Math.max(this.reopenBackoff.next(), err.retryAfterMs ?? 0);
    this.reopenTimer = this.clock.setTimeout(() => {
      this.reopenTimer = undefined;
      this.pump();
    }, wait);
  }

  /** A submit on a stream that broke: sent again (same key) if its deadline and attempts allow. */
  private mayResend(e: Entry, err: MeshClientError): boolean {
    if (this.clock.now() >= e.until) return false;
    const r = this.ports.retry;
    if (r) return e.sends < r.maxAttempts;
    return err.code === status.UNAVAILABLE && e.sends < this.ports.addresses.length;
  }

  // ---- deadlines ----

  /**
   * One timer, at the earliest deadline (of a submit, or of an attempt on a
   * stream) among those waiting; weak: an open stream keeps the process alive.
   */
  private armAt(at: number): void {
    if (at >= this.sweepAt) return;
    this.clock.clearTimeout(this.sweepTimer);
    this.sweepAt = at;
    this.sweepTimer = this.clock.setTimeout(() => this.sweep(), Math.max(0, at - this.clock.now()), true);
  }

  private sweep(): void {
    this.sweepTimer = undefined;
    this.sweepAt = Infinity;
    const now = this.clock.now();
    for (const e of this.queue) if (!e.done && e.until <= now) this.settle(e, deadline(e));
    this.queue = this.queue.filter((e) => !e.done);
    const c = this.conn;
    let hung = false;
    if (c) {
      for (const [id, e] of c.pending) {
        if (e.until <= now) {
          c.pending.delete(id);
          this.inFlight -= weight(e);
          this.settle(e, deadline(e));
        } else if (e.attemptUntil <= now) hung = true;
      }
    }
    if (c && hung) {
      // A replica that does not answer: drop the stream; its submits go again elsewhere.
      c.call.cancel();
      this.onEnded(
        c,
        new MeshClientError(status.DEADLINE_EXCEEDED, `submit stream to ${c.address}: no answer in time`),
      );
    }
    let at = Infinity;
    for (const e of this.queue) at = Math.min(at, e.until);
    if (this.conn) for (const e of this.conn.pending.values()) at = Math.min(at, e.attemptUntil);
    if (at < Infinity) this.armAt(at);
    this.pump();
  }
}

function deadline(e: Entry): MeshClientError {
  return new MeshClientError(
    status.DEADLINE_EXCEEDED,
    `submit: no answer within the deadline (${e.deadlineMs ?? 'default'} ms)`,
  );
}

function unanswered(): MeshClientError {
  return new MeshClientError(status.UNAVAILABLE, 'submit stream ended before answering');
}
