// A cell replica's Raft group: the RaftLedgerLog (the ledger replicated by
// src/raft) on lmdb in the replica's data directory, its peers from the
// topology (the cell's other replicas, by replica id), and the Raft gRPC
// service on the replica's own port. The cell sees it as a ReplicatedLog.
//
// The group's cluster id is the mesh id and the cell path: a replica of
// another mesh (or another cell) whose address overlaps ours is refused on
// the Raft stream, and no entry crosses between them.
//
// Used for every replica that has a data directory (`meshlb serve` always
// has one), whatever its replica count: a one-replica cell is a one-voter
// group, so its accepted tasks survive a restart too.
import type { ChannelCredentials, Server } from '@grpc/grpc-js';
import { GrpcTransport, registerRaftService, type RaftLogger } from '../raft/index.js';
import type { CellSpec } from '../topology/types.js';
import type { Ledger } from './ledger.js';
import type { LogFactory } from './leadership.js';
import { RaftCellLog } from './raft-cell-log.js';
import { claimDataDir } from './data-dir.js';
import { RaftLedgerLog } from './raft-ledger-log.js';
import { realScheduler, type Scheduler } from './scheduler.js';

export interface RaftCellOptions {
  readonly spec: CellSpec;
  readonly replica: number;
  /** This replica's own directory (lmdb log, hard state, snapshots). */
  readonly dataDir: string;
  /** The topology's mesh id; with the cell path, the Raft cluster id both ends of a stream compare. */
  readonly meshId: string;
  readonly log: RaftLogger;
  /** Peer addresses by replica number, when they differ from the topology's (tests, dev). */
  readonly addresses?: (replica: number) => string | undefined;
  readonly random?: () => number;
  /**
   * A replica being added to a running group (`meshlb serve --join`): it
   * starts with an empty log and learns the members from the leader once
   * AddReplica names it. Ignored once its data dir holds a log.
   */
  readonly join?: boolean;
  /** Clock and timers for transfers and catch-up waits (real by default). */
  readonly scheduler?: Scheduler;
  /** TLS to the peers (src/security); default plaintext. */
  readonly credentials?: ChannelCredentials;
}

export interface RaftCell {
  readonly factory: LogFactory;
  /** Serve the group's Raft stream on the replica's gRPC server (before it binds). */
  register(server: Server): void;
}

/** Replica ids of a cell are "<cell>#<n>" (src/topology/validate.ts); AddReplica keeps the form. */
export function isReplicaIdOf(cell: string, id: string): boolean {
  return id.startsWith(`${cell}#`) && /^[1-9][0-9]{0,8}$/.test(id.slice(cell.length + 1));
}

export function raftCell(o: RaftCellOptions): RaftCell {
  const peers: Record<string, string> = {};
  for (const r of o.spec.replicas) peers[r.id] = o.addresses?.(r.replica) ?? r.address;
  const self = o.spec.replicas.find((r) => r.replica === o.replica);
  if (!self) throw new Error(`cell ${o.spec.path} has no replica ${o.replica}`);
  const clusterId = `${o.meshId}${o.spec.path}`;
  claimDataDir(o.dataDir, { meshId: o.meshId, cell: o.spec.path, replicaId: self.id });
  let log: RaftLedgerLog | undefined;
  const factory: LogFactory = (ledger: Ledger) => {
    const transport = new GrpcTransport({
      groupId: o.spec.path,
      self: self.id,
      peers,
      clusterId,
      log: o.log,
      ...(o.credentials ? { credentials: o.credentials } : {}),
    });
    log = new RaftLedgerLog({
      ledger,
      raft: {
        groupId: o.spec.path,
        id: self.id,
        peers,
        dataDir: o.dataDir,
        transport,
        log: o.log,
        ...(o.random ? { random: o.random } : {}),
        ...(o.join ? { join: true } : {}),
        isPeerId: (id) => isReplicaIdOf(o.spec.path, id),
      },
    });
    return new RaftCellLog(log, o.scheduler ?? realScheduler);
  };
  return {
    factory,
    register(server: Server): void {
      if (!log) throw new Error('raft cell: register() before the cell was built');
      registerRaftService(server, log.replica, { log: o.log, clusterId });
    },
  };
}
