// Elections, the parts that are rules rather than role changes: when a replica
// may not campaign, the vote requests a campaign sends, the leader lease that
// makes a replica ignore a disruptive candidate (check-quorum), and when a vote
// is granted (§5.2, §5.4.1; pre-vote, dissertation §9.6). The role changes
// themselves stay in core.ts, which owns term and vote. Functions over the
// Raft state, as in leader.ts and follower.ts, so core.ts fits in a head.

import type { StepContext } from './step-context.js';
import { EntryType, NONE, type Message, type NodeId } from './types.js';

/** Context of a vote request sent because of timeoutNow: it overrides the leader lease. */
const TRANSFER_CONTEXT = 'raft:transfer';

/** What granting a vote sees of the Raft state: StepContext and the vote cast in this term. */
export interface Voter extends StepContext {
  vote: NodeId;
}

/** Whether a conf change is committed but not yet applied: campaigning then could use a stale config. */
export function hasUnappliedConfChange(r: StepContext): boolean {
  if (r.log.committed <= r.log.applied) return false;
  const lo = Math.max(r.log.applied + 1, r.log.firstIndex());
  return r.log.slice(lo, r.log.committed + 1).some((e) => e.type === EntryType.ConfChange);
}

/** Ask every other voter for its vote (or pre-vote) at `voteTerm`. */
export function requestVotes(r: StepContext, kind: 'pre' | 'election' | 'transfer', voteTerm: number): void {
  for (const id of r.trk.voters) {
    if (id === r.id) continue;
    r.send({
      type: kind === 'pre' ? 'preVote' : 'vote',
      to: id,
      term: voteTerm,
      index: r.log.lastIndex(),
      logTerm: r.log.lastTerm(),
      ...(kind === 'transfer' ? { context: TRANSFER_CONTEXT } : {}),
    });
  }
}

/**
 * Leader lease (check-quorum): while we heard from a leader within the
 * election timeout, a higher-term candidate is a disruptive rejoiner and its
 * (pre-)vote request is ignored, unless the leader itself asked for the
 * election (transfer).
 */
export function leaseIgnores(r: StepContext, m: Message): boolean {
  const inLease = r.cfg.checkQuorum && r.lead !== NONE && r.electionElapsed < r.cfg.electionTick;
  return inLease && m.context !== TRANSFER_CONTEXT;
}

/** Answer a vote or pre-vote request whose term is not behind ours. */
export function handleVoteRequest(r: Voter, m: Message): void {
  const pre = m.type === 'preVote';
  const canVote =
    r.vote === m.from ||
    (r.vote === NONE && r.lead === NONE) ||
    // A pre-vote for a future term promises nothing, so we may grant it while following.
    (pre && m.term > r.term);
  const resp = pre ? 'preVoteResp' : 'voteResp';
  if (canVote && (r.log.isUpToDate(m.index, m.logTerm) || r.knobs.unsafeVoteIgnoringLog === true)) {
    r.send({ type: resp, to: m.from, term: m.term });
    if (!pre) {
      r.electionElapsed = 0;
      r.vote = m.from;
    }
  } else {
    r.send({ type: resp, to: m.from, reject: true });
  }
}
