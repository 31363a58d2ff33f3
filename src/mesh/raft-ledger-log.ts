// RaftLedgerLog: the home task ledger replicated by the cell's Raft group.
//
// What is replicated: every LedgerCommand batch a caller proposes, as ONE Raft
// entry (a LedgerBatch, ledger-codec.ts), and the whole Ledger as the Raft
// snapshot (Ledger.snapshot(), a LedgerSnapshot). Each replica applies every
// committed entry to its own Ledger, in log order, so followers' ledgers are
// readable (stale by at most the entries not yet applied there; readIndex()
// makes a read linearizable). The cell's operator config (drain, routing
// policy, cordoned agents: ledger.ts `config`) is in the same entries and snapshot.
//
// Ordering contract:
// - commands apply in log order, a batch's commands in array order, never
//   interleaved with another batch; every replica applies the same sequence;
// - propose() resolves once its entry is committed (on a majority, durably)
//   AND applied on this replica, with the ApplyResults this replica's ledger
//   gave: the same results every replica gets for that entry;
// - only the leader proposes: on a follower, or with no leader known,
//   propose() rejects at once with NotLeaderError (leader id + address hint,
//   '' when unknown) and nothing is logged; the cell forwards to the leader.
//   (A leader deposed between the check and the core's answer may still have
//   its entry forwarded and committed; the answer then comes as usual.)
// - TimeoutError means "outcome unknown": the entry may still commit; the
//   ledger's idempotency and attempt fences make a retry safe.
// - onApplied listeners run synchronously inside apply, after the ledger
//   changed, on every replica; `restored` says the whole ledger was replaced
//   by a snapshot (a start, or a lagging replica catching up) and no per-task
//   listener ran for it.
// - onLeading fires on a replica that became leader once its ledger holds
//   every entry committed before its term (a ReadIndex barrier), i.e. when it
//   may resume dispatch from the ledger's records.
//
// The cell reaches it through raft-cell-log.ts (the ReplicatedLog port), built
// by raft-cell.ts for every replica with a data directory.
import {
  NotLeaderError,
  RaftReplica,
  ShuttingDownError,
  silentLogger,
  TimeoutError,
  type NodeId,
  type RaftLogger,
  type ReplicaOptions,
  type ReplicaStatus,
  type RequestOptions,
  type StateMachine,
} from '../raft/index.js';
import { decodeCommands, encodeCommands } from './ledger-codec.js';
import type { ApplyResult, Ledger, LedgerCommand, LedgerLog } from './ledger.js';

export interface RaftLedgerLogOptions {
  /** This replica's copy of the ledger; must be empty: its state comes from the snapshot and the log. */
  readonly ledger: Ledger;
  /** The Raft replica to run (this log is its state machine). */
  readonly raft: Omit<ReplicaOptions, 'stateMachine'>;
}

export type LedgerApplied =
  | {
      readonly kind: 'commands';
      /** The Raft index of the entry. */
      readonly index: number;
      readonly commands: readonly LedgerCommand[];
      readonly results: readonly ApplyResult[][];
    }
  | { readonly kind: 'restored' };

export interface LeaderChange {
  /** '' while no leader is known (an election). */
  readonly leader: NodeId;
  readonly leaderAddress: string;
  readonly term: number;
  /** This replica is the new leader (not yet caught up: see onLeading). */
  readonly self: boolean;
}

export interface RaftLedgerStatus extends ReplicaStatus {
  /** Entries held in the log (lastIndex - firstIndex + 1): bounded by snapshots and compaction. */
  readonly logEntries: number;
  /** Records the ledger retains, and how many are not terminal. */
  readonly tasks: number;
  readonly liveTasks: number;
}

export class RaftLedgerLog implements LedgerLog {
  readonly ledger: Ledger;
  /** The runtime itself, for registerRaftService, membership changes and leadership transfer. */
  readonly replica: RaftReplica;
  private readonly appliedListeners = new Set<(ev: LedgerApplied) => void>();
  private readonly leaderListeners = new Set<(ev: LeaderChange) => void>();
  private readonly leadingListeners = new Set<(term: number) => void>();
  private readonly log: RaftLogger;
  private closed = false;

  constructor(opts: RaftLedgerLogOptions) {
    if (opts.ledger.size > 0) throw new Error('raft ledger log: the ledger must start empty');
    this.ledger = opts.ledger;
    this.log = opts.raft.log ?? silentLogger;
    // The replica restores the latest snapshot inside its constructor: the
    // ledger holds that state when this constructor returns; later committed
    // entries are applied asynchronously (onApplied).
    this.replica = new RaftReplica({ ...opts.raft, stateMachine: this.stateMachine() });
    this.replica.onLeaderChange((leader, term) => this.leaderChanged(leader, term));
  }

  /** Replicate one batch; resolves with one ApplyResult[] per command once applied here. Leader only. */
  async propose(cmds: readonly LedgerCommand[], opts: RequestOptions = {}): Promise<ApplyResult[][]> {
    if (this.closed) throw new ShuttingDownError();
    if (cmds.length === 0) return [];
    if (!this.replica.isLeader()) {
      const st = this.replica.status();
      throw new NotLeaderError(st.leader, st.leaderAddress);
    }
    return (await this.replica.propose(encodeCommands(cmds), opts)) as ApplyResult[][];
  }

  isLeader(): boolean {
    return this.replica.isLeader();
  }

  /** The leader as this replica knows it, or undefined during an election. */
  leader(): { id: NodeId; address: string } | undefined {
    const st = this.replica.status();
    return st.leader ? { id: st.leader, address: st.leaderAddress } : undefined;
  }

  /** ReadIndex barrier: resolves once this replica's ledger holds everything committed before the call. */
  readIndex(opts?: RequestOptions): Promise<void> {
    return this.replica.read(opts);
  }

  /** A linearizable read of the ledger on any replica (one heartbeat round through the leader). */
  async read<T>(fn: (ledger: Ledger) => T, opts?: RequestOptions): Promise<T> {
    await this.replica.read(opts);
    return fn(this.ledger);
  }

  /** Every applied entry (and snapshot restore) on this replica; returns an unsubscribe function. */
  onApplied(fn: (ev: LedgerApplied) => void): () => void {
    this.appliedListeners.add(fn);
    return () => this.appliedListeners.delete(fn);
  }

  /** Every change of leader this replica sees, with the new term. */
  onLeaderChange(fn: (ev: LeaderChange) => void): () => void {
    this.leaderListeners.add(fn);
    return () => this.leaderListeners.delete(fn);
  }

  /** This replica leads `term` and its ledger holds everything committed before it: resume dispatch. */
  onLeading(fn: (term: number) => void): () => void {
    this.leadingListeners.add(fn);
    return () => this.leadingListeners.delete(fn);
  }

  status(): RaftLedgerStatus {
    const st = this.replica.status();
    return {
      ...st,
      logEntries: Math.max(0, st.lastIndex - st.firstIndex + 1),
      tasks: this.ledger.size,
      liveTasks: this.ledger.liveCount,
    };
  }

  /** Stop the replica: pending proposals and reads fail with ShuttingDownError; the data dir stays. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.appliedListeners.clear();
    this.leaderListeners.clear();
    this.leadingListeners.clear();
    await this.replica.stop();
  }

  private stateMachine(): StateMachine {
    return {
      // A batch that does not decode throws here, the same on every replica:
      // the runtime skips it everywhere and fails the proposer with ApplyError.
      apply: (data, index) => {
        const commands = decodeCommands(data);
        const results = commands.map((c) => this.ledger.apply(c));
        this.emitApplied({ kind: 'commands', index, commands, results });
        return results;
      },
      snapshot: () => this.ledger.snapshot(),
      restore: (data) => {
        this.ledger.restore(data);
        this.emitApplied({ kind: 'restored' });
      },
    };
  }

  private emitApplied(ev: LedgerApplied): void {
    // A listener's bug must not look like a failed apply: the ledger has changed already.
    this.notify(this.appliedListeners, ev, 'onApplied');
  }

  private notify<E>(listeners: ReadonlySet<(ev: E) => void>, ev: E, what: string): void {
    for (const fn of listeners) {
      try {
        fn(ev);
      } catch (err) {
        this.log.error({ err: String(err) }, `ledger ${what} listener failed`);
      }
    }
  }

  private leaderChanged(leader: NodeId, term: number): void {
    if (this.closed) return;
    const ev: LeaderChange = {
      leader,
      leaderAddress: this.replica.addressOf(leader),
      term,
      self: leader === this.replica.id,
    };
    this.notify(this.leaderListeners, ev, 'onLeaderChange');
    if (ev.self) void this.confirmLeading(ev.term);
  }

  /** Wait for the ReadIndex barrier of a new term; retry while this replica still leads that term. */
  private async confirmLeading(term: number): Promise<void> {
    const stillLeading = () => !this.closed && this.replica.isLeader() && this.replica.status().term === term;
    while (stillLeading()) {
      try {
        await this.replica.read();
      } catch (err) {
        if (err instanceof TimeoutError) continue; // a slow quorum: ask again while we lead this term
        return; // shutting down
      }
      if (stillLeading()) this.notify(this.leadingListeners, term, 'onLeading');
      return;
    }
  }
}
