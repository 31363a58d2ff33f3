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
// - with `allChanges` (the shared path of watch()) the cell also sends each id's
//   record when it is added and every change after; waiters hear them through
//   onChange, a waiter that joins later hears the latest at once, and a change
//   repeated by a new stream (same state, attempt and update time) is skipped;
// - a cell that does not serve WatchMany (UNIMPLEMENTED), or a stream refused
//   for a reason a new stream cannot fix, sends the ids concerned down the
//   per-task path (`fallback`: one Watch each), which answers each precisely.
import { status } from '@grpc/grpc-js';
import type { Task, TaskServiceClient, WatchManyResponse } from '../gen/meshlb/v1/task.js';
import { Conn } from './watch-conn.js';
import { Backoff } from '../agent/backoff.js';
import { MeshClientError } from './errors.js';
import { isTerminal, withStateName, type TaskRecord } from './spec.js';

export interface ResultStreamOptions {
  /** Ids one stream watches at most (default 10,000, the cell's default limit). */
  maxIdsPerStream?: number;
  /** How long a stream with nothing to watch stays open for the next wait (ms, default 250). */
  lingerMs?: number;
}

/** The stream's kind: results only, or (`allChanges`) every change before the result too. */
export interface ResultStreamMode extends ResultStreamOptions {
  allChanges?: boolean;
}

export interface ResultStreamPorts {
  /** The replicas, and the one to start at. */
  readonly addresses: readonly string[];
  first(): string;
  clientFor(address: string): TaskServiceClient;
  /** The per-task path (a Watch per task), for cells without WatchMany. */
  fallback(id: string, opts: FollowOpts): Promise<TaskRecord>;
  readonly random: () => number;
}

export interface WaitOpts {
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** A wait that also hears every change before the result (a stream with `allChanges`). */
export interface FollowOpts extends WaitOpts {
  onChange?: (t: TaskRecord) => void;
}

interface Waiter {
  resolve(t: TaskRecord): void;
  reject(e: unknown): void;
  readonly signal: AbortSignal | undefined;
  readonly onChange: ((t: TaskRecord) => void) | undefined;
  /** When the caller's timeout ends (Date.now() ms; Infinity: none). */
  readonly until: number;
  cleanup(): void;
}

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
  private readonly allChanges: boolean;
  /** With `allChanges`: each watched id's latest change, for a waiter that joins later and to skip repeats. */
  private readonly latest = new Map<string, TaskRecord>();
  /** Streams opened, and streams that broke while ids were waiting (tests, benchmarks). */
  readonly stats = { streams: 0, broken: 0, resubscribed: 0 };

  constructor(
    private readonly ports: ResultStreamPorts,
    opts: ResultStreamMode = {},
  ) {
    this.maxIds = Math.max(1, opts.maxIdsPerStream ?? 10_000);
    this.lingerMs = opts.lingerMs ?? 250;
    this.allChanges = opts.allChanges ?? false;
    this.backoff = new Backoff({ initialMs: 20, maxMs: 1000 }, ports.random);
  }

  /** Ids with a waiter. */
  get pending(): number {
    return this.waiting.size;
  }

  /** The task's final record; with `allChanges`, `opts.onChange` hears each change before it. */
  wait(id: string, opts: FollowOpts): Promise<TaskRecord> {
    if (this.unsupported || this.closed) return this.ports.fallback(id, opts);
    if (opts.signal?.aborted) return Promise.reject(aborted(opts.signal));
    return new Promise<TaskRecord>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const signal = opts.signal;
      const w: Waiter = {
        resolve,
        reject,
        signal,
        onChange: opts.onChange,
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
        const last = this.latest.get(id);
        if (last) w.onChange?.(last);
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
    if (!isTerminal(t.state)) {
      const set = this.allChanges ? this.waiting.get(t.id) : undefined;
      const last = this.latest.get(t.id);
      // A new stream answers an id added again with its record now: a repeat when nothing changed.
      if (!set || this.carrier.get(t.id) !== conn || (last && sameChange(last, t))) return;
      const rec = withStateName(t);
      this.latest.set(t.id, rec);
      for (const w of set) w.onChange?.(rec);
      return;
    }
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
      conn = new Conn(address, this, this.ports.clientFor(address), this.lingerMs, this.allChanges);
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
      this.ports.fallback(id, { timeoutMs, signal: w.signal, onChange: w.onChange }).then(w.resolve, w.reject);
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
    this.latest.delete(id);
    this.parked.delete(id);
    const conn = this.carrier.get(id);
    this.carrier.delete(id);
    conn?.drop(id);
  }

  private settle(id: string, fn: (w: Waiter) => void): void {
    const set = this.waiting.get(id);
    if (!set) return;
    this.waiting.delete(id);
    this.latest.delete(id);
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

function sameChange(a: TaskRecord, b: Task): boolean {
  return a.state === b.state && a.attempt === b.attempt && a.updatedUnixMs === b.updatedUnixMs;
}

function aborted(signal: AbortSignal): MeshClientError {
  return new MeshClientError(status.CANCELLED, 'watch aborted', {}, { cause: signal.reason });
}
