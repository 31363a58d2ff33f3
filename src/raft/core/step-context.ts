// What the role handlers (leader.ts, follower.ts) see of the Raft state
// machine. Raft (core.ts) implements it; the handlers import only this, so the
// core's files import each other in one direction (core → handlers → here).
import type { ProgressTracker } from '../tracker/tracker.js';
import type { RaftLog } from './log.js';
import type { ReadOnlyQueue } from './read-only.js';
import type { EntryType, Message, NodeId, ProposeResult, RaftConfig, ReadState, Role, Snapshot } from './types.js';

/** Deliberate bugs, for proving that the tests and checkers can fail. Never set in production. */
export interface TestingKnobs {
  /** Commit entries of earlier terms by counting replicas (the Raft paper's figure 8 bug). */
  readonly unsafeCommitPriorTermByCount?: boolean;
  /** Grant votes without the up-to-date log check of §5.4.1 (breaks leader completeness). */
  readonly unsafeVoteIgnoringLog?: boolean;
  /** With earlyMessages: hand out every message (votes, acks, new terms) as early (may precede the write). */
  readonly unsafeEarlyVotesAndAcks?: boolean;
}

export type MessageInit = Partial<Message> & Pick<Message, 'type' | 'to'>;

export interface StepContext {
  readonly id: NodeId;
  readonly cfg: RaftConfig;
  readonly knobs: TestingKnobs;
  readonly log: RaftLog;
  readonly trk: ProgressTracker;
  readonly readOnly: ReadOnlyQueue;
  term: number;
  lead: NodeId;
  role: Role;
  electionElapsed: number;
  heartbeatElapsed: number;
  leadTransferee: NodeId;
  leavingAt: number;
  pendingReads: Array<{ context: string; from: NodeId }>;
  pendingBcast: boolean;
  readStates: ReadState[];
  send(init: MessageInit): void;
  becomeFollower(term: number, lead: NodeId): void;
  becomeLeader(): void;
  campaign(kind: 'pre' | 'election' | 'transfer'): void;
  acceptProposal(type: EntryType, data: Uint8Array): ProposeResult;
  restore(s: Snapshot): boolean;
}
