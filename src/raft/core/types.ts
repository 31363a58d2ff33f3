// The vocabulary of the pure Raft core. Everything here is plain data: the core
// never does IO, never reads a clock and never draws randomness except from the
// source injected in its Config, so a seeded simulator can replay a run exactly.
//
// This file is the contract between the core (src/raft/core) and everything
// that drives it (src/raft/runtime, test/raft/sim). Extend it additively.

export type NodeId = string;

/** 0 means "none" for indexes and terms; '' means "none" for node ids. */
export const NONE: NodeId = '';

export enum EntryType {
  /** Application command (or the empty entry a new leader appends: data.length === 0). */
  Normal = 0,
  /** A single-server membership change; data is encodeConfChange(cc). */
  ConfChange = 1,
}

export interface Entry {
  readonly term: number;
  readonly index: number;
  readonly type: EntryType;
  readonly data: Uint8Array;
}

/** What must be durable before any message that depends on it is sent. */
export interface HardState {
  readonly term: number;
  readonly vote: NodeId;
  readonly commit: number;
}

export interface ConfState {
  readonly voters: readonly NodeId[];
  /** Learners receive the log but do not vote or count toward quorum. */
  readonly learners: readonly NodeId[];
}

export type ConfChangeType = 'addVoter' | 'addLearner' | 'removeNode';

/** Single-server membership change (Raft dissertation §4.1): at most one pending at a time. */
export interface ConfChange {
  readonly type: ConfChangeType;
  readonly node: NodeId;
  /** Opaque to the core; the runtime stores the peer's address here. */
  readonly context: string;
}

export interface SnapshotMeta {
  readonly index: number;
  readonly term: number;
  readonly conf: ConfState;
}

export interface Snapshot {
  readonly meta: SnapshotMeta;
  readonly data: Uint8Array;
}

export type MessageType =
  | 'prop' // follower -> leader: forwarded proposals (entries carry the data)
  | 'app' // append entries (also carries commit)
  | 'appResp'
  | 'preVote'
  | 'preVoteResp'
  | 'vote'
  | 'voteResp'
  | 'heartbeat'
  | 'heartbeatResp'
  | 'snap' // install snapshot
  | 'timeoutNow' // leadership transfer: the target campaigns at once
  | 'readIndex' // follower -> leader: ReadIndex request (context identifies it)
  | 'readIndexResp';

export interface Message {
  readonly type: MessageType;
  readonly from: NodeId;
  readonly to: NodeId;
  readonly term: number;
  /** app: term of the entry at `index` (the prev entry); vote: candidate's last log term. */
  readonly logTerm: number;
  /** app: index of the entry preceding `entries`; appResp: last index matched or rejected; vote: candidate's last index. */
  readonly index: number;
  readonly entries: readonly Entry[];
  /** app/heartbeat: the leader's commit index (heartbeat: capped at the follower's match); appResp/heartbeatResp: the follower's. */
  readonly commit: number;
  readonly reject: boolean;
  /** appResp with reject: follower's hint for fast catch-up (its last index, or conflict index). */
  readonly rejectHint: number;
  /** appResp with reject: term of the follower's entry at rejectHint (etcd-style conflict hint). */
  readonly hintTerm?: number;
  readonly snapshot?: Snapshot;
  /** readIndex / heartbeat: opaque request context; vote: marks a leadership-transfer campaign (overrides the lease). */
  readonly context?: string;
}

export type Role = 'follower' | 'preCandidate' | 'candidate' | 'leader';

export interface SoftState {
  readonly leader: NodeId;
  readonly role: Role;
}

/** A linearizable read may be served once the state machine has applied `index`. */
export interface ReadState {
  readonly index: number;
  readonly context: string;
}

/**
 * The output of one step of the core. The driver MUST handle it in this order:
 *  1. persist `snapshot` (if any), then `entries` (replacing any conflicting
 *     suffix) and `hardState` (if any); fsync when `mustSync`;
 *  2. send `messages` (only after step 1 is durable: votes and acks promise
 *     what was persisted);
 *  3. apply `snapshot` then `committedEntries` to the state machine, in order,
 *     and call applyConfChange() for each committed ConfChange entry;
 *  4. call advance(ready).
 * Readies are handled strictly one after another: ready() refuses to hand out
 * the next one before advance() of this one, and advance() means "step 1 is
 * durable".
 *
 * Early sends (RaftConfig.earlyMessages, Raft dissertation §10.2.1): a leader
 * may replicate its entries while it is still writing them. When the driver
 * opts in, the leader's `app` and `heartbeat` messages come out in
 * `earlyMessages` instead of `messages`, and the driver MAY send them before
 * (or while) it does step 1. This is safe because:
 *  - the leader counts itself toward the commit quorum only for entries that
 *    are durable on its own disk: its own match index advances in advance()
 *    (the driver's "step 1 is durable"), never when it appends. A commit
 *    therefore always rests on a majority of durable copies, leader or not;
 *  - `earlyMessages` is only ever non-empty when this Ready changes neither
 *    the term nor the vote, so the term such a message carries is already
 *    durable (a leader that crashes before its write restarts in that same
 *    term as a follower and cannot lead it again, so no other entry can ever
 *    take an (index, term) a follower may already hold);
 *  - everything whose meaning is "I durably hold this" still waits in
 *    `messages`: votes, vote and pre-vote responses, append and heartbeat
 *    responses, and everything of a Ready that changes the term or vote;
 *  - nothing is applied before step 1: a committed entry is applied (step 3)
 *    only after this Ready's entries are durable locally.
 * A driver that does not opt in gets every message in `messages` and may keep
 * the simple rule above.
 */
export interface Ready {
  readonly softState?: SoftState;
  readonly hardState?: HardState;
  readonly entries: readonly Entry[];
  readonly snapshot?: Snapshot;
  readonly committedEntries: readonly Entry[];
  /** Send after step 1 is durable. */
  readonly messages: readonly Message[];
  /**
   * Only with RaftConfig.earlyMessages (empty or absent otherwise): the
   * leader's appends and heartbeats, which may be sent before step 1 is
   * durable (see above). Not repeated in `messages`.
   */
  readonly earlyMessages?: readonly Message[];
  readonly readStates: readonly ReadState[];
  readonly mustSync: boolean;
}

/**
 * The core's synchronous, read-only view of stable storage (etcd's Storage).
 * The driver appends to it after persisting a Ready; the core only reads.
 */
export interface LogReader {
  initialState(): { hardState: HardState; conf: ConfState };
  /** Entries in [lo, hi), at most maxBytes of data (at least one entry if any). */
  entries(lo: number, hi: number, maxBytes?: number): Entry[];
  /** Term of entry i; throws CompactedError below firstIndex-1, UnavailableError above lastIndex. */
  term(i: number): number;
  firstIndex(): number;
  lastIndex(): number;
  snapshot(): Snapshot;
}

export class CompactedError extends Error {
  constructor(index: number) {
    super(`raft: log index ${index} is compacted`);
    this.name = 'CompactedError';
  }
}

export class UnavailableError extends Error {
  constructor(index: number) {
    super(`raft: log index ${index} is unavailable`);
    this.name = 'UnavailableError';
  }
}

export interface RaftConfig {
  readonly id: NodeId;
  readonly storage: LogReader;
  /** Ticks without leader contact before a follower campaigns: randomized in [electionTick, 2*electionTick). */
  readonly electionTick: number;
  readonly heartbeatTick: number;
  readonly preVote: boolean;
  readonly checkQuorum: boolean;
  /** Max append messages in flight per follower before waiting for acks. */
  readonly maxInflight: number;
  /** Soft cap on bytes of entries per append message. */
  readonly maxSizePerMsg: number;
  /** Max uncommitted entries a leader accepts before proposals are dropped (back-pressure). */
  readonly maxUncommitted: number;
  /** Entry index already applied to the state machine (on restart). */
  readonly applied: number;
  /** Injected source of randomness in [0,1): the only one the core may use. */
  readonly random: () => number;
  /**
   * The driver sends Ready.earlyMessages before persisting (a leader replicates
   * in parallel with its own fsync). Off by default: every message is then in
   * Ready.messages, to be sent after the write.
   */
  readonly earlyMessages?: boolean;
}

/** Why a proposal was refused, as a value (not an exception): the runtime maps it to a status. */
export type ProposeResult =
  | { readonly ok: true; readonly index: number; readonly term: number }
  /** A follower forwarded the proposal to its leader in a 'prop' message; the driver learns the outcome when the entry applies. */
  | { readonly ok: true; readonly forwarded: true; readonly leader: NodeId }
  | { readonly ok: false; readonly reason: 'notLeader'; readonly leader: NodeId }
  | { readonly ok: false; readonly reason: 'pendingConfChange' | 'tooManyUncommitted' | 'transferring' };
