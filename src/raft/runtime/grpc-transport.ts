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
  type RaftServiceInstallSnapshotRequest,
  type RaftServiceStreamRequest,
  type RaftServiceStreamResponse,
  type RaftMessage,
} from '../../gen/meshlb/v1/raft.js';
import type { Message, NodeId } from '../core/types.js';
import { silentLogger, type RaftLogger } from '../logger.js';
import type { RaftEndpoint, Transport } from './transport.js';
import { messageToWire } from './wire.js';

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

export { registerRaftService } from './grpc-raft-service.js';
