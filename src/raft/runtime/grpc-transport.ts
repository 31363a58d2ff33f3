// Raft over gRPC. Each replica dials each peer once and keeps one bidi Stream
// per peer, writing one RaftServiceStreamRequest per batch. Per-peer send
// queues are bounded: when a peer is slow or down we drop (Raft retransmits)
// and tell the core the peer is unreachable so it stops pipelining to it.
// Snapshots go through InstallSnapshot in chunks so no single gRPC message has
// to hold a whole snapshot.
//
// Cluster ids: the application may give both ends an opaque `clusterId` (the
// mesh id and cell path, say). Every stream batch and snapshot header carries
// the sender's; a receiver whose replica has a different one refuses the
// stream with FAILED_PRECONDITION and delivers nothing, so two clusters whose
// addresses overlap never exchange entries. Empty on either side: not checked.
import * as grpc from '@grpc/grpc-js';
import {
  RaftServiceClient,
  RaftServiceService,
  type RaftServiceInstallSnapshotRequest,
  type RaftServiceServer,
  type RaftServiceStreamRequest,
  type RaftServiceStreamResponse,
  type RaftMessage,
} from '../../gen/meshlb/v1/raft.js';
import type { Message, NodeId } from '../core/types.js';
import { silentLogger, type RaftLogger } from '../logger.js';
import type { RaftEndpoint, Transport } from './transport.js';
import { messageFromWire, messageToWire, ROLE_TO_WIRE } from './wire.js';

const CHUNK = 1 << 20;

export interface GrpcTransportOptions {
  readonly groupId: string;
  readonly self: NodeId;
  /** Peer id -> "host:port"; the entry for `self` is our own address, told to peers so they can answer. */
  readonly peers: Readonly<Record<NodeId, string>>;
  readonly credentials?: grpc.ChannelCredentials;
  /** Messages queued per peer before new ones are dropped. */
  readonly maxQueue?: number;
  /** Soft cap on one stream write (the receiver's default limit is 4 MiB). */
  readonly maxBatchBytes?: number;
  /** Silent when absent. */
  readonly log?: RaftLogger;
  /** Sent with every batch; a receiver registered with another one refuses us (see the top). */
  readonly clusterId?: string;
}

/** After a peer refused us for another cluster id: retry this rarely (a configuration error, not a blip). */
const REFUSED_RETRY_MS = 5000;

export class GrpcTransport implements Transport {
  private readonly links = new Map<NodeId, PeerLink>();
  private endpoint: RaftEndpoint | undefined;
  private readonly log: RaftLogger;

  constructor(private readonly opts: GrpcTransportOptions) {
    this.log = opts.log ?? silentLogger;
    for (const [id, addr] of Object.entries(opts.peers)) this.setPeer(id, addr);
  }

  start(endpoint: RaftEndpoint): void {
    this.endpoint = endpoint;
  }

  send(to: NodeId, msgs: readonly Message[]): void {
    const link = this.links.get(to);
    if (!link) {
      this.endpoint?.reportUnreachable(to);
      return;
    }
    link.send(msgs);
  }

  setPeer(id: NodeId, address: string): void {
    if (id === this.opts.self || !address) return;
    const cur = this.links.get(id);
    if (cur?.address === address) return;
    cur?.close();
    this.links.set(id, new PeerLink(id, address, this.opts, () => this.endpoint, this.log));
  }

  removePeer(id: NodeId): void {
    this.links.get(id)?.close();
    this.links.delete(id);
  }

  async close(): Promise<void> {
    for (const l of this.links.values()) l.close();
    this.links.clear();
  }
}

class PeerLink {
  private readonly client: RaftServiceClient;
  private call: grpc.ClientDuplexStream<RaftServiceStreamRequest, RaftServiceStreamResponse> | undefined;
  private queue: RaftMessage[] = [];
  private writable = true;
  private backoffMs = 0;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private closed = false;
  /** The last refusal logged, so a peer that keeps refusing is logged once. */
  private lastRefusal = '';
  private readonly maxQueue: number;
  private readonly maxBatchBytes: number;

  constructor(
    readonly id: NodeId,
    readonly address: string,
    private readonly opts: GrpcTransportOptions,
    private readonly endpoint: () => RaftEndpoint | undefined,
    private readonly log: RaftLogger,
  ) {
    this.maxQueue = opts.maxQueue ?? 8192;
    this.maxBatchBytes = opts.maxBatchBytes ?? 1 << 20;
    this.client = new RaftServiceClient(address, opts.credentials ?? grpc.credentials.createInsecure(), {
      // Peers restart in well under a second in failover; grpc's default 1 s
      // initial reconnect backoff would keep a restarted peer cut off longer.
      'grpc.initial_reconnect_backoff_ms': 50,
      'grpc.max_reconnect_backoff_ms': 1000,
      'grpc.max_receive_message_length': 64 << 20,
    });
  }

  send(msgs: readonly Message[]): void {
    if (this.closed) return;
    for (const m of msgs) {
      if (m.type === 'snap') {
        this.sendSnapshot(m);
        continue;
      }
      if (this.queue.length >= this.maxQueue) {
        this.endpoint()?.reportUnreachable(this.id);
        continue; // drop: Raft will retransmit what matters
      }
      this.queue.push(messageToWire(m));
    }
    // The replica hands over one batch per peer per Ready: write it now (a
    // deferred flush would hold it behind the next Ready's fsync).
    this.flush();
  }

  private flush(): void {
    if (this.closed || this.queue.length === 0) return;
    const call = this.ensureCall();
    if (!call) return;
    while (this.queue.length > 0 && this.writable) {
      let n = 0;
      let bytes = 0;
      while (n < this.queue.length && (n === 0 || bytes < this.maxBatchBytes)) {
        bytes += 64 + this.queue[n]!.entries.reduce((s, e) => s + e.data.length + 24, 0);
        n++;
      }
      const messages = this.queue.splice(0, n);
      const fromAddress = this.opts.peers[this.opts.self] ?? '';
      this.writable = call.write({
        groupId: this.opts.groupId,
        from: this.opts.self,
        messages,
        fromAddress,
        clusterId: this.opts.clusterId ?? '',
      });
    }
    if (!this.writable) {
      call.once('drain', () => {
        this.writable = true;
        this.flush();
      });
    }
  }

  private ensureCall(): grpc.ClientDuplexStream<RaftServiceStreamRequest, RaftServiceStreamResponse> | undefined {
    if (this.call) return this.call;
    if (this.reconnectTimer) return undefined;
    const call = this.client.stream();
    this.call = call;
    this.writable = true;
    call.on('metadata', () => {
      this.backoffMs = 0; // the peer answered: the stream is up
    });
    call.on('data', (r: RaftServiceStreamResponse) => {
      if (r.error) this.log.warn({ peer: this.id, error: r.error }, 'peer refused raft messages');
    });
    const down = (err?: Partial<grpc.ServiceError>) => {
      if (this.call !== call) return;
      this.call = undefined;
      if (this.closed) return;
      const refused = err?.code === grpc.status.FAILED_PRECONDITION;
      if (refused && err.details !== this.lastRefusal) {
        this.lastRefusal = err.details ?? '';
        this.log.warn(
          { peer: this.id, address: this.address, err: this.lastRefusal.slice(0, 500) },
          'raft peer refused us',
        );
      } else this.log.debug({ peer: this.id, err: err?.message }, 'raft stream down');
      this.endpoint()?.reportUnreachable(this.id);
      this.backoffMs = refused ? REFUSED_RETRY_MS : Math.min(1000, Math.max(25, this.backoffMs * 2));
      const delay = this.backoffMs / 2 + (Math.random() * this.backoffMs) / 2;
      this.reconnectTimer = setTimeout(() => {
        this.reconnectTimer = undefined;
        this.flush();
      }, delay);
    };
    call.on('error', (err: grpc.ServiceError) => down(err));
    call.on('end', () => down());
    call.on('close', () => down());
    return call;
  }

  private sendSnapshot(m: Message): void {
    const snap = m.snapshot;
    const ep = this.endpoint();
    if (!snap) return;
    const call = this.client.installSnapshot({ deadline: Date.now() + 60_000 }, (err, res) => {
      const ok = !err && res.accepted;
      if (!ok) this.log.warn({ peer: this.id, err: err?.message ?? res?.error }, 'snapshot transfer failed');
      ep?.reportSnapshot(this.id, ok);
    });
    const header: RaftServiceInstallSnapshotRequest = {
      part: {
        $case: 'header',
        value: {
          groupId: this.opts.groupId,
          message: messageToWire(m),
          totalBytes: snap.data.length,
          clusterId: this.opts.clusterId ?? '',
        },
      },
    };
    call.write(header);
    for (let off = 0; off < snap.data.length; off += CHUNK) {
      call.write({ part: { $case: 'chunk', value: Buffer.from(snap.data.subarray(off, off + CHUNK)) } });
    }
    call.end();
  }

  close(): void {
    this.closed = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.call?.end();
    this.call = undefined;
    this.client.close();
  }
}

// ---- server side: one RaftService per grpc.Server, routing to many replicas ----

interface Route {
  readonly ep: RaftEndpoint;
  readonly clusterId: string;
}
interface Router {
  readonly replicas: Map<string, Route>; // `${group}\0${node}`
}
const routers = new WeakMap<grpc.Server, Router>();
const key = (group: string, node: NodeId) => `${group}\0${node}`;

/** Caller input in an error or a log line: quoted, at most 200 characters of it. */
const clip = (s: string): string => JSON.stringify(s.length > 200 ? `${s.slice(0, 200)}…` : s);

/** A request that failed to decode (say a uint64 past 2^53, which the generated decoder refuses). */
interface Undecodable {
  readonly $undecodable: string;
}
const isUndecodable = (m: unknown): m is Undecodable => typeof m === 'object' && m !== null && '$undecodable' in m;

/**
 * The service with tolerant request decoding: bytes that do not decode reach
 * the handler as an Undecodable, answered INVALID_ARGUMENT, instead of grpc-js's
 * INTERNAL "Error deserializing request" (which says the server is at fault).
 */
function tolerant(def: grpc.ServiceDefinition): grpc.ServiceDefinition {
  const out: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  for (const [name, m] of Object.entries(def)) {
    out[name] = {
      ...m,
      requestDeserialize: (buf: Buffer) => {
        try {
          return m.requestDeserialize(buf);
        } catch (err) {
          return { $undecodable: err instanceof Error ? err.message : String(err) } satisfies Undecodable;
        }
      },
    };
  }
  return out;
}

const undecodable = (m: Undecodable): Partial<grpc.StatusObject> => ({
  code: grpc.status.INVALID_ARGUMENT,
  details: `undecodable raft request: ${clip(m.$undecodable)}`,
});

/** Why a sender of cluster `theirs` may not reach `route`, or '' (empty ids are not checked). */
function clusterRefusal(what: string, theirs: string, route: Route): string {
  if (!theirs || !route.clusterId || theirs === route.clusterId) return '';
  return `${what} refused: it is for cluster ${clip(theirs)}, but replica ${clip(route.ep.id)} here is in cluster ${clip(route.clusterId)}`;
}

/**
 * Attach a replica to an existing grpc.Server (the service is added once per
 * server; later calls only add routes), so all cells of a process can share
 * one port. Returns a function that detaches the replica. `opts.log` (silent
 * when absent) is the service's, so only the first registration on a server sets it.
 */
export function registerRaftService(
  server: grpc.Server,
  endpoint: RaftEndpoint,
  opts: { readonly log?: RaftLogger; readonly clusterId?: string } = {},
): () => void {
  let router = routers.get(server);
  if (!router) {
    const r: Router = { replicas: new Map() };
    router = r;
    routers.set(server, r);
    server.addService(tolerant(RaftServiceService), raftServiceImpl(r, opts.log ?? silentLogger));
  }
  const k = key(endpoint.groupId, endpoint.id);
  const route: Route = { ep: endpoint, clusterId: opts.clusterId ?? '' };
  router.replicas.set(k, route);
  const rt = router;
  return () => {
    if (rt.replicas.get(k) === route) rt.replicas.delete(k);
  };
}

function raftServiceImpl(router: Router, log: RaftLogger): RaftServiceServer {
  return {
    stream(call) {
      call.sendMetadata(new grpc.Metadata());
      let refused = false;
      call.on('data', (req: RaftServiceStreamRequest | Undecodable) => {
        if (refused) return;
        if (isUndecodable(req)) {
          refused = true;
          log.warn({ err: clip(req.$undecodable) }, 'raft stream refused: undecodable request');
          call.emit('error', undecodable(req));
          return;
        }
        const byNode = new Map<NodeId, Message[]>();
        for (const w of req.messages) {
          let m: Message;
          try {
            m = messageFromWire(w);
          } catch (err) {
            log.warn({ err: String(err), from: req.from }, 'dropping malformed raft message');
            continue;
          }
          const list = byNode.get(m.to);
          if (list) list.push(m);
          else byNode.set(m.to, [m]);
        }
        // Another cluster's sender gets nothing delivered, and its stream ends.
        for (const to of byNode.keys()) {
          const route = router.replicas.get(key(req.groupId, to));
          const why = route ? clusterRefusal(`raft stream from ${clip(req.from)}`, req.clusterId, route) : '';
          if (!why) continue;
          refused = true;
          log.warn(
            { from: clip(req.from), group: clip(req.groupId), err: why },
            'raft stream refused: another cluster',
          );
          call.emit('error', { code: grpc.status.FAILED_PRECONDITION, details: why });
          return;
        }
        for (const [to, msgs] of byNode) {
          const ep = router.replicas.get(key(req.groupId, to))?.ep;
          if (ep && req.fromAddress) ep.learnAddress?.(req.from, req.fromAddress);
          if (ep) ep.deliver(msgs);
          else call.write({ error: `unknown raft replica ${clip(to)} in group ${clip(req.groupId)}` });
        }
      });
      call.on('end', () => call.end());
      call.on('error', () => undefined); // the peer went away; it will redial
    },
    installSnapshot(call, callback) {
      let header: { groupId: string; message: RaftMessage; totalBytes: number; clusterId: string } | undefined;
      const chunks: Buffer[] = [];
      let size = 0;
      let failed = '';
      let invalid: Undecodable | undefined;
      call.on('data', (req: RaftServiceInstallSnapshotRequest | Undecodable) => {
        if (isUndecodable(req)) invalid ??= req;
        else if (req.part?.$case === 'header' && req.part.value.message) {
          header = {
            groupId: req.part.value.groupId,
            message: req.part.value.message,
            totalBytes: req.part.value.totalBytes,
            clusterId: req.part.value.clusterId,
          };
        } else if (req.part?.$case === 'chunk') {
          size += req.part.value.length;
          if (!header || size > header.totalBytes) failed = 'chunk without header or beyond total size';
          else chunks.push(req.part.value);
        }
      });
      call.on('end', () => {
        if (invalid) return callback(undecodable(invalid));
        if (!failed && (!header || size !== header.totalBytes)) failed = 'incomplete snapshot';
        const route = header && router.replicas.get(key(header.groupId, header.message.to));
        const why = header && route ? clusterRefusal('snapshot', header.clusterId, route) : '';
        if (why) {
          log.warn({ group: clip(header?.groupId ?? ''), err: why }, 'raft snapshot refused: another cluster');
          return callback({ code: grpc.status.FAILED_PRECONDITION, details: why });
        }
        const ep = route?.ep;
        if (!failed && !ep) failed = 'unknown raft replica';
        if (failed || !header || !ep) return callback(null, { accepted: false, error: failed });
        try {
          ep.deliver([messageFromWire(header.message, Buffer.concat(chunks))]);
          callback(null, { accepted: true, error: '' });
        } catch (err) {
          callback(null, { accepted: false, error: String(err) });
        }
      });
      call.on('error', () => undefined);
    },
    status(call, callback) {
      const req: unknown = call.request;
      if (isUndecodable(req)) return callback(undecodable(req));
      const prefix = `${call.request.groupId}\0`;
      const ep = [...router.replicas.entries()].find(([k]) => k.startsWith(prefix))?.[1].ep;
      // The group id is quoted clipped: a trailer past the peer's header-list limit never arrives.
      if (!ep)
        return callback({ code: grpc.status.NOT_FOUND, details: `no raft group ${clip(call.request.groupId)} here` });
      const s = ep.status();
      callback(null, {
        nodeId: s.id,
        role: ROLE_TO_WIRE[s.role],
        term: s.term,
        leaderId: s.leader,
        leaderAddress: s.leaderAddress,
        commit: s.commit,
        applied: s.applied,
        lastIndex: s.lastIndex,
      });
    },
  };
}
