// A follower's writes go to its cell's leader (active-active TaskService):
// Submit, SubmitBatch, a SubmitStream's batches and Cancel are repeated at the
// leader over gRPC with the caller's deadline, and the answer goes back as if
// served here. Only the leader decides (accepts, records); a follower only
// relays.
//
// Invariants:
// - a forwarded call carries `meshlb-forwarded: 1`; a replica never forwards
//   a call that carries it (a replica that stopped leading answers with the
//   FAILED_PRECONDITION leader hint instead), so a call crosses at most one
//   hop and two replicas with crossed hints cannot bounce it between them;
// - at most `maxInFlight` forwarded calls are outstanding per replica; beyond
//   that the caller gets RESOURCE_EXHAUSTED with a retry hint (memory and
//   sockets stay bounded when the leader is slow or gone);
// - one TaskServiceClient (one HTTP/2 connection) per leader address, kept
//   until close(): a cell has at most five replicas, so at most five.
import {
  credentials,
  Metadata,
  status,
  type ChannelCredentials,
  type ClientUnaryCall,
  type Deadline,
  type ServiceError,
} from '@grpc/grpc-js';
import {
  TaskServiceClient,
  type CancelRequest,
  type CancelResponse,
  type SubmitBatchRequest,
  type SubmitBatchResponse,
  type SubmitRequest,
  type SubmitResponse,
} from '../gen/meshlb/v1/task.js';
import {
  LEADER_ADDRESS_TRAILER,
  LEADER_TRAILER,
  MeshError,
  resourceExhausted,
  RETRY_AFTER_TRAILER,
} from '../util/errors.js';

/** Request header marking a call a follower forwarded: the receiver never forwards it again. */
export const FORWARDED_HEADER = 'meshlb-forwarded';
/** Default bound on forwarded calls in flight per replica. */
export const DEFAULT_MAX_FORWARDING = 1024;
/** A forwarded call whose caller set no deadline still ends: a gone leader must not hold a slot forever. */
const MAX_FORWARD_MS = 30_000;

/** Where a write goes: served here, or relayed to the leader named. */
export type WriteRoute =
  { readonly type: 'local' } | { readonly type: 'forward'; readonly leader: string; readonly address: string };

export const LOCAL: WriteRoute = { type: 'local' };

/** Anything that can be cancelled: an upstream call in flight. */
export interface Cancellable {
  cancel(): void;
}

export function isForwarded(md: Metadata): boolean {
  return md.get(FORWARDED_HEADER).some((v) => String(v) === '1');
}

/** UNAVAILABLE with a retry hint (no leader known yet, the leader unreachable). */
export function unavailableRetry(msg: string, retryAfterMs: number): MeshError {
  return new MeshError(status.UNAVAILABLE, msg, { [RETRY_AFTER_TRAILER]: String(retryAfterMs) });
}

/** The leader hint as trailers, for answers a follower relayed: clients may go to the leader directly. */
export function leaderTrailers(to: { leader: string; address: string }): Metadata {
  const md = new Metadata();
  md.set(LEADER_TRAILER, to.leader);
  md.set(LEADER_ADDRESS_TRAILER, to.address);
  return md;
}

/** The unary writes a follower forwards, with their request and response types. */
export type ForwardMethod = 'submit' | 'submitBatch' | 'cancel';
export interface Exchange {
  submit: [SubmitRequest, SubmitResponse];
  submitBatch: [SubmitBatchRequest, SubmitBatchResponse];
  cancel: [CancelRequest, CancelResponse];
}

export interface LeaderForwarderOptions {
  readonly maxInFlight?: number;
  readonly maxMessageBytes: number;
  /** Wall clock (ms): caps forwarded calls that came with no deadline. */
  readonly now: () => number;
  /** A jittered retry hint for RESOURCE_EXHAUSTED and UNAVAILABLE answers. */
  readonly retryHintMs: () => number;
  /** TLS to the leader (src/security); default plaintext. */
  readonly credentials?: ChannelCredentials | undefined;
}

export class LeaderForwarder {
  private readonly clients = new Map<string, TaskServiceClient>();
  private readonly maxInFlight: number;
  private inFlightCount = 0;
  private closed = false;

  constructor(private readonly o: LeaderForwarderOptions) {
    this.maxInFlight = o.maxInFlight ?? DEFAULT_MAX_FORWARDING;
  }

  /** Forwarded calls waiting for the leader's answer. */
  get inFlight(): number {
    return this.inFlightCount;
  }

  /**
   * Repeat `method` at the leader with the caller's deadline. Resolves with
   * the leader's answer; rejects with a MeshError carrying the leader's status
   * and its meshlb-* trailers, plus the leader hint and a retry hint where the
   * leader gave none. `calls`, when given, holds the upstream call while it is
   * in flight, so the caller's cancellation can reach it.
   */
  forward<M extends ForwardMethod>(
    to: { leader: string; address: string },
    method: M,
    req: Exchange[M][0],
    deadline: Deadline,
    calls?: Set<Cancellable>,
  ): Promise<Exchange[M][1]> {
    if (this.closed) return Promise.reject(unavailableRetry('replica shutting down', this.o.retryHintMs()));
    if (this.inFlightCount >= this.maxInFlight) {
      return Promise.reject(
        resourceExhausted(
          `forwarding ${this.inFlightCount} calls to the leader ${to.leader} already; retry shortly`,
          this.o.retryHintMs(),
        ),
      );
    }
    const md = new Metadata();
    md.set(FORWARDED_HEADER, '1');
    const callDeadline = deadlineOrCap(deadline, this.o.now() + MAX_FORWARD_MS);
    const client = this.clientFor(to.address) as unknown as Record<
      ForwardMethod,
      (
        req: unknown,
        md: Metadata,
        o: { deadline: Deadline },
        cb: (err: ServiceError | null, res: unknown) => void,
      ) => ClientUnaryCall
    >;
    this.inFlightCount++;
    return new Promise<Exchange[M][1]>((resolve, reject) => {
      let upstream: ClientUnaryCall | undefined = undefined;
      upstream = client[method](req, md, { deadline: callDeadline }, (err, res) => {
        this.inFlightCount--;
        if (upstream) calls?.delete(upstream);
        if (err) reject(this.relayedError(err, to));
        else resolve(res as Exchange[M][1]);
      });
      calls?.add(upstream);
    });
  }

  close(): void {
    this.closed = true;
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }

  private clientFor(address: string): TaskServiceClient {
    let c = this.clients.get(address);
    if (!c) {
      c = new TaskServiceClient(address, this.o.credentials ?? credentials.createInsecure(), {
        'grpc.max_send_message_length': this.o.maxMessageBytes,
        'grpc.max_receive_message_length': this.o.maxMessageBytes,
      });
      this.clients.set(address, c);
    }
    return c;
  }

  /** The leader's status as ours: its mesh trailers kept, the leader and retry hints added where missing. */
  private relayedError(err: ServiceError, to: { leader: string; address: string }): MeshError {
    const trailers: Record<string, string> = {};
    for (const [k, v] of Object.entries(err.metadata?.getMap() ?? {})) {
      if (k.startsWith('meshlb-') && k !== FORWARDED_HEADER) trailers[k] = String(v);
    }
    if (trailers[LEADER_TRAILER] === undefined && trailers[LEADER_ADDRESS_TRAILER] === undefined) {
      trailers[LEADER_TRAILER] = to.leader;
      trailers[LEADER_ADDRESS_TRAILER] = to.address;
    }
    const retryable = err.code === status.UNAVAILABLE || err.code === status.RESOURCE_EXHAUSTED;
    if (retryable && trailers[RETRY_AFTER_TRAILER] === undefined)
      trailers[RETRY_AFTER_TRAILER] = String(this.o.retryHintMs());
    return new MeshError(err.code, err.details || err.message, trailers, { cause: err });
  }
}

function deadlineOrCap(deadline: Deadline, cap: number): number {
  const ms = typeof deadline === 'number' ? deadline : deadline.getTime();
  return Number.isFinite(ms) ? Math.min(ms, cap) : cap;
}
