// The agent's stream to its node cell: hello → welcome, heartbeats, and
// reconnecting with backoff across the node's replicas when the stream breaks.
// It knows nothing of tasks: messages other than the welcome, the moment a
// stream is welcomed or broken, and the figures a heartbeat carries all go
// through the ConnectionPeer the agent gives it.
//
// Invariants:
// - At most one live call; events from an older call are ignored (the
//   `call !== this.call` checks), so a late 'status' cannot break a newer stream.
// - `welcomed` holds only between the Welcome and the end of that same call;
//   heartbeats and batches go out only while it holds.
// - Once `closed`, nothing reconnects and no timer is left running.
import {
  credentials as grpcCredentials,
  type ChannelCredentials,
  type ChannelOptions,
  type StatusObject,
  status,
} from '@grpc/grpc-js';
import {
  AgentServiceClient,
  type AgentHello,
  type ConnectRequest,
  type ConnectResponse,
  type HeartbeatChange,
  type Welcome,
} from '../gen/meshlb/v1/agent.js';
import type { Logger } from '../util/log.js';
import { Backoff, type BackoffOptions } from './backoff.js';
import { heartbeatWheel, type Beat } from './heartbeat-wheel.js';
import { sampleLoad } from './load.js';
import { h2AgentStreams, type AgentCall, type AgentStreams, type AgentTransport, type LeanSetup } from './transport.js';
import { LEADER_ADDRESS_TRAILER, RETRY_AFTER_TRAILER } from '../util/errors.js';
import { LEADER_REDIRECT_MS, NodeAddresses, type LeaderHints } from './leader-hints.js';

/** A node's retry hint is taken up to this long (ms), with up to a quarter more of jitter. */
const MAX_RETRY_AFTER_MS = 60_000;
export type AgentState = 'idle' | 'connecting' | 'connected' | 'closed';

export interface ConnectionStats {
  /** Welcomes received. */
  connects: number;
  /** Welcomed streams that broke or ended. */
  disconnects: number;
  messagesSent: number;
  heartbeatsSent: number;
  /** Streams given up for want of a Welcome within welcomeTimeoutMs (a node in a connect storm, or a stream stuck on its connection). */
  welcomeTimeouts: number;
  /** The interval loads go out at now: the Welcome's, lengthened by the node's HeartbeatChange (0 before a Welcome). */
  heartbeatIntervalMs: number;
}

/** A message from the node other than the Welcome and HeartbeatChange (which the connection handles itself). */
export type NodeMessage = Exclude<NonNullable<ConnectResponse['msg']>, { $case: 'welcome' } | { $case: 'heartbeat' }>;

/** What the connection needs from the agent around it. */
interface ConnectionPeer {
  /** The hello for a new stream (built per stream: handlers may have been added since). */
  hello(): AgentHello;
  /** The stream was welcomed; the heartbeat timer is already running. */
  welcomed(welcome: Welcome, heartbeatIntervalMs: number): void;
  message(msg: NodeMessage): void;
  /** A stream ended; called before the reconnect is scheduled (which a close() here prevents). */
  broken(status: StatusObject, wasWelcomed: boolean): void;
  /** A blocked stream can take writes again. */
  writable(): void;
  /**
   * What a heartbeat reports besides cpu and memory. inFlight counts finished attempts whose results
   * are not yet written: a heartbeat due in the same turn goes out before the result's flush, and a
   * node that carries the attempt over a reconnect would release it early and drop its result.
   */
  load(): { inFlight: number; draining: boolean };
}

interface ConnectionOptions {
  addresses: readonly string[];
  /** Leader hints to addresses not given: followed (default) or not (leader-hints.ts). */
  leaderHints?: LeaderHints;
  backoff?: BackoffOptions;
  random: () => number;
  /** Configured max message size; a Welcome may lower it. */
  maxMessageBytes: number;
  heartbeatIntervalMs?: number;
  welcomeTimeoutMs: number;
  channelOptions?: ChannelOptions;
  credentials?: ChannelCredentials;
  clientFor?: (address: string) => AgentServiceClient;
  /** A stream per address from outside (a pool's); else the lean client when `lean` is set, else grpc-js. */
  openStream?: (address: string) => AgentCall;
  lean?: LeanSetup;
  loadProvider?: () => { cpu?: number; memory?: number; gpu?: number };
  logger: () => Logger;
}

type Call = AgentCall;

export class Connection {
  state: AgentState = 'idle';
  /** Negotiated: the configured size, lowered to the node's if it sets one. */
  maxMessageBytes: number;
  /** The live call saw a Welcome. */
  welcomed = false;
  /** The live call carried a load after its Welcome: only then does a break start the backoff afresh. */
  private loaded = false;
  /** The live call's write() returned false; set until its 'drain'. */
  writeBlocked = false;
  private call: Call | undefined;
  /** The given addresses and the leader address learned from a hint (leader-hints.ts). */
  private readonly addrs: NodeAddresses;
  private readonly backoff: Backoff;
  private readonly ownClients = new Map<string, AgentServiceClient>();
  /** The lean client's connections, when the agent runs on it (addresses it cannot dial go to grpc-js). */
  private readonly lean: AgentStreams | undefined;
  /** Its loads, on the process's shared heartbeat timer (heartbeat-wheel.ts). */
  private readonly beat: Beat = { beat: () => this.sendLoad() };
  private reconnectTimer: NodeJS.Timeout | undefined;
  private welcomeTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly opts: ConnectionOptions,
    private readonly stats: ConnectionStats,
    private readonly peer: ConnectionPeer,
  ) {
    this.backoff = new Backoff(opts.backoff, opts.random);
    this.addrs = new NodeAddresses(opts.addresses, opts.leaderHints);
    this.maxMessageBytes = opts.maxMessageBytes;
    if (opts.lean && !opts.openStream && !opts.clientFor)
      this.lean = h2AgentStreams({
        ...opts.lean,
        maxMessageBytes: opts.maxMessageBytes,
        fallback: (a) => this.clientFor(a).connect(),
      });
  }

  /** The transport of the streams to the current address ('pool' for an outside opener). */
  get transport(): AgentTransport | 'pool' {
    if (this.opts.openStream) return 'pool';
    return this.lean ? this.lean.transportFor(this.address) : 'grpc-js';
  }

  /** The address of the current (or last tried) node replica. */
  get address(): string {
    return this.addrs.current;
  }

  connect(): void {
    if (this.state === 'closed') return;
    this.reconnectTimer = undefined;
    this.state = 'connecting';
    const address = this.address;
    let call: Call;
    try {
      call = this.opts.openStream?.(address) ?? this.lean?.open(address) ?? this.clientFor(address).connect();
    } catch (err) {
      this.opts.logger().warn({ err, address }, 'agent: cannot open stream');
      this.scheduleReconnect(false);
      return;
    }
    this.call = call;
    this.welcomed = this.loaded = false;
    this.writeBlocked = false;
    call.on('data', (m: ConnectResponse) => this.onMessage(call, m));
    call.on('error', () => {}); // the 'status' event carries the outcome
    call.on('status', (s: StatusObject) => this.onBroken(call, s));
    call.write({ msg: { $case: 'hello', value: this.peer.hello() } });
    this.stats.messagesSent++;
    this.welcomeTimer = setTimeout(() => {
      if (this.call === call && !this.welcomed) {
        this.stats.welcomeTimeouts++;
        this.opts.logger().warn({ address }, 'agent: no welcome in time, reconnecting');
        call.cancel();
      }
    }, this.opts.welcomeTimeoutMs);
    this.welcomeTimer.unref();
  }

  /** Write on the live welcomed call, noting backpressure (the peer hears `writable` after the drain). */
  write(m: ConnectRequest): void {
    const call = this.call;
    if (!call) return;
    this.stats.messagesSent++;
    if (!call.write(m)) {
      this.writeBlocked = true;
      call.once('drain', () => {
        if (call !== this.call) return;
        this.writeBlocked = false;
        this.peer.writable();
      });
    }
  }

  /** A heartbeat: load figures, on the welcomed stream only. */
  sendLoad(): void {
    const call = this.call;
    if (!call || !this.welcomed) return;
    const s = sampleLoad();
    const extra = this.opts.loadProvider?.();
    const { inFlight, draining } = this.peer.load();
    call.write({
      msg: {
        $case: 'load',
        value: {
          inFlight,
          cpu: extra?.cpu ?? s.cpu,
          memory: extra?.memory ?? s.memory,
          gpu: extra?.gpu ?? 0,
          draining,
        },
      },
    });
    this.stats.heartbeatsSent++;
    this.stats.messagesSent++;
    this.loaded = true; // the backoff starts afresh at the next reconnect (scheduleReconnect)
  }

  /**
   * Half-close the live call after its queued writes, with a last heartbeat first (the
   * node then ends its side). Returns whether that call is still the live one, to wait on.
   */
  halfClose(): (() => boolean) | undefined {
    const call = this.call;
    if (!call) return undefined;
    this.sendLoad();
    call.end();
    return () => this.call === call;
  }

  /** Stop for good: cancel the stream, clear timers, close the clients made here. */
  close(): void {
    this.state = 'closed';
    this.clearTimers();
    const call = this.call;
    this.call = undefined;
    this.welcomed = false;
    call?.cancel();
    for (const c of this.ownClients.values()) c.close();
    this.ownClients.clear();
    this.lean?.close();
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

  private onMessage(call: Call, m: ConnectResponse): void {
    if (call !== this.call || !m.msg) return;
    if (m.msg.$case === 'welcome') this.onWelcome(m.msg.value);
    else if (m.msg.$case === 'heartbeat') this.onHeartbeatChange(m.msg.value);
    else this.peer.message(m.msg);
  }

  private onWelcome(w: Welcome): void {
    if (this.welcomeTimer) clearTimeout(this.welcomeTimer);
    this.welcomeTimer = undefined;
    this.welcomed = true;
    this.state = 'connected';
    this.addrs.welcomed();
    this.stats.connects++;
    if (w.maxMessageBytes > 0) this.maxMessageBytes = Math.min(this.opts.maxMessageBytes, w.maxMessageBytes);
    const interval = this.opts.heartbeatIntervalMs ?? (w.heartbeatIntervalMs || 1000);
    this.beatEvery(interval, interval);
    this.peer.welcomed(w, interval);
  }

  /**
   * The node lengthened the interval (it holds many agents). The next load goes
   * at a random point of the new interval, so the agents it told at once do not
   * beat in step; the gap since the last load stays within two new intervals,
   * inside the node's timeout. An interval set in the options stays.
   */
  private onHeartbeatChange(h: HeartbeatChange): void {
    if (!this.welcomed || this.opts.heartbeatIntervalMs !== undefined) return;
    if (!(h.intervalMs > this.stats.heartbeatIntervalMs)) return;
    this.beatEvery(h.intervalMs, Math.max(1, Math.floor(this.opts.random() * h.intervalMs)));
  }

  /** Loads every `interval` ms, the first after `firstMs`, on the process's shared heartbeat timer. */
  private beatEvery(interval: number, firstMs: number): void {
    this.stats.heartbeatIntervalMs = interval;
    heartbeatWheel.start(this.beat, interval, firstMs);
  }

  private onBroken(call: Call, s: StatusObject): void {
    if (call !== this.call) return;
    this.call = undefined;
    const wasWelcomed = this.welcomed;
    const wasLoaded = this.loaded;
    this.welcomed = this.loaded = false;
    heartbeatWheel.stop(this.beat);
    if (this.welcomeTimer) clearTimeout(this.welcomeTimer);
    this.welcomeTimer = undefined;
    if (wasWelcomed && this.state !== 'closed') this.stats.disconnects++;
    this.peer.broken(s, wasWelcomed);
    // A replica that does not lead its node cell names the leader: go there next, soon (leader-hints.ts
    // says which hints an agent follows).
    const hint = s.code === status.FAILED_PRECONDITION ? s.metadata?.get(LEADER_ADDRESS_TRAILER)[0] : undefined;
    if (typeof hint === 'string' && this.state !== 'closed' && this.addrs.redirect(hint)) {
      this.opts.logger().info({ from: this.address, to: hint }, 'agent: going to the node cell leader');
      this.state = 'connecting';
      this.reconnectTimer = setTimeout(() => this.connect(), LEADER_REDIRECT_MS);
      return;
    }
    this.scheduleReconnect(wasLoaded, retryAfterOf(s));
  }

  /**
   * After `healthy` (a welcomed stream that carried a load), the first retry comes within the initial
   * backoff. A stream cut before its first load (a node in a connect storm: docs/performance.md, Scale) keeps
   * the backoff growing, so the agents it cut come back spread over longer and longer, not all at once.
   */
  private scheduleReconnect(healthy: boolean, retryAfterMs = 0): void {
    if (this.state === 'closed') return;
    this.state = 'connecting';
    const forgotten = this.addrs.next();
    if (forgotten !== undefined) this.forget(forgotten);
    if (healthy) this.backoff.reset();
    // A node over its hello rate says when to come back (agent-admission.ts): then, plus up to a quarter
    // of jitter, so the agents it refused together do not return together.
    const hinted = retryAfterMs > 0 ? retryAfterMs * (1 + this.opts.random() / 4) : 0;
    const delay = Math.max(this.backoff.next(), hinted);
    this.reconnectTimer = setTimeout(() => this.connect(), delay);
  }

  /** Let go of the connections to a learned address (its stream ended: leader-hints.ts). */
  private forget(address: string): void {
    if (this.opts.addresses.includes(address)) return;
    this.ownClients.get(address)?.close();
    this.ownClients.delete(address);
    this.lean?.forget(address);
  }

  private clearTimers(): void {
    heartbeatWheel.stop(this.beat);
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    if (this.welcomeTimer) clearTimeout(this.welcomeTimer);
    this.reconnectTimer = this.welcomeTimer = undefined;
  }
}

/** The retry hint (ms) of a RESOURCE_EXHAUSTED or UNAVAILABLE end (trailer meshlb-retry-after-ms), else 0. */
function retryAfterOf(s: StatusObject): number {
  if (s.code !== status.RESOURCE_EXHAUSTED && s.code !== status.UNAVAILABLE) return 0;
  const v = Number(s.metadata?.get(RETRY_AFTER_TRAILER)[0]);
  return Number.isFinite(v) && v > 0 ? Math.min(v, MAX_RETRY_AFTER_MS) : 0;
}
