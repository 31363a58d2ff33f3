// Agent: one worker's stream to a node cell (AgentService.Connect).
//
// Invariants (each guarded where the field lives):
// - At most `slots` handlers run at once. The node is trusted to respect slots,
//   but if it over-assigns, the excess is refused with an ERROR result
//   "over slots" and counted in stats.refusedOverSlots (healthy meshes keep it 0).
// - Every handler that finishes produces exactly one result, sent once on the
//   live stream; results finished while disconnected wait in a bounded buffer
//   and go out after the next Welcome. Results sent shortly before a stream
//   broke are sent again: the node fences by attempt, duplicates are harmless.
// - Outgoing `started` acks and results are coalesced per event-loop turn
//   (flushed on setImmediate): one gRPC message carries many of them.
import { EventEmitter } from 'node:events';
import {
  credentials as grpcCredentials,
  type ChannelCredentials,
  type ChannelOptions,
  type ClientDuplexStream,
  type StatusObject,
} from '@grpc/grpc-js';
import { AgentServiceClient, type ConnectRequest, type ConnectResponse, type Welcome } from '../gen/meshlb/v1/agent.js';
import { ResultStatus, type Dispatch, type TaskRef, type TaskResult } from '../gen/meshlb/v1/task.js';
import { logger as rootLogger, type Logger } from '../util/log.js';
import { Backoff, type BackoffOptions } from './backoff.js';
import { FatalTaskError } from './errors.js';
import { sampleLoad } from './load.js';
import {
  encodeOutput,
  recordToLabels,
  RunningTask,
  type AgentTask,
  type HandlerOutput,
  type TaskHandler,
} from './task.js';

export const AGENT_SDK_VERSION = 'meshlb-agent-ts/0.1.0';
const DEFAULT_MAX_MESSAGE_BYTES = 4 * 1024 * 1024;
const MAX_ERROR_CHARS = 4096;
/** Per-result framing overhead assumed when cutting batches by size. */
const RESULT_OVERHEAD_BYTES = 96;
/** After a drain's deadline, how long results (e.g. of aborted handlers) may still take to go out. */
const DRAIN_FLUSH_GRACE_MS = 2000;

export interface AgentOptions {
  /** host:port of the node cell replica, or several to fail over across (tried in turn). */
  address: string | readonly string[];
  /** Unique within the node cell. */
  agentId: string;
  /** Kinds declared in the hello; default: the kinds of the registered handlers. */
  kinds?: readonly string[];
  labels?: Record<string, string>;
  /** Max concurrent tasks (>= 1). */
  slots: number;
  /** Heartbeat period; default: the node's Welcome.heartbeat_interval_ms, else 1000. */
  heartbeatIntervalMs?: number;
  /** Reconnect backoff (full jitter). Defaults: 100 ms initial, 5 s max, x2. */
  backoff?: BackoffOptions;
  /** Random source for the jitter (inject a seeded one for reproducible runs). */
  random?: () => number;
  logger?: Logger;
  /** Max gRPC message size both ways (default 4 MiB); batches are cut to fit. */
  maxMessageBytes?: number;
  /** Extra grpc-js channel options (used when the agent makes its own client). */
  channelOptions?: ChannelOptions;
  credentials?: ChannelCredentials;
  /** Supply the gRPC client per address, e.g. from an AgentChannelPool shared by many agents. */
  clientFor?: (address: string) => AgentServiceClient;
  /** Results held while disconnected (default 10,000); beyond it the oldest are dropped (their leases lapse, the tasks retry). */
  maxBufferedResults?: number;
  /** Results sent this long before a stream broke are sent again after reconnecting (default 2000 ms). */
  resendWindowMs?: number;
  /** Max results per gRPC message (default 1024). */
  maxBatch?: number;
  /** Give up waiting for a Welcome after this long and reconnect (default 30 s). */
  welcomeTimeoutMs?: number;
  /** Extra load figures (e.g. gpu) merged into every heartbeat. */
  loadProvider?: () => { cpu?: number; memory?: number; gpu?: number };
  version?: string;
}

export type AgentState = 'idle' | 'connecting' | 'connected' | 'closed';

export interface AgentStats {
  /** Welcomes received. */
  connects: number;
  /** Welcomed streams that broke or ended. */
  disconnects: number;
  inFlight: number;
  /** High-water mark of concurrent handlers (never above slots). */
  maxInFlight: number;
  tasksStarted: number;
  tasksOk: number;
  tasksFailed: number;
  tasksCancelled: number;
  /** Assignments beyond slots, refused with an ERROR result. */
  refusedOverSlots: number;
  /** Assignments refused for another reason (draining, no handler). */
  refusedOther: number;
  /** The same attempt assigned while already running: ignored. */
  duplicateAssignments: number;
  resultsSent: number;
  resultsResent: number;
  /** Results dropped because the disconnected buffer was full. */
  resultsDropped: number;
  messagesSent: number;
  heartbeatsSent: number;
}

export interface AgentEvents {
  connected: [welcome: Welcome];
  disconnected: [status: { code: number; details: string }];
  taskStart: [task: AgentTask];
  taskEnd: [task: AgentTask, status: ResultStatus];
  drainOrder: [reason: string];
  closed: [];
}

type Call = ClientDuplexStream<ConnectRequest, ConnectResponse>;

interface SentBatch {
  at: number;
  results: TaskResult[];
}

export class Agent extends EventEmitter<AgentEvents> {
  readonly agentId: string;
  readonly slots: number;
  readonly stats: AgentStats = {
    connects: 0,
    disconnects: 0,
    inFlight: 0,
    maxInFlight: 0,
    tasksStarted: 0,
    tasksOk: 0,
    tasksFailed: 0,
    tasksCancelled: 0,
    refusedOverSlots: 0,
    refusedOther: 0,
    duplicateAssignments: 0,
    resultsSent: 0,
    resultsResent: 0,
    resultsDropped: 0,
    messagesSent: 0,
    heartbeatsSent: 0,
  };
  /** The latest Welcome from the node. */
  welcome: Welcome | undefined;

  private readonly opts: AgentOptions;
  private readonly addresses: readonly string[];
  private addrIndex = 0;
  private readonly handlers = new Map<string, TaskHandler>();
  private readonly ownClients = new Map<string, AgentServiceClient>();
  private readonly backoff: Backoff;
  private log: Logger | undefined;
  private readonly maxBufferedResults: number;
  private readonly resendWindowMs: number;
  private readonly maxBatch: number;
  private maxMessageBytes: number;

  private _state: AgentState = 'idle';
  private _draining = false;
  private drainPromise: Promise<void> | undefined;
  private call: Call | undefined;
  private welcomed = false;
  private writeBlocked = false;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private welcomeTimer: NodeJS.Timeout | undefined;

  /** Running handlers by `${taskId}#${attempt}`; its size is the in-flight count. */
  private readonly running = new Map<string, RunningTask>();
  /** Started since the last flush; acked only if still running at the flush (a result implies the start). */
  private pendingStarted: RunningTask[] = [];
  private pendingResults: TaskResult[] = [];
  /** Recently written batches, for re-sending after a break (bounded by window and maxBufferedResults). */
  private sentRing: SentBatch[] = [];
  private sentRingCount = 0;
  private flushScheduled = false;
  private readonly flushBound = () => this.flush();
  private waiters = new Set<() => void>();

  constructor(opts: AgentOptions) {
    super();
    if (!opts.agentId) throw new TypeError('agent: agentId is required');
    if (!Number.isInteger(opts.slots) || opts.slots < 1) throw new TypeError('agent: slots must be an integer >= 1');
    const addrs = typeof opts.address === 'string' ? [opts.address] : [...opts.address];
    if (addrs.length === 0 || addrs.some((a) => !a)) throw new TypeError('agent: address is required');
    this.opts = opts;
    this.agentId = opts.agentId;
    this.slots = opts.slots;
    this.addresses = addrs;
    this.backoff = new Backoff(opts.backoff, opts.random ?? Math.random);
    this.maxBufferedResults = opts.maxBufferedResults ?? 10_000;
    this.resendWindowMs = opts.resendWindowMs ?? 2000;
    this.maxBatch = opts.maxBatch ?? 1024;
    this.maxMessageBytes = opts.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  }

  get state(): AgentState {
    return this._state;
  }

  get draining(): boolean {
    return this._draining;
  }

  get inFlight(): number {
    return this.running.size;
  }

  /** The address of the current (or last tried) node replica. */
  get address(): string {
    return this.addresses[this.addrIndex]!;
  }

  /** Register the handler for a kind ('*' = any kind without its own handler). Chainable. */
  handle(kind: string, handler: TaskHandler): this {
    this.handlers.set(kind, handler);
    return this;
  }

  /** Start connecting. Resolves at the first Welcome (or when the agent is closed first: check `state`). */
  start(): Promise<void> {
    if (this._state === 'idle') {
      if (this.helloKinds().length === 0)
        throw new TypeError('agent: no kinds to declare (register a handler or pass kinds)');
      this.connect();
    }
    return this.waitState(() => this.welcomed || this._state === 'closed', Infinity).then(() => undefined);
  }

  /**
   * Graceful: take nothing new, let in-flight handlers finish, send every result, then close.
   * After timeoutMs, still-running handlers are aborted and the agent closes anyway.
   */
  drain(opts: { timeoutMs?: number } = {}): Promise<void> {
    if (this._state === 'closed') return Promise.resolve();
    this.drainPromise ??= this.runDrain(opts.timeoutMs ?? 30_000);
    return this.drainPromise;
  }

  /** Abrupt: cancel the stream, abort running handlers, drop unsent results. */
  close(): void {
    if (this._state === 'closed') return;
    this._state = 'closed';
    this.clearTimers();
    const call = this.call;
    this.call = undefined;
    this.welcomed = false;
    call?.cancel();
    for (const t of this.running.values()) t.abort('agent closed');
    this.pendingResults = [];
    this.pendingStarted = [];
    this.sentRing = [];
    this.sentRingCount = 0;
    for (const c of this.ownClients.values()) c.close();
    this.ownClients.clear();
    this.notify();
    this.emit('closed');
  }

  /** Forget the in-flight high-water mark (tests measure a phase). */
  resetMaxInFlight(): void {
    this.stats.maxInFlight = this.running.size;
  }

  // ---- connection ----

  private logger(): Logger {
    this.log ??= this.opts.logger ?? rootLogger({ component: 'agent', agent: this.agentId });
    return this.log;
  }

  private clientFor(address: string): AgentServiceClient {
    if (this.opts.clientFor) return this.opts.clientFor(address);
    let c = this.ownClients.get(address);
    if (!c) {
      c = new AgentServiceClient(address, this.opts.credentials ?? grpcCredentials.createInsecure(), {
        'grpc.max_send_message_length': this.maxMessageBytes,
        'grpc.max_receive_message_length': this.maxMessageBytes,
        // The channel's own reconnect pacing follows ours, so a node that comes back is found promptly.
        'grpc.initial_reconnect_backoff_ms': Math.max(20, this.backoff.initialMs),
        'grpc.max_reconnect_backoff_ms': Math.max(100, this.backoff.maxMs),
        ...this.opts.channelOptions,
      });
      this.ownClients.set(address, c);
    }
    return c;
  }

  /** Declared kinds: the option, else the handlers' kinds ('*' is a local catch-all, not a kind). */
  private helloKinds(): string[] {
    if (this.opts.kinds) return [...this.opts.kinds];
    return [...this.handlers.keys()].filter((k) => k !== '*');
  }

  private connect(): void {
    if (this._state === 'closed') return;
    this.reconnectTimer = undefined;
    this._state = 'connecting';
    const address = this.address;
    let call: Call;
    try {
      call = this.clientFor(address).connect();
    } catch (err) {
      this.logger().warn({ err, address }, 'agent: cannot open stream');
      this.scheduleReconnect(false);
      return;
    }
    this.call = call;
    this.welcomed = false;
    this.writeBlocked = false;
    call.on('data', (m: ConnectResponse) => this.onMessage(call, m));
    call.on('error', () => {}); // the 'status' event carries the outcome
    call.on('status', (s: StatusObject) => this.onBroken(call, s));
    call.write({
      msg: {
        $case: 'hello',
        value: {
          agentId: this.agentId,
          kinds: this.helloKinds(),
          labels: recordToLabels(this.opts.labels),
          slots: this.slots,
          version: this.opts.version ?? AGENT_SDK_VERSION,
        },
      },
    });
    this.stats.messagesSent++;
    const welcomeTimeoutMs = this.opts.welcomeTimeoutMs ?? 30_000;
    this.welcomeTimer = setTimeout(() => {
      if (this.call === call && !this.welcomed) {
        this.logger().warn({ address }, 'agent: no welcome in time, reconnecting');
        call.cancel();
      }
    }, welcomeTimeoutMs);
    this.welcomeTimer.unref();
  }

  private onMessage(call: Call, m: ConnectResponse): void {
    if (call !== this.call || !m.msg) return;
    switch (m.msg.$case) {
      case 'welcome':
        this.onWelcome(m.msg.value);
        break;
      case 'assignments':
        this.onAssignments(m.msg.value.tasks);
        break;
      case 'cancels':
        for (const ref of m.msg.value.refs) this.cancelTask(ref.taskId, ref.attempt, 'cancelled by node');
        break;
      case 'drain':
        this.logger().info({ reason: m.msg.value.reason }, 'agent: drain ordered by node');
        this.emit('drainOrder', m.msg.value.reason);
        void this.drain();
        break;
    }
  }

  private onWelcome(w: Welcome): void {
    if (this.welcomeTimer) clearTimeout(this.welcomeTimer);
    this.welcomeTimer = undefined;
    this.welcome = w;
    this.welcomed = true;
    this._state = 'connected';
    this.backoff.reset();
    this.stats.connects++;
    if (w.maxMessageBytes > 0)
      this.maxMessageBytes = Math.min(this.opts.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES, w.maxMessageBytes);
    const interval = this.opts.heartbeatIntervalMs ?? (w.heartbeatIntervalMs || 1000);
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = setInterval(() => this.sendLoad(), interval);
    this.heartbeatTimer.unref();
    // Tell the node at once what we still hold from before a reconnect: the attempts
    // (re-announced as started) and their count in a load; both count against our slots.
    for (const t of this.running.values()) this.pendingStarted.push(t);
    this.sendLoad();
    if (this.pendingResults.length > 0 || this.pendingStarted.length > 0) this.scheduleFlush();
    this.logger().debug({ node: w.nodeCell, replica: w.replicaId, interval }, 'agent: connected');
    this.notify();
    this.emit('connected', w);
  }

  private onBroken(call: Call, s: StatusObject): void {
    if (call !== this.call) return;
    this.call = undefined;
    const wasWelcomed = this.welcomed;
    this.welcomed = false;
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    if (this.welcomeTimer) clearTimeout(this.welcomeTimer);
    this.heartbeatTimer = this.welcomeTimer = undefined;
    this.pendingStarted = [];
    this.requeueRecentlySent();
    if (this._state === 'closed') return;
    if (wasWelcomed) {
      this.stats.disconnects++;
      this.emit('disconnected', { code: s.code, details: s.details });
    }
    this.logger().debug({ code: s.code, details: s.details, address: this.address }, 'agent: stream ended');
    this.notify();
    // A drain that has nothing left to report is done: do not come back.
    if (this._draining && this.running.size === 0 && this.pendingResults.length === 0) {
      this.close();
      return;
    }
    this.scheduleReconnect(wasWelcomed);
  }

  private scheduleReconnect(wasWelcomed: boolean): void {
    if (this._state === 'closed') return;
    this._state = 'connecting';
    if (this.addresses.length > 1) this.addrIndex = (this.addrIndex + 1) % this.addresses.length;
    if (wasWelcomed) this.backoff.reset();
    const delay = this.backoff.next();
    this.reconnectTimer = setTimeout(() => this.connect(), delay);
  }

  private clearTimers(): void {
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    if (this.welcomeTimer) clearTimeout(this.welcomeTimer);
    this.heartbeatTimer = this.reconnectTimer = this.welcomeTimer = undefined;
  }

  private sendLoad(): void {
    const call = this.call;
    if (!call || !this.welcomed) return;
    const s = sampleLoad();
    const extra = this.opts.loadProvider?.();
    call.write({
      msg: {
        $case: 'load',
        value: {
          inFlight: this.running.size,
          cpu: extra?.cpu ?? s.cpu,
          memory: extra?.memory ?? s.memory,
          gpu: extra?.gpu ?? 0,
          draining: this._draining,
        },
      },
    });
    this.stats.heartbeatsSent++;
    this.stats.messagesSent++;
  }

  // ---- tasks ----

  private onAssignments(tasks: Dispatch[]): void {
    for (const d of tasks) {
      const key = d.taskId + '#' + d.attempt;
      if (this.running.has(key)) {
        this.stats.duplicateAssignments++;
        continue;
      }
      if (this._draining) {
        this.stats.refusedOther++;
        this.refuse(d, 'agent draining');
        continue;
      }
      if (this.running.size >= this.slots) {
        this.stats.refusedOverSlots++;
        this.refuse(d, `over slots: agent ${this.agentId} holds ${this.running.size} of ${this.slots}`);
        continue;
      }
      const kind = d.spec?.kind ?? '';
      const handler = this.handlers.get(kind) ?? this.handlers.get('*');
      if (!handler) {
        this.stats.refusedOther++;
        this.refuse(d, `no handler for kind "${kind}" on agent ${this.agentId}`);
        continue;
      }
      const t = new RunningTask(d, key);
      this.running.set(key, t);
      const n = this.running.size;
      this.stats.inFlight = n;
      if (n > this.stats.maxInFlight) this.stats.maxInFlight = n;
      this.stats.tasksStarted++;
      this.pendingStarted.push(t);
      this.scheduleFlush();
      if (this.listenerCount('taskStart') > 0) this.emit('taskStart', t);
      this.runHandler(t, handler);
    }
  }

  private runHandler(t: RunningTask, handler: TaskHandler): void {
    let r: Promise<HandlerOutput> | HandlerOutput;
    try {
      r = handler(t);
    } catch (err) {
      this.finish(t, undefined, err);
      return;
    }
    if (r !== null && typeof r === 'object' && typeof (r as Promise<HandlerOutput>).then === 'function') {
      (r as Promise<HandlerOutput>).then(
        (v) => this.finish(t, v, undefined),
        (err: unknown) => this.finish(t, undefined, err ?? new Error('handler rejected')),
      );
    } else {
      this.finish(t, r as HandlerOutput, undefined);
    }
  }

  private finish(t: RunningTask, value: HandlerOutput, err: unknown): void {
    if (this.running.get(t.key) !== t) return; // closed meanwhile
    this.running.delete(t.key);
    this.stats.inFlight = this.running.size;
    let status: ResultStatus;
    let output: Buffer | undefined;
    let error = '';
    if (err === undefined) {
      try {
        output = encodeOutput(value);
        status = ResultStatus.RESULT_STATUS_OK;
      } catch (e) {
        status = ResultStatus.RESULT_STATUS_ERROR;
        error = `output not serializable: ${errorMessage(e)}`;
      }
    } else {
      status = err instanceof FatalTaskError ? ResultStatus.RESULT_STATUS_FATAL : ResultStatus.RESULT_STATUS_ERROR;
      error = errorMessage(err);
    }
    if (status === ResultStatus.RESULT_STATUS_OK) this.stats.tasksOk++;
    else this.stats.tasksFailed++;
    if (t.cancelled) this.stats.tasksCancelled++;
    const micros = Math.round((performance.now() - t.startedAt) * 1000);
    this.pushResult({
      taskId: t.id,
      attempt: t.attempt,
      status,
      output: output ?? EMPTY,
      error,
      agentId: this.agentId,
      nodeCell: this.welcome?.nodeCell ?? '',
      runMicros: micros > 0xffffffff ? 0xffffffff : micros,
    });
    if (this.listenerCount('taskEnd') > 0) this.emit('taskEnd', t, status);
    if (this.waiters.size > 0) this.notify();
  }

  private refuse(d: Dispatch, reason: string): void {
    this.pushResult({
      taskId: d.taskId,
      attempt: d.attempt,
      status: ResultStatus.RESULT_STATUS_ERROR,
      output: EMPTY,
      error: reason,
      agentId: this.agentId,
      nodeCell: this.welcome?.nodeCell ?? '',
      runMicros: 0,
    });
  }

  private cancelTask(taskId: string, attempt: number, reason: string): void {
    if (attempt > 0) {
      this.running.get(taskId + '#' + attempt)?.abort(reason);
      return;
    }
    for (const t of this.running.values()) if (t.id === taskId) t.abort(reason);
  }

  // ---- outgoing batches ----

  private pushResult(r: TaskResult): void {
    if (this.pendingResults.length >= this.maxBufferedResults) {
      this.pendingResults.shift();
      this.stats.resultsDropped++;
    }
    this.pendingResults.push(r);
    this.scheduleFlush();
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(this.flushBound);
  }

  private flush(): void {
    this.flushScheduled = false;
    const call = this.call;
    if (!call || !this.welcomed || this.writeBlocked) return;
    if (this.pendingStarted.length > 0) {
      let refs: TaskRef[] | undefined;
      for (const t of this.pendingStarted) {
        if (this.running.get(t.key) === t) (refs ??= []).push({ taskId: t.id, attempt: t.attempt });
      }
      this.pendingStarted.length = 0;
      if (refs) this.write(call, { msg: { $case: 'started', value: { refs } } });
    }
    const now = performance.now();
    this.trimSentRing(now);
    while (this.pendingResults.length > 0 && !this.writeBlocked) {
      const batch = this.takeBatch();
      this.write(call, { msg: { $case: 'results', value: { results: batch } } });
      this.stats.resultsSent += batch.length;
      this.sentRing.push({ at: now, results: batch });
      this.sentRingCount += batch.length;
    }
    if (this.waiters.size > 0) this.notify();
  }

  /** Take the next batch of pending results: at most maxBatch, and about half the max message size. */
  private takeBatch(): TaskResult[] {
    const all = this.pendingResults;
    const budget = this.maxMessageBytes >>> 1;
    let n = 0;
    let bytes = 0;
    while (n < all.length && n < this.maxBatch) {
      const r = all[n]!;
      bytes += r.output.length + r.error.length + RESULT_OVERHEAD_BYTES;
      if (n > 0 && bytes > budget) break;
      n++;
    }
    if (n === all.length) {
      this.pendingResults = [];
      return all;
    }
    return all.splice(0, n);
  }

  private write(call: Call, m: ConnectRequest): void {
    this.stats.messagesSent++;
    if (!call.write(m)) {
      this.writeBlocked = true;
      call.once('drain', () => {
        if (call !== this.call) return;
        this.writeBlocked = false;
        this.scheduleFlush();
      });
    }
  }

  private trimSentRing(now: number): void {
    const ring = this.sentRing;
    let drop = 0;
    let count = this.sentRingCount;
    while (drop < ring.length && (now - ring[drop]!.at > this.resendWindowMs || count > this.maxBufferedResults)) {
      count -= ring[drop]!.results.length;
      drop++;
    }
    if (drop > 0) {
      this.sentRing = drop === ring.length ? [] : ring.slice(drop);
      this.sentRingCount = count;
    }
  }

  /** After a break: whatever went out within the resend window goes out again (the node fences duplicates). */
  private requeueRecentlySent(): void {
    this.trimSentRing(performance.now());
    if (this.sentRing.length === 0) return;
    const again: TaskResult[] = [];
    for (const b of this.sentRing) for (const r of b.results) again.push(r);
    this.sentRing = [];
    this.sentRingCount = 0;
    this.stats.resultsResent += again.length;
    const merged = again.concat(this.pendingResults);
    const over = merged.length - this.maxBufferedResults;
    if (over > 0) {
      this.stats.resultsDropped += over;
      merged.splice(0, over);
    }
    this.pendingResults = merged;
  }

  // ---- drain ----

  private isClosed(): boolean {
    return this._state === 'closed';
  }

  private async runDrain(timeoutMs: number): Promise<void> {
    this._draining = true;
    const until = performance.now() + timeoutMs;
    this.sendLoad();
    const idle = await this.waitState(() => this.running.size === 0 || this.isClosed(), until);
    if (this.isClosed()) return;
    if (!idle) {
      this.logger().warn({ inFlight: this.running.size }, 'agent: drain timed out, aborting handlers');
      for (const t of this.running.values()) t.abort('agent drain timed out');
    }
    // Every result out: needs a welcomed stream (reconnecting if need be) and an empty queue.
    // Aborted handlers report on a later turn, so this phase gets a short grace of its own.
    const flushUntil = Math.max(until, performance.now() + DRAIN_FLUSH_GRACE_MS);
    this.scheduleFlush();
    await this.waitState(
      () =>
        this.isClosed() ||
        (this.welcomed &&
          this.pendingResults.length === 0 &&
          this.pendingStarted.length === 0 &&
          !this.writeBlocked &&
          !this.flushScheduled),
      flushUntil,
    );
    const call = this.call;
    if (call && !this.isClosed()) {
      // Half-close after the queued writes; the node ends its side, then we are done.
      this.sendLoad();
      call.end();
      await this.waitState(() => this.call !== call || this.isClosed(), performance.now() + 2000);
    }
    this.close();
  }

  private notify(): void {
    if (this.waiters.size === 0) return;
    const ws = this.waiters;
    this.waiters = new Set();
    for (const w of ws) w();
  }

  /** Wait until pred() holds (re-checked at every state change) or `until` (performance.now() ms) passes. */
  private async waitState(pred: () => boolean, until: number): Promise<boolean> {
    for (;;) {
      if (pred()) return true;
      const left = until - performance.now();
      if (left <= 0) return false;
      await new Promise<void>((resolve) => {
        const timer = Number.isFinite(left) ? setTimeout(resolve, left) : undefined;
        this.waiters.add(() => {
          if (timer) clearTimeout(timer);
          resolve();
        });
      });
    }
  }
}

const EMPTY: Buffer = Buffer.alloc(0);

function errorMessage(err: unknown): string {
  const m = err instanceof Error ? err.message || err.name : String(err);
  return m.length > MAX_ERROR_CHARS ? m.slice(0, MAX_ERROR_CHARS) : m;
}
