// The leader's (and candidate's) view of the configuration: who votes, who only
// learns, each peer's Progress, and the votes of the current election.

import type { ConfState, NodeId } from '../core/types.js';
import { committedIndex, quorumActive, voteResult, type VoteResult } from '../quorum/majority.js';
import { Progress } from './progress.js';

export class ProgressTracker {
  /** Invariant: voters and learners are disjoint; progress has exactly their union as keys. */
  voters: NodeId[] = [];
  learners: NodeId[] = [];
  readonly progress = new Map<NodeId, Progress>();
  /** Current election only; cleared on every role change. */
  readonly votes = new Map<NodeId, boolean>();

  constructor(readonly maxInflight: number) {}

  /** Adopt `conf`; peers new to it start probing at `nextIndex`, known peers keep their progress. */
  applyConf(conf: ConfState, nextIndex: number): void {
    const learners = new Set(conf.learners);
    for (const id of conf.voters) if (learners.has(id)) throw new Error(`raft: ${id} is both voter and learner`);
    this.voters = [...conf.voters].sort();
    this.learners = [...conf.learners].sort();
    const keep = new Set([...this.voters, ...this.learners]);
    for (const id of [...this.progress.keys()]) if (!keep.has(id)) this.progress.delete(id);
    for (const id of keep) {
      const old = this.progress.get(id);
      const isLearner = learners.has(id);
      if (old === undefined) {
        this.progress.set(id, new Progress(nextIndex, this.maxInflight, isLearner));
      } else {
        // Promotion keeps replication state: only the learner flag changes.
        old.isLearner = isLearner;
      }
    }
  }

  /** A new leader forgets everything it knew: every peer starts probing at `nextIndex`. */
  resetProgress(nextIndex: number): void {
    for (const [id, old] of this.progress) {
      const p = new Progress(nextIndex, this.maxInflight, old.isLearner);
      // Grace for the first check-quorum round: peers have not had time to answer yet.
      p.recentActive = true;
      this.progress.set(id, p);
    }
  }

  confState(): ConfState {
    return { voters: [...this.voters], learners: [...this.learners] };
  }

  isVoter(id: NodeId): boolean {
    return this.voters.includes(id);
  }

  isLearner(id: NodeId): boolean {
    return this.learners.includes(id);
  }

  /** Index replicated on a majority of voters. */
  committed(): number {
    return committedIndex(this.voters, (id) => this.progress.get(id)?.match ?? 0);
  }

  resetVotes(): void {
    this.votes.clear();
  }

  /** Record the first answer from `id`; later duplicates cannot flip it. */
  recordVote(id: NodeId, granted: boolean): void {
    if (!this.votes.has(id)) this.votes.set(id, granted);
  }

  tally(): VoteResult {
    return voteResult(this.voters, this.votes);
  }

  /** Whether a majority of voters (counting `self` as always active) was heard from recently. */
  quorumActive(self: NodeId): boolean {
    return quorumActive(this.voters, (id) => id === self || this.progress.get(id)?.recentActive === true);
  }

  resetRecentActive(self: NodeId): void {
    for (const [id, p] of this.progress) p.recentActive = id === self;
  }
}
