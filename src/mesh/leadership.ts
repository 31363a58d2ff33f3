// Who decides for a cell. A cell's single decisions (accept, dispatch, record
// a result) are made by one replica at a time: the Raft leader of the cell's
// group, or the only replica of an unreplicated cell. The cell asks this port
// whether it leads, where the leader is (to forward and to redirect), and is
// told when it starts leading (its ledger then holds everything committed
// before its term, so it can resume dispatch from it) and when it stops.
//
// It also moves leadership and changes the group's members (AdminService,
// and a leader's hand-over on SIGTERM); only the leader does either.
//
// A ReplicatedLog is the ledger's log and its leadership in one object: the
// Raft one (raft-cell-log.ts over raft-ledger-log.ts) or the local one below,
// which leads from the start and forever and refuses every group change.
import { status } from '@grpc/grpc-js';
import { MeshError } from '../util/errors.js';
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
  /** The last index in this replica's log (commit lags it while entries wait for a quorum). */
  readonly lastIndex: number;
  readonly logEntries: number;
}

/** A voter or learner of the cell's Raft group, as this replica knows it. */
export interface GroupMember {
  readonly id: string;
  readonly address: string;
  readonly voter: boolean;
  /** Leader only (0 elsewhere): the highest log index known to be on this member. */
  readonly match: number;
}

/** A finished leadership transfer. */
export interface Handover {
  readonly from: string;
  readonly to: string;
  readonly toAddress: string;
  /** The new leader's term. */
  readonly term: number;
  readonly tookMs: number;
}

/**
 * Moving leadership and changing members. Leader only: elsewhere they throw
 * FAILED_PRECONDITION with the leader hint. Failures are MeshErrors.
 */
export interface GroupControl {
  /** Voters then learners; empty for a cell with no Raft group. */
  members(): readonly GroupMember[];
  /**
   * Hand leadership to voter `to`, or with no `to` to the most caught-up other
   * voter, within `timeoutMs`. The cell's proposals made meanwhile wait for
   * the outcome: kept if the transfer fails, refused (not leader) if it
   * succeeds, so none is forwarded into the new leader's term behind its back.
   */
  transferLeader(to: string | undefined, timeoutMs: number): Promise<Handover>;
  /** Add `id` at `address` as a learner, wait up to `catchUpMs` until it holds the log, then make it a voter. */
  addReplica(id: string, address: string, catchUpMs: number): Promise<readonly GroupMember[]>;
  /** Remove a member other than the leader itself. */
  removeReplica(id: string): Promise<readonly GroupMember[]>;
}

export interface Leadership extends GroupControl {
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

const notReplicated = (): MeshError =>
  new MeshError(status.FAILED_PRECONDITION, 'not replicated: this replica runs its cell alone, with no Raft group');

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

  members(): readonly GroupMember[] {
    return [];
  }

  transferLeader(): Promise<Handover> {
    return Promise.reject(notReplicated());
  }

  addReplica(): Promise<readonly GroupMember[]> {
    return Promise.reject(notReplicated());
  }

  removeReplica(): Promise<readonly GroupMember[]> {
    return Promise.reject(notReplicated());
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
