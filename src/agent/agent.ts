// Agent: one worker's stream to a node cell (AgentService.Connect), and the
// public face of the agent SDK. It composes three parts and owns the drain:
//   connection.ts  the stream: hello/welcome, heartbeats, reconnect with backoff
//   executor.ts    handlers within the slots, cancel and preemption through AbortSignal
//   outbox.ts      started acks and results: batching, the disconnected buffer, re-sends
// Each part states its invariants beside its fields. Together they give:
// - At most `slots` handlers run at once (the excess is refused "over slots").
// - Every handler that finishes produces exactly one result, sent once on the live
//   stream; results finished while disconnected wait in a bounded buffer and go
//   out after the next Welcome; those sent shortly before a break go again.
import { EventEmitter } from 'node:events';
import { status as grpcStatus, type StatusObject } from '@grpc/grpc-js';
import type { Tracer } from '@opentelemetry/api';
import type { AgentHello, Welcome } from '../gen/meshlb/v1/agent.js';
import type { ResultStatus } from '../gen/meshlb/v1/task.js';
import { logger as rootLogger, type Logger } from '../util/log.js';
import { callerCredentials, type CallerSecurity } from '../security/caller.js';
import type { ReconnectOptions } from './leader-hints.js';
import { Connection, type AgentState, type NodeMessage } from './connection.js';
import { leanSetup, type AgentTransportOptions } from './transport.js';
import { AgentCheckpoints } from './checkpoints.js';
import { AgentContextSet, type ContextPort } from './contexts.js';
import { RunTimes, type AgentSpeedOptions } from './speed.js';
import { newAgentStats, type AgentStats } from './stats.js';
import { codeName, isRefusal, notNodeCell, resultStatusName, streamStatus, type StreamStatus } from './events.js';
import type { ResultStatusName } from './events.js';
import { Executor } from './executor.js';
import { StateWaiters } from './waiters.js';
import { Outbox } from './outbox.js';
import { recordToLabels, type AgentTask, type TaskHandler } from './task.js';

export type { AgentState, AgentStats };

export const AGENT_SDK_VERSION = 'meshlb-agent-ts/0.1.0';
const DEFAULT_MAX_MESSAGE_BYTES = 4 * 1024 * 1024;
/** After a drain's deadline, how long results (e.g. of aborted handlers) may still take to go out. */
const DRAIN_FLUSH_GRACE_MS = 2000;

export interface AgentOptions extends AgentTransportOptions, AgentSpeedOptions, ReconnectOptions {
  /** host:port of the node cell replica, or several to fail over across (tried in turn); leader hints: leaderHints. */
  address: string | readonly string[];
  /** Unique within the node cell. */
  agentId: string;
  /** Kinds declared in the hello; default: the kinds of the registered handlers. */
  kinds?: readonly string[];
  labels?: Record<string, string>;
  /** Max concurrent tasks (>= 1). */
  slots: number;
  /** Heartbeat period; default: the node's (its Welcome, lengthened by a HeartbeatChange), else 1000. */
  heartbeatIntervalMs?: number;
  /** Random source for the jitter (inject a seeded one for reproducible runs). */
  random?: () => number;
  logger?: Logger;
  /** Max gRPC message size both ways (default 4 MiB); batches are cut to fit. */
  maxMessageBytes?: number;
  /** TLS (docs/security.md): `true` for the system's roots, or a CA (and client certificate) as files (re-read on change) or PEM. */
  tls?: CallerSecurity['tls'];
  /** A bearer token sent with every call (a static token or a JWT, or a function for refreshing ones); needs tls. */
  token?: CallerSecurity['token'];
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
  /** The mesh to join (topology `name`): another mesh's node refuses the hello (`helloRefused`); unset, any (Welcome says which). */
  mesh?: string;
  /** The node cell this agent expects to reach (e.g. "/eu/west-1a/n1"); a node of another cell refuses it. */
  nodeCell?: string;
  /**
   * Trace each run (docs/operations.md, "Traces"): a span around the handler, child of the node's dispatch span
   * (or the submitter's), with AgentTask.context its context. Unset: no span (AgentTask.traceId still set).
   */
  tracer?: Tracer;
  /** Context keys warm here from the start (see `contexts`). */
  contexts?: readonly string[];
}

/** Counters of the three parts, kept in one object the agent exposes live. */
export interface AgentEvents {
  connected: [welcome: Welcome];
  /**
   * A welcomed stream broke (the agent reconnects), or no address given is a node cell (they answer
   * UNIMPLEMENTED): then the agent closes at once and start() rejects with the reason.
   */
  disconnected: [status: StreamStatus];
  /**
   * The node refused the hello: another mesh or node cell than the options name
   * (FAILED_PRECONDITION), a hello it cannot take (INVALID_ARGUMENT), or a
   * caller without a valid token or the agent role (UNAUTHENTICATED,
   * PERMISSION_DENIED). The agent keeps retrying with backoff (another address
   * may be right, a token may be added); close it to give up.
   */
  helloRefused: [refusal: StreamStatus & { address: string }];
  taskStart: [task: AgentTask];
  taskEnd: [task: AgentTask, status: ResultStatus, statusName: ResultStatusName];
  drainOrder: [reason: string];
  closed: [];
}

export class Agent extends EventEmitter<AgentEvents> {
  readonly agentId: string;
  readonly slots: number;
  readonly stats: AgentStats = newAgentStats();
  /** Context keys held warm here (contexts.ts): the node sends tasks with these keys here first. */
  readonly contexts: AgentContextSet;
  /** The latest Welcome from the node. */
  welcome: Welcome | undefined;
  /** How the last stream ended (or failed to open), to tell why an agent is not connected. */
  lastStatus: StreamStatus | undefined;

  private readonly opts: AgentOptions;
  private log: Logger | undefined;
  private readonly connection: Connection;
  private readonly executor: Executor;
  private readonly outbox: Outbox;
  private readonly checkpoints: AgentCheckpoints;
  private readonly runTimes: RunTimes;
  private _draining = false;
  private drainPromise: Promise<void> | undefined;
  /** The last refusal logged: a node that keeps refusing is logged once, not at every retry. */
  private lastRefusal = '';
  /** Its addresses, and those that answered UNIMPLEMENTED since the last Welcome (not node cells). */
  private readonly addresses: ReadonlySet<string>;
  private readonly notNodes = new Set<string>();
  /** Why the agent gave up by itself; start() rejects with it. */
  private failure: Error | undefined;
  private readonly waiters = new StateWaiters();

  constructor(opts: AgentOptions) {
    super();
    if (!opts.agentId) throw new TypeError('agent: agentId is required');
    if (!Number.isInteger(opts.slots) || opts.slots < 1) throw new TypeError('agent: slots must be an integer >= 1');
    const addresses = typeof opts.address === 'string' ? [opts.address] : [...opts.address];
    if (addresses.length === 0 || addresses.some((a) => !a)) throw new TypeError('agent: address is required');
    this.opts = opts;
    this.agentId = opts.agentId;
    this.slots = opts.slots;
    this.addresses = new Set(addresses);
    this.connection = new Connection(
      {
        addresses,
        leaderHints: opts.leaderHints,
        backoff: opts.backoff,
        random: opts.random ?? Math.random,
        maxMessageBytes: opts.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES,
        heartbeatIntervalMs: opts.heartbeatIntervalMs,
        welcomeTimeoutMs: opts.welcomeTimeoutMs ?? 30_000,
        channelOptions: opts.channelOptions,
        credentials: opts.credentials ?? callerCredentials(opts),
        clientFor: opts.clientFor,
        openStream: opts.openStream,
        lean: leanSetup(opts),
        loadProvider: opts.loadProvider,
        logger: () => this.logger(),
      },
      this.stats,
      {
        hello: () => this.hello(),
        welcomed: (w, interval) => this.onWelcome(w, interval),
        message: (m) => this.onMessage(m),
        broken: (s, wasWelcomed) => this.onBroken(s, wasWelcomed),
        writable: () => this.outbox.scheduleFlush(),
        load: () => ({ inFlight: this.executor.running.size + this.outbox.pendingResults, draining: this._draining }),
      },
    );
    this.executor = new Executor(opts.agentId, opts.slots, this.stats, {
      started: (t) => {
        this.outbox.start(t);
        if (this.listenerCount('taskStart') > 0) this.emit('taskStart', t);
      },
      report: (r) => this.outbox.push(this.runTimes.seen(r)),
      ended: (t, status) => {
        if (this.listenerCount('taskEnd') > 0) this.emit('taskEnd', t, status, resultStatusName(status));
        this.waiters.notify();
      },
    });
    const cps = new AgentCheckpoints(this.stats, {
      connected: () => this.connection.welcomed,
      write: (m) => this.connection.write(m),
      maxMessageBytes: () => this.connection.maxMessageBytes,
      running: this.executor.running,
      handBackNow: (t, why) => this.executor.handBackNow(t, why),
      log: () => this.logger(),
    });
    this.checkpoints = cps;
    const port: ContextPort = { connected: () => this.connection.welcomed, write: (m) => this.connection.write(m) };
    this.contexts = new AgentContextSet(port, opts.contexts);
    this.runTimes = new RunTimes(port, opts.expectedRunMs);
    this.executor.saver = (t, data, progress) => cps.save(t, data, progress);
    if (opts.tracer) this.executor.traceWith(opts.tracer);
    const connection = this.connection;
    const running = this.executor.running;
    this.outbox = new Outbox(
      {
        maxBufferedResults: opts.maxBufferedResults ?? 10_000,
        resendWindowMs: opts.resendWindowMs ?? 2000,
        maxBatch: opts.maxBatch ?? 1024,
      },
      this.stats,
      {
        ready: () => connection.welcomed && !connection.writeBlocked,
        blocked: () => connection.writeBlocked,
        write: (m) => connection.write(m),
        maxMessageBytes: () => connection.maxMessageBytes,
        running: (t) => running.get(t.key) === t,
        flushed: () => this.waiters.notify(),
      },
    );
  }

  get state(): AgentState {
    return this.connection.state;
  }

  get draining(): boolean {
    return this._draining;
  }

  get inFlight(): number {
    return this.executor.running.size;
  }

  /** The address of the current (or last tried) node replica. */
  get address(): string {
    return this.connection.address;
  }

  /** What carries its stream to that address: 'grpc-js', 'http2' (the lean client), or 'pool' (openStream's). */
  get transport(): 'grpc-js' | 'http2' | 'pool' {
    return this.connection.transport;
  }

  /** Register the handler for a kind ('*' = any kind without its own handler). Chainable. */
  handle(kind: string, handler: TaskHandler): this {
    this.executor.handle(kind, handler);
    return this;
  }

  /**
   * Start connecting. Resolves at the first Welcome (or when close() came first: check
   * `state`); rejects when the agent gives up by itself (no address is a node cell).
   */
  start(): Promise<void> {
    if (this.connection.state === 'idle') {
      if (this.helloKinds().length === 0)
        throw new TypeError('agent: no kinds to declare (register a handler or pass kinds)');
      this.connection.connect();
    }
    return this.waiters
      .until(() => this.connection.welcomed || this.isClosed(), Infinity)
      .then(() => {
        if (this.failure) throw this.failure;
      });
  }

  /**
   * Graceful: take nothing new, let in-flight handlers finish, send every result, then close.
   * After timeoutMs, still-running handlers are aborted and the agent closes anyway.
   */
  drain(opts: { timeoutMs?: number } = {}): Promise<void> {
    if (this.isClosed()) return Promise.resolve();
    this.drainPromise ??= this.runDrain(opts.timeoutMs ?? 30_000);
    return this.drainPromise;
  }

  /** Abrupt: cancel the stream, abort running handlers, drop unsent results. */
  close(): void {
    if (this.isClosed()) return;
    this.connection.close();
    this.executor.abortAll('agent closed');
    this.outbox.clear();
    this.checkpoints.broken('agent closed');
    this.waiters.notify();
    this.emit('closed');
  }

  /** Forget the in-flight high-water mark (tests measure a phase). */
  resetMaxInFlight(): void {
    this.stats.maxInFlight = this.executor.running.size;
  }

  private logger(): Logger {
    this.log ??= this.opts.logger ?? rootLogger({ component: 'agent', agent: this.agentId });
    return this.log;
  }

  private isClosed(): boolean {
    return this.connection.state === 'closed';
  }

  /** Declared kinds: the option, else the handlers' kinds. */
  private helloKinds(): string[] {
    return this.opts.kinds ? [...this.opts.kinds] : this.executor.kinds();
  }

  private hello(): AgentHello {
    return {
      agentId: this.agentId,
      kinds: this.helloKinds(),
      labels: recordToLabels(this.opts.labels),
      slots: this.slots,
      version: this.opts.version ?? AGENT_SDK_VERSION,
      mesh: this.opts.mesh ?? '',
      meshId: '',
      nodeCell: this.opts.nodeCell ?? '',
      // What still runs from a stream that broke: the node reserves it before assigning more.
      running: this.executor.refs(),
    };
  }

  private onMessage(m: NodeMessage): void {
    switch (m.$case) {
      case 'assignments':
        this.executor.assign(m.value.tasks, this._draining);
        break;
      case 'cancels':
        // A hand-back (requestHandBack): checkpoint and stop within the grace, no attempt spent (checkpoints.ts).
        if (m.value.handBack) this.checkpoints.handBack(m.value.refs, m.value.reason, m.value.graceMs);
        else this.executor.stop(m);
        break;
      case 'preemptions':
        this.executor.stop(m);
        break;
      case 'checkpointAcks':
        this.checkpoints.acked(m.value.acks);
        break;
      case 'drain':
        this.logger().info({ reason: m.value.reason, migrate: m.value.migrate }, 'agent: drain ordered by node');
        this.emit('drainOrder', m.value.reason);
        if (m.value.migrate) this.checkpoints.handBackAll(m.value.reason, m.value.graceMs);
        void this.drain();
        break;
    }
  }

  private onWelcome(w: Welcome, interval: number): void {
    this.welcome = w;
    this.lastRefusal = '';
    this.notNodes.clear();
    this.executor.nodeCell = w.nodeCell;
    // Tell the node what we still hold from before a reconnect: the attempts (re-announced as started) and their count in a load.
    this.outbox.reannounce(this.executor.running.values());
    this.connection.sendLoad();
    this.contexts.announce();
    this.runTimes.announce(w);
    this.outbox.resume();
    this.logger().debug({ mesh: w.mesh, node: w.nodeCell, replica: w.replicaId, interval }, 'agent: connected');
    this.waiters.notify();
    this.emit('connected', w);
  }

  private onBroken(s: StatusObject, wasWelcomed: boolean): void {
    this.outbox.broken();
    this.checkpoints.broken(`stream ended: ${s.details || codeName(s.code)}`);
    if (this.isClosed()) return;
    this.lastStatus = streamStatus(s);
    if (wasWelcomed) this.emit('disconnected', this.lastStatus);
    else if (s.code === grpcStatus.UNIMPLEMENTED) {
      // No AgentService there: not a node cell, and retrying will not make it one. Once
      // every address has said so, give up at once instead of retrying for ever unheard.
      this.notNodes.add(this.address);
      if (this.notNodes.size >= this.addresses.size) return this.giveUp(s);
    } else if (isRefusal(s)) {
      if (s.details !== this.lastRefusal)
        this.logger().warn(
          { code: s.code, details: s.details, address: this.address },
          'agent: node refused the hello',
        );
      this.lastRefusal = s.details;
      this.emit('helloRefused', { ...this.lastStatus, address: this.address });
    }
    this.logger().debug({ code: s.code, details: s.details, address: this.address }, 'agent: stream ended');
    this.waiters.notify();
    // A drain that has nothing left to report is done: do not come back.
    if (this._draining && this.executor.running.size === 0 && this.outbox.pendingResults === 0) this.close();
  }

  /** No address is a node cell: say why (log, `disconnected`, start() rejects), then close. */
  private giveUp(s: StatusObject): void {
    const details = notNodeCell([...this.notNodes], s.details);
    this.logger().error({ code: s.code, addresses: [...this.notNodes] }, `agent: ${details}`);
    this.failure = Object.assign(new Error(`agent ${this.agentId}: ${details}`), { code: s.code });
    this.emit('disconnected', { ...streamStatus(s), details });
    this.close();
  }

  private async runDrain(timeoutMs: number): Promise<void> {
    this._draining = true;
    const until = performance.now() + timeoutMs;
    this.connection.sendLoad();
    const running = this.executor.running;
    const idle = await this.waiters.until(() => running.size === 0 || this.isClosed(), until);
    if (this.isClosed()) return;
    if (!idle) {
      this.logger().warn({ inFlight: running.size }, 'agent: drain timed out, aborting handlers');
      this.executor.abortAll('agent drain timed out');
    }
    // Every result out: needs a welcomed stream (reconnecting if need be) and an empty queue.
    // Aborted handlers report on a later turn, so this phase gets a short grace of its own.
    const flushUntil = Math.max(until, performance.now() + DRAIN_FLUSH_GRACE_MS);
    this.outbox.scheduleFlush();
    await this.waiters.until(
      () => this.isClosed() || (this.connection.welcomed && this.outbox.idle && !this.connection.writeBlocked),
      flushUntil,
    );
    if (!this.isClosed()) {
      // Half-close after the queued writes; the node ends its side, then we are done.
      const open = this.connection.halfClose();
      if (open) await this.waiters.until(() => !open() || this.isClosed(), performance.now() + 2000);
    }
    this.close();
  }
}
