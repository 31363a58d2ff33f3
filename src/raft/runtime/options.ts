// What a caller gives a RaftReplica: the replicated application, where it
// lives, how it talks, and its knobs.
import type { NodeId } from '../core/types.js';
import type { RaftLogger } from '../logger.js';
import type { LogStore, SnapshotStore } from '../storage/ports.js';
import type { RaftClock } from './clock.js';
import type { CoreFactory } from './core-port.js';
import type { RaftLimits, RaftTiming } from './defaults.js';
import type { Transport } from './transport.js';

/** The replicated application. apply() must be deterministic: every replica applies the same entries in order. */
export interface StateMachine {
  apply(data: Uint8Array, index: number): unknown;
  snapshot(): Uint8Array;
  restore(data: Uint8Array): void;
}

export interface ReplicaOptions {
  readonly groupId: string;
  readonly id: NodeId;
  /** Initial voters with their addresses (self included); later starts only take addresses from it. */
  readonly peers: Readonly<Record<NodeId, string>>;
  /**
   * Joining an existing group (added with addVoter/addLearner): start with an
   * empty log and learn the configuration from the leader. Without it, a first
   * start bootstraps a new group whose voters are `peers`.
   */
  readonly join?: boolean;
  /** Where LmdbStorage keeps the log and snapshots, unless `storage` is given. */
  readonly dataDir?: string;
  readonly storage?: { log: LogStore; snapshots: SnapshotStore };
  readonly stateMachine: StateMachine;
  readonly transport: Transport;
  /** The pure core; RawNode unless a test drives the runtime with a fake. */
  readonly core?: CoreFactory;
  readonly timing?: Partial<RaftTiming>;
  readonly limits?: Partial<RaftLimits>;
  readonly random?: () => number;
  /**
   * Time for the tick, request deadlines and the pump's turns; realClock when
   * absent. A virtual clock makes the replica run only when its driver moves
   * it: stop() too needs the clock driven until it resolves.
   */
  readonly clock?: RaftClock;
  /** Also handed to the LmdbStorage the replica opens. Silent when absent. */
  readonly log?: RaftLogger;
  /**
   * Whether `id` could name a replica of this group at all (meshlb: "<cell>#<n>").
   * Messages from any other sender are dropped before the core sees them: a
   * replica of another cell, or a stray or hostile sender, must not move our
   * term or name our leader. Every sender is a candidate when absent.
   */
  readonly isPeerId?: (id: NodeId) => boolean;
}

export interface RequestOptions {
  readonly timeoutMs?: number;
}
