// Who decides for a cell. A cell's single decisions (accept, dispatch, record
// a result) are made by one replica at a time: the Raft leader of the cell's
// group, or the only replica of an unreplicated cell. The cell asks this port
// whether it leads, where the leader is (to forward and to redirect), and is
// told when it starts leading (its ledger then holds everything committed
// before its term, so it can resume dispatch from it) and when it stops.
//
// A ReplicatedLog is the ledger's log and its leadership in one object: the
// Raft one (raft-ledger-log.ts) or the local one below, which leads from the
// start and forever.
import { LocalLedgerLog, type Ledger, type LedgerLog } from './ledger.js';

export interface LeaderChange {
  /** '' while no leader is known (an election). */
  readonly leader: string;
  readonly leaderAddress: string;
  readonly term: number;
  /** This replica is the new leader (it may resume dispatch only once onLeading fires). */
  readonly self: boolean;
}

/** What a replica of a replicated cell reports about its log (AdminService). */
export interface ReplicationStatus {
  readonly role: string;
  readonly term: number;
  readonly leader: string;
  readonly leaderAddress: string;
  readonly commit: number;
  readonly applied: number;
  readonly logEntries: number;
}

export interface Leadership {
  isLeader(): boolean;
  /** The leader as this replica knows it; undefined during an election. */
  leader(): { id: string; address: string } | undefined;
  /** A linearizable read barrier: resolves once this replica's ledger holds everything committed before the call. */
  readIndex(): Promise<void>;
  /** This replica leads `term` and its ledger is caught up: resume dispatch. Returns an unsubscribe function. */
  onLeading(fn: (term: number) => void): () => void;
  onLeaderChange(fn: (ev: LeaderChange) => void): () => void;
  /** Undefined for an unreplicated cell. */
  replication(): ReplicationStatus | undefined;
  close(): Promise<void>;
}

export type ReplicatedLog = LedgerLog & Leadership;

/** Builds a cell's log over its (empty) ledger: local by default, Raft for replicated or durable cells. */
export type LogFactory = (ledger: Ledger) => ReplicatedLog;

/** The one replica of a cell with no Raft group: it leads from start() on, and nothing survives a restart. */
export class SoleLeader extends LocalLedgerLog implements Leadership {
  constructor(
    ledger: Ledger,
    private readonly id: string,
  ) {
    super(ledger);
  }

  leader(): { id: string; address: string } {
    return { id: this.id, address: '' };
  }

  readIndex(): Promise<void> {
    return Promise.resolve();
  }

  onLeading(): () => void {
    // The cell starts leading at start(); nothing changes after.
    return () => undefined;
  }

  onLeaderChange(): () => void {
    return () => undefined;
  }

  replication(): undefined {
    return undefined;
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
