// The mesh simulator's network: gRPC bidirectional streams between named
// endpoints (replicas, agents), on virtual time, with the faults a real
// network has. The real link and agent-session code is handed these streams
// where it would get grpc-js call objects, so only the sockets are fake.
//
// What a stream does here is what HTTP/2 over TCP does: messages arrive in
// order or not at all. Every message is encoded and decoded with the proto
// codec (no object is shared between the ends). Faults:
// - delay: each message takes a seeded latency; a direction stays FIFO;
// - break: the stream fails at both ends (the client sees UNAVAILABLE, the
//   server 'cancelled'); what was in flight is gone;
// - partition: nothing gets through between the two endpoints and no error
//   says so (a blackholed network); what a live stream sent waits, in order,
//   and arrives when the partition heals, unless a peer's silence timeout
//   tore the stream down first (then it is lost with the stream);
// - an endpoint that is down refuses new streams (UNAVAILABLE) and breaks its
//   open ones.
// Duplication and reordering inside one stream cannot happen over TCP; they
// happen across streams, and the simulator makes them that way: a message of
// an old stream still arriving after its replacement opened, results sent
// again by an agent after a reconnect or twice in a row.
import { EventEmitter } from 'node:events';
import { Metadata, status, type ServiceError } from '@grpc/grpc-js';
import type { Rng } from '../../../src/util/rng.js';
import type { VirtualScheduler } from '../../../src/mesh/virtual-scheduler.js';

export interface Codec<M> {
  encode(m: M): { finish(): Uint8Array };
  decode(b: Uint8Array): M;
}

type Deliver = () => void;

/**
 * One direction of a stream: FIFO delivery on virtual time. Across a
 * partition nothing arrives, and nothing is lost either while the stream
 * lives (TCP retransmits): what was sent waits, in order, until the partition
 * heals or the stream is torn down (then it is gone, as in-flight data is).
 */
class Direction {
  private lastAt = 0;
  private held: [Deliver, (() => void) | undefined][] = [];
  private polling = false;
  constructor(
    private readonly net: SimNet,
    private readonly pipe: Pipe<unknown, unknown>,
  ) {}

  send(fn: Deliver, cb?: () => void): void {
    const vs = this.net.vs;
    const at = Math.max(this.lastAt, vs.now() + this.net.latency(this.pipe.from, this.pipe.to));
    this.lastAt = at;
    vs.setTimer(at - vs.now(), () => {
      if (this.pipe.closed) return;
      if (this.held.length > 0 || this.net.cut(this.pipe.from, this.pipe.to)) {
        this.held.push([fn, cb]);
        this.poll();
        return;
      }
      cb?.();
      fn();
    });
  }

  private poll(): void {
    if (this.polling) return;
    this.polling = true;
    this.net.vs.setTimer(HOLD_POLL_MS, () => {
      this.polling = false;
      if (this.pipe.closed) {
        this.held = [];
        return;
      }
      if (this.net.cut(this.pipe.from, this.pipe.to)) return this.poll();
      const held = this.held;
      this.held = [];
      for (const [fn, cb] of held) {
        if (this.pipe.closed) return;
        cb?.();
        fn();
      }
    });
  }
}

/** How often a held direction looks whether its partition healed (ms). */
const HOLD_POLL_MS = 20;

/** The client end: what ParentLink gets from its dialer, and what a simulated agent writes to. */
export class ClientEnd<Req, Res> extends EventEmitter {
  constructor(private readonly pipe: Pipe<Req, Res>) {
    super();
  }
  write(msg: Req, cb?: () => void): boolean {
    // After end() a write is a bug (Node streams throw); on a stream that broke it goes nowhere (grpc-js).
    if (this.pipe.clientHalfClosed) throw new Error('write after end');
    if (this.pipe.closed) return false;
    this.pipe.toServer(msg, cb);
    return true;
  }
  end(): void {
    this.pipe.clientEnd();
  }
  cancel(): void {
    this.pipe.clientCancel();
  }
  getPeer(): string {
    return `sim:${this.pipe.to}`;
  }
}

/** The server end: what ChildLinks.open and AgentSessions.connect get. */
export class ServerEnd<Req, Res> extends EventEmitter {
  constructor(private readonly pipe: Pipe<Req, Res>) {
    super();
  }
  write(msg: Res, cb?: () => void): boolean {
    if (this.pipe.serverEnded && !this.pipe.closed) throw new Error('write after end');
    if (this.pipe.closed) return false;
    this.pipe.toClient(msg, cb);
    return true;
  }
  end(): void {
    this.pipe.serverEnd();
  }
  /** failStream emits 'error' with a status: the handler's own listeners run, and the client gets the status. */
  override emit(event: string | symbol, ...args: unknown[]): boolean {
    const had = super.emit(event, ...args);
    if (event === 'error' && !this.pipe.closed) this.pipe.serverFail(args[0] as Partial<ServiceError>);
    return had;
  }
  getPeer(): string {
    return `sim:${this.pipe.from}`;
  }
}

export class Pipe<Req, Res> {
  closed = false;
  clientHalfClosed = false;
  serverEnded = false;
  readonly client: ClientEnd<Req, Res>;
  readonly server: ServerEnd<Req, Res>;
  private readonly up: Direction;
  private readonly down: Direction;

  constructor(
    private readonly net: SimNet,
    readonly from: string,
    readonly to: string,
    private readonly req: Codec<Req>,
    private readonly res: Codec<Res>,
  ) {
    this.client = new ClientEnd(this);
    this.server = new ServerEnd(this);
    this.up = new Direction(net, this as Pipe<unknown, unknown>);
    this.down = new Direction(net, this as Pipe<unknown, unknown>);
  }

  /** The server handler gets the stream when the first bytes arrive (FIFO with what follows). */
  open(handler: (call: ServerEnd<Req, Res>) => void): void {
    this.up.send(() => handler(this.server));
  }

  toServer(msg: Req, cb?: () => void): void {
    const bytes = this.req.encode(msg).finish();
    this.net.stats.messages++;
    this.up.send(() => this.server.emit('data', this.req.decode(bytes)), cb);
  }

  toClient(msg: Res, cb?: () => void): void {
    const bytes = this.res.encode(msg).finish();
    this.net.stats.messages++;
    this.down.send(() => this.client.emit('data', this.res.decode(bytes)), cb);
  }

  clientEnd(): void {
    if (this.closed || this.clientHalfClosed) return;
    this.clientHalfClosed = true;
    this.up.send(() => this.server.emit('end'));
  }

  clientCancel(): void {
    if (this.closed) return;
    this.net.vs.defer(() => this.client.emit('error', serviceError(status.CANCELLED, 'Cancelled on client')));
    // The server learns of it if the network lets the RST through.
    const cut = this.net.cut(this.from, this.to);
    this.closeAll();
    if (!cut) this.net.vs.setTimer(this.net.latency(this.from, this.to), () => this.server.emit('cancelled'));
  }

  serverEnd(): void {
    if (this.closed || this.serverEnded) return;
    this.serverEnded = true;
    this.down.send(() => {
      this.closeAll();
      this.client.emit('end');
    });
  }

  serverFail(err: Partial<ServiceError>): void {
    if (this.serverEnded) return;
    this.serverEnded = true;
    const se = serviceError(err.code ?? status.UNKNOWN, err.details ?? '', err.metadata);
    this.down.send(() => {
      this.closeAll();
      this.client.emit('error', se);
    });
  }

  /** A broken connection: both ends hear of it now (what was in flight is lost). */
  break(why: string): void {
    if (this.closed) return;
    this.closeAll();
    this.net.vs.defer(() => {
      this.client.emit('error', serviceError(status.UNAVAILABLE, why));
      this.server.emit('cancelled');
    });
  }

  private closeAll(): void {
    this.closed = true;
    this.net.forget(this as Pipe<unknown, unknown>);
  }
}

function serviceError(code: status, details: string, metadata = new Metadata()): ServiceError {
  return Object.assign(new Error(`${code} ${status[code]}: ${details}`), { code, details, metadata });
}

/** Where a stream can be opened: an endpoint's handler by name (a replica's LinkService, a node's AgentService). */
export type Handler = (call: ServerEnd<never, never>) => void;

export class SimNet {
  /** Per endpoint, its services' handlers ('link', 'agent'). */
  private readonly handlers = new Map<string, Map<string, Handler>>();
  private readonly down = new Set<string>();
  /** Blackholed endpoint pairs, as "a|b" with a < b. */
  private readonly partitions = new Set<string>();
  private readonly isolated = new Set<string>();
  private readonly pipes = new Set<Pipe<unknown, unknown>>();
  /** Per-endpoint extra latency (a slow host). */
  private readonly slow = new Map<string, number>();
  readonly stats = { messages: 0, streams: 0, refused: 0, broken: 0 };

  constructor(
    readonly vs: VirtualScheduler,
    private readonly rng: Rng,
    /** Base one-way latency range, ms. */
    private readonly latencyMs: readonly [number, number] = [0, 3],
  ) {}

  latency(from: string, to: string): number {
    const [lo, hi] = this.latencyMs;
    let ms = lo + this.rng.next() * (hi - lo);
    // A rare long tail: a retransmission, a GC pause on the path.
    if (this.rng.chance(0.01)) ms += this.rng.next() * 200;
    // Whole milliseconds, as real clocks read: the cells' timestamps stay integers (int64 on the wire).
    return Math.round(ms + (this.slow.get(from) ?? 0) + (this.slow.get(to) ?? 0));
  }

  serve(endpoint: string, service: string, handler: Handler): void {
    let m = this.handlers.get(endpoint);
    if (!m) this.handlers.set(endpoint, (m = new Map()));
    m.set(service, handler);
  }

  /** Open a stream; a down or unknown endpoint refuses it (UNAVAILABLE) after a round trip. */
  open<Req, Res>(from: string, to: string, service: string, req: Codec<Req>, res: Codec<Res>): ClientEnd<Req, Res> {
    const pipe = new Pipe(this, from, to, req, res);
    this.stats.streams++;
    const handler = this.handlers.get(to)?.get(service);
    if (this.down.has(to) || this.down.has(from) || (!handler && this.handlers.has(to))) {
      this.stats.refused++;
      pipe.closed = true;
      const err = handler
        ? serviceError(status.UNAVAILABLE, `connection refused by ${to}`)
        : serviceError(status.UNIMPLEMENTED, `${to} does not serve ${service}`);
      this.vs.setTimer(this.latency(from, to) * 2, () => pipe.client.emit('error', err));
      return pipe.client;
    }
    if (!handler) throw new Error(`sim: no endpoint ${to}`);
    this.pipes.add(pipe as Pipe<unknown, unknown>);
    pipe.open(handler as (call: ServerEnd<Req, Res>) => void);
    return pipe.client;
  }

  forget(pipe: Pipe<unknown, unknown>): void {
    this.pipes.delete(pipe);
  }

  cut(a: string, b: string): boolean {
    if (this.isolated.size > 0 && (this.isolated.has(a) || this.isolated.has(b))) return true;
    return this.partitions.size > 0 && this.partitions.has(a < b ? `${a}|${b}` : `${b}|${a}`);
  }

  /** Cut `endpoint` off from everyone (its host's network is down), or heal that. */
  isolate(endpoint: string, on: boolean): void {
    if (on) this.isolated.add(endpoint);
    else this.isolated.delete(endpoint);
  }

  partition(a: string, b: string, on: boolean): void {
    const k = a < b ? `${a}|${b}` : `${b}|${a}`;
    if (on) this.partitions.add(k);
    else this.partitions.delete(k);
  }

  healAll(): void {
    this.partitions.clear();
    this.isolated.clear();
    this.slow.clear();
  }

  setSlow(endpoint: string, extraMs: number): void {
    if (extraMs > 0) this.slow.set(endpoint, extraMs);
    else this.slow.delete(endpoint);
  }

  /** Break every open stream touching `endpoint` (a crash, a network reset). */
  breakAll(endpoint: string, why: string): number {
    let n = 0;
    for (const p of [...this.pipes]) {
      if (p.from !== endpoint && p.to !== endpoint) continue;
      p.break(why);
      n++;
    }
    this.stats.broken += n;
    return n;
  }

  /** Break one stream between the two, if any (a connection reset). */
  breakOne(a: string, b: string, why: string): boolean {
    for (const p of this.pipes) {
      if ((p.from === a && p.to === b) || (p.from === b && p.to === a)) {
        p.break(why);
        this.stats.broken++;
        return true;
      }
    }
    return false;
  }

  setDown(endpoint: string, isDown: boolean): void {
    if (isDown) {
      this.down.add(endpoint);
      this.breakAll(endpoint, `${endpoint} is down`);
    } else this.down.delete(endpoint);
  }

  get openStreams(): number {
    return this.pipes.size;
  }
}
