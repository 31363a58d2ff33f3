// The transport port: how a replica's messages reach its peers. send() never
// blocks and may drop (Raft tolerates loss); the transport tells the replica
// when a peer looks unreachable and how a snapshot transfer ended.
import type { Message, NodeId } from '../core/types.js';

export interface ReplicaStatus {
  readonly id: NodeId;
  readonly role: 'follower' | 'preCandidate' | 'candidate' | 'leader';
  readonly term: number;
  readonly leader: NodeId;
  readonly leaderAddress: string;
  readonly commit: number;
  readonly applied: number;
  readonly lastIndex: number;
  /** First index still in the log (entries before it are compacted into a snapshot). */
  readonly firstIndex: number;
}

/** A voter or learner of the group, as one replica knows it (RaftReplica.members). */
export interface RaftMember {
  readonly id: NodeId;
  readonly address: string;
  readonly voter: boolean;
  /** Leader only (0 elsewhere): the highest index known to be in this member's log. */
  readonly match: number;
  /** Leader only (false elsewhere): heard from within the last election timeout. */
  readonly recentActive: boolean;
}

/** The receiving side of a replica, as a transport sees it. */
export interface RaftEndpoint {
  readonly groupId: string;
  readonly id: NodeId;
  /** Messages addressed to this replica (snap messages carry their data). */
  deliver(msgs: readonly Message[]): void;
  reportUnreachable(peer: NodeId): void;
  /** A peer told us where it serves; used only if we have no address for it yet. */
  learnAddress?(peer: NodeId, address: string): void;
  reportSnapshot(peer: NodeId, ok: boolean): void;
  status(): ReplicaStatus;
}

export interface Transport {
  start(endpoint: RaftEndpoint): void;
  /** Queue one Ready's messages for one peer; they go out as one batch. */
  send(to: NodeId, msgs: readonly Message[]): void;
  setPeer(id: NodeId, address: string): void;
  removePeer(id: NodeId): void;
  close(): Promise<void>;
}

/**
 * In-memory twin for unit tests: a network of endpoints in one process with
 * asynchronous delivery (never re-entrant) and a cut() switch for partitions.
 */
export class MemoryNetwork {
  private readonly endpoints = new Map<NodeId, RaftEndpoint>();
  private readonly cutNodes = new Set<NodeId>();
  delivered = 0;

  transport(self: NodeId): Transport {
    return {
      start: (ep) => void this.endpoints.set(self, ep),
      send: (to, msgs) => this.send(self, to, msgs),
      setPeer: () => undefined,
      removePeer: () => undefined,
      close: async () => void this.endpoints.delete(self),
    };
  }

  /** Isolate a node: everything to or from it is dropped until heal(). */
  cut(id: NodeId): void {
    this.cutNodes.add(id);
  }

  heal(id: NodeId): void {
    this.cutNodes.delete(id);
  }

  private send(from: NodeId, to: NodeId, msgs: readonly Message[]): void {
    const src = this.endpoints.get(from);
    setImmediate(() => {
      const dst = this.endpoints.get(to);
      if (!dst || this.cutNodes.has(from) || this.cutNodes.has(to)) {
        src?.reportUnreachable(to);
        for (const m of msgs) if (m.type === 'snap') src?.reportSnapshot(to, false);
        return;
      }
      this.delivered += msgs.length;
      dst.deliver(msgs);
      for (const m of msgs) if (m.type === 'snap') src?.reportSnapshot(to, true);
    });
  }
}
