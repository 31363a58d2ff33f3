// The client's shared waiting path: waitForResult on many tasks over one
// TaskService.WatchMany stream instead of one Watch stream per task. Ids asked
// for in one turn of the event loop go out in one message; the cell answers
// the terminal records that become ready together in one message.
//
// Invariants:
// - every id with a waiter is in exactly one place: a Conn's `ids` (sent, or
//   to be sent at the next flush) or `parked` (waiting to be sent again after
//   a broken stream or a retryable refusal); so a broken stream loses
//   nothing: its ids are parked and added again on a new stream;
// - a Conn holds at most `maxIdsPerStream` ids (more go on another Conn);
// - a Conn with no ids ends after `lingerMs` (the process may exit then);
// - a cell that does not serve WatchMany (UNIMPLEMENTED), or a stream refused
//   for a reason a new stream cannot fix, sends the ids concerned down the
//   per-task path (`fallback`: one Watch each), which answers each precisely.
import { Metadata, status, type ClientDuplexStream } from '@grpc/grpc-js';
import type { Task, TaskServiceClient, WatchManyRequest, WatchManyResponse } from '../gen/meshlb/v1/task.js';
import { Backoff } from '../agent/backoff.js';
import { MeshClientError } from './errors.js';
import { isTerminal, withStateName, type TaskRecord } from './spec.js';

export interface ResultStreamOptions {
  /** Ids one stream watches at most (default 10,000, the cell's default limit). */
  maxIdsPerStream?: number;
  /** How long a stream with nothing to watch stays open for the next wait (ms, default 250). */
  lingerMs?: number;
}

export interface ResultStreamPorts {
  /** The replicas, and the one to start at. */
  readonly addresses: readonly string[];
  first(): string;
  clientFor(address: string): TaskServiceClient;
  /** The per-task path (a Watch per task), for cells without WatchMany. */
  fallback(id: string, opts: WaitOpts): Promise<TaskRecord>;
  readonly random: () => number;
}

export interface WaitOpts {
  timeoutMs?: number;
  signal?: AbortSignal;
}

interface Waiter {
  resolve(t: TaskRecord): void;
  reject(e: unknown): void;
  readonly signal: AbortSignal | undefined;
  /** When the caller's timeout ends (Date.now() ms; Infinity: none). */
  readonly until: number;
  cleanup(): void;
}

const MAX_IDS_PER_MESSAGE = 1000;

/** Retryable: a new stream (or a later add) can succeed. */
function retryable(code: status, details: string): boolean {
  switch (code) {
    case status.UNAVAILABLE:
    case status.RESOURCE_EXHAUSTED:
    case status.DEADLINE_EXCEEDED:
    case status.CANCELLED:
    case status.ABORTED:
    case status.OK:
      return true;
    case status.INTERNAL:
    case status.UNKNOWN:
      return /RST_STREAM|Session closed|Connection dropped|stream/i.test(details);
    default:
      return false;
  }
}

/** One WatchMany call and the ids it carries. */
class Conn {
  readonly ids = new Set<string>();
  private toAdd: string[] = [];
  private toDrop: string[] = [];
  private flushing = false;
  ending = false;
  ended = false;
  private linger: NodeJS.Timeout | undefined;
  private failure: MeshClientError | undefined;
  readonly call: ClientDuplexStream<WatchManyRequest, WatchManyResponse>;

  constructor(
    readonly address: string,
    hub: ResultStream,
    client: TaskServiceClient,
    private readonly lingerMs: number,
  ) {
    this.call = client.watchMany(new Metadata());
    this.call.on('data', (res: WatchManyResponse) => hub.onResponse(this, res));
    this.call.on('error', (e) => (this.failure = MeshClientError.from(e)));
    this.call.on('status', (s: { code: status; details: string }) => {
      this.ended = true;
      clearTimeout(this.linger);
      const err = this.failure ?? new MeshClientError(s.code, s.details || 'watch stream ended');
      hub.onEnded(this, err);
    });
  }

  get room(): boolean {
    return !this.ending && !this.ended;
  }

  add(id: string): void {
    this.ids.add(id);
    this.toAdd.push(id);
    clearTimeout(this.linger);
    this.linger = undefined;
    this.schedule();
  }

  drop(id: string): void {
    if (!this.ids.delete(id)) return;
    this.toDrop.push(id);
    this.schedule();
  }

  /** An id answered (its record came, or an error entry): no more to send for it. */
  forget(id: string): void {
    this.ids.delete(id);
    this.idleCheck();
  }

  cancel(): void {
    this.ending = true;
    clearTimeout(this.linger);
    this.call.cancel();
  }

  private schedule(): void {
    if (this.flushing) return;
    this.flushing = true;
    setImmediate(() => this.flush());
  }

  private flush(): void {
    this.flushing = false;
    if (this.ended || this.ending) return;
    const drop = this.toDrop.filter((id) => !this.ids.has(id));
    const add = this.toAdd.filter((id) => this.ids.has(id));
    this.toAdd = [];
    this.toDrop = [];
    for (let i = 0; i < Math.max(add.length, drop.length); i += MAX_IDS_PER_MESSAGE) {
      this.call.write({
        taskIds: add.slice(i, i + MAX_IDS_PER_MESSAGE),
        allChanges: false,
        unwatchTaskIds: drop.slice(i, i + MAX_IDS_PER_MESSAGE),
      });
    }
    this.idleCheck();
  }

  private idleCheck(): void {
    if (this.ids.size > 0 || this.ending || this.ended || this.linger) return;
    this.linger = setTimeout(() => {
      this.linger = undefined;
      if (this.ids.size > 0 || this.ended) return;
      // Half-close: the cell ends the stream, as nothing is watched.
      this.ending = true;
      this.call.end();
    }, this.lingerMs);
    this.linger.unref();
  }
}

export class ResultStream {
  private readonly waiting = new Map<string, Set<Waiter>>();
  /** Waits (and their ids) per abort signal given, with the one listener on it. */
  private readonly bySignal = new Map<AbortSignal, { waits: Map<Waiter, string>; onAbort: () => void }>();
  /** Where each id waiting is carried. */
  private readonly carrier = new Map<string, Conn>();
  private readonly conns: Conn[] = [];
  /** Ids to add again once the backoff passes. */
  private readonly parked = new Set<string>();
  private parkTimer: NodeJS.Timeout | undefined;
  private readonly backoff: Backoff;
  private address: string | undefined;
  /** The cell answered UNIMPLEMENTED: every wait takes the per-task path. */
  private unsupported = false;
  private closed = false;
  private readonly maxIds: number;
  private readonly lingerMs: number;
  /** Streams opened, and streams that broke while ids were waiting (tests, benchmarks). */
  readonly stats = { streams: 0, broken: 0, resubscribed: 0 };

  constructor(
    private readonly ports: ResultStreamPorts,
    opts: ResultStreamOptions = {},
  ) {
    this.maxIds = Math.max(1, opts.maxIdsPerStream ?? 10_000);
    this.lingerMs = opts.lingerMs ?? 250;
    this.backoff = new Backoff({ initialMs: 20, maxMs: 1000 }, ports.random);
  }

  /** Ids with a waiter. */
  get pending(): number {
    return this.waiting.size;
  }

  wait(id: string, opts: WaitOpts): Promise<TaskRecord> {
    if (this.unsupported || this.closed) return this.ports.fallback(id, opts);
    if (opts.signal?.aborted) return Promise.reject(aborted(opts.signal));
    return new Promise<TaskRecord>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const signal = opts.signal;
      const w: Waiter = {
        resolve,
        reject,
        signal,
        until: opts.timeoutMs !== undefined ? Date.now() + opts.timeoutMs : Infinity,
        cleanup: () => {
          clearTimeout(timer);
          if (signal) this.unlisten(signal, w);
        },
      };
      if (opts.timeoutMs !== undefined) {
        const ms = opts.timeoutMs;
        const err = new MeshClientError(status.DEADLINE_EXCEEDED, `task ${id} did not finish within ${ms} ms`);
        timer = setTimeout(() => this.leave(id, w, err), Math.max(0, ms));
      }
      if (signal) this.listen(signal, id, w);
      const set = this.waiting.get(id);
      if (set) {
        set.add(w);
        return;
      }
      this.waiting.set(id, new Set([w]));
      this.place(id);
    });
  }

  /**
   * One 'abort' listener per signal, whatever the number of waits given it:
   * EventTarget looks through its listeners on every add and remove, so one
   * listener per wait costs O(waits) each when thousands share a signal.
   */
  private listen(signal: AbortSignal, id: string, w: Waiter): void {
    let entry = this.bySignal.get(signal);
    if (!entry) {
      const waits = new Map<Waiter, string>();
      const onAbort = (): void => {
        this.bySignal.delete(signal);
        for (const [x, xid] of [...waits]) this.leave(xid, x, aborted(signal));
      };
      this.bySignal.set(signal, (entry = { waits, onAbort }));
      signal.addEventListener('abort', onAbort, { once: true });
    }
    entry.waits.set(w, id);
  }

  private unlisten(signal: AbortSignal, w: Waiter): void {
    const entry = this.bySignal.get(signal);
    if (!entry?.waits.delete(w) || entry.waits.size > 0) return;
    this.bySignal.delete(signal);
    signal.removeEventListener('abort', entry.onAbort);
  }

  /** Stop every stream; waiters reject with CANCELLED. */
  close(): void {
    this.closed = true;
    clearTimeout(this.parkTimer);
    for (const c of this.conns.splice(0)) c.cancel();
    const err = new MeshClientError(status.CANCELLED, 'client closed');
    for (const id of [...this.waiting.keys()]) this.settle(id, (w) => w.reject(err));
    this.parked.clear();
  }

  onResponse(conn: Conn, res: WatchManyResponse): void {
    this.backoff.reset();
    for (const t of res.tasks) this.delivered(conn, t);
    for (const e of res.errors) {
      if (conn.ids.has(e.taskId)) conn.forget(e.taskId);
      if (this.carrier.get(e.taskId) !== conn) continue;
      this.carrier.delete(e.taskId);
      if (retryable(e.code, e.message)) this.park(e.taskId);
      else this.settle(e.taskId, (w) => w.reject(new MeshClientError(e.code, e.message)));
    }
  }

  onEnded(conn: Conn, err: MeshClientError): void {
    const i = this.conns.indexOf(conn);
    if (i >= 0) this.conns.splice(i, 1);
    const left = [...conn.ids].filter((id) => this.carrier.get(id) === conn);
    for (const id of left) this.carrier.delete(id);
    if (left.length === 0 || this.closed) return;
    this.stats.broken++;
    if (err.code === status.UNIMPLEMENTED) {
      this.unsupported = true;
      for (const id of left) this.toFallback(id);
      return;
    }
    if (err.code === status.FAILED_PRECONDITION && err.leaderAddress) {
      this.address = err.leaderAddress;
    } else if (!retryable(err.code, err.details)) {
      // Refused for a reason a new stream cannot fix: let each id's own Watch say why.
      for (const id of left) this.toFallback(id);
      return;
    } else if (err.code === status.UNAVAILABLE || err.code === status.INTERNAL || err.code === status.UNKNOWN) {
      this.address = this.next(conn.address);
    }
    for (const id of left) this.park(id);
  }

  private delivered(conn: Conn, t: Task): void {
    if (!isTerminal(t.state)) return;
    conn.forget(t.id);
    if (!this.waiting.has(t.id)) return;
    this.carrier.delete(t.id);
    const rec = withStateName(t);
    this.settle(t.id, (w) => w.resolve(rec));
  }

  /** Put an id on a stream with room (opening one if needed). */
  private place(id: string): void {
    let conn = this.conns.find((c) => c.room && c.ids.size < this.maxIds);
    if (!conn) {
      const address = (this.address ??= this.ports.first());
      conn = new Conn(address, this, this.ports.clientFor(address), this.lingerMs);
      this.conns.push(conn);
      this.stats.streams++;
    }
    this.carrier.set(id, conn);
    conn.add(id);
  }

  private park(id: string): void {
    if (!this.waiting.has(id)) return;
    this.parked.add(id);
    if (this.parkTimer) return;
    this.parkTimer = setTimeout(() => {
      this.parkTimer = undefined;
      const ids = [...this.parked];
      this.parked.clear();
      for (const pid of ids) {
        if (!this.waiting.has(pid) || this.closed) continue;
        this.stats.resubscribed++;
        this.place(pid);
      }
    }, this.backoff.next());
  }

  /** The per-task path for `id`: each waiter's own wait, with what is left of its timeout. */
  private toFallback(id: string): void {
    this.settle(id, (w) => {
      const timeoutMs = Number.isFinite(w.until) ? Math.max(0, w.until - Date.now()) : undefined;
      this.ports.fallback(id, { timeoutMs, signal: w.signal }).then(w.resolve, w.reject);
    });
  }

  /** A waiter gives up (timeout, abort); the id is dropped from its stream when nobody else waits. */
  private leave(id: string, w: Waiter, err: MeshClientError): void {
    const set = this.waiting.get(id);
    if (!set?.delete(w)) return;
    w.cleanup();
    w.reject(err);
    if (set.size > 0) return;
    this.waiting.delete(id);
    this.parked.delete(id);
    const conn = this.carrier.get(id);
    this.carrier.delete(id);
    conn?.drop(id);
  }

  private settle(id: string, fn: (w: Waiter) => void): void {
    const set = this.waiting.get(id);
    if (!set) return;
    this.waiting.delete(id);
    for (const w of set) {
      w.cleanup();
      fn(w);
    }
  }

  private next(current: string): string {
    const a = this.ports.addresses;
    const i = a.indexOf(current);
    return a[(i + 1) % a.length]!;
  }
}

function aborted(signal: AbortSignal): MeshClientError {
  return new MeshClientError(status.CANCELLED, 'watch aborted', {}, { cause: signal.reason });
}
