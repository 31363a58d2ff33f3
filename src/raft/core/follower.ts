// Follower and (pre-)candidate handling: accepting appends, heartbeats and
// snapshots from the leader, counting votes, and the leadership-transfer
// trigger. Sees the Raft state only through StepContext (step-context.ts).

import type { StepContext } from './step-context.js';
import { NONE, type Message } from './types.js';

function handleAppend(r: StepContext, m: Message): void {
  if (m.index < r.log.committed) {
    // Everything up to our commit index is already settled: tell the leader where to resume.
    r.send({ type: 'appResp', to: m.from, index: r.log.committed, commit: r.log.committed });
    return;
  }
  const lastNew = r.log.maybeAppend(m.index, m.logTerm, m.commit, m.entries);
  if (lastNew !== undefined) {
    r.send({ type: 'appResp', to: m.from, index: lastNew, commit: r.log.committed });
    return;
  }
  // Conflict hint (fast catch-up): the largest index at which our log could
  // agree with the leader's, and our term there, so the leader can skip a
  // whole term per round trip instead of one entry.
  const hint = r.log.findConflictByTerm(Math.min(m.index, r.log.lastIndex()), m.logTerm);
  r.send({
    type: 'appResp',
    to: m.from,
    index: m.index,
    reject: true,
    rejectHint: hint,
    hintTerm: r.log.term(hint) ?? 0,
    commit: r.log.committed,
  });
}

function handleHeartbeat(r: StepContext, m: Message): void {
  // The leader sends min(match, commit), so this never exceeds what we hold.
  r.log.commitTo(m.commit);
  r.send({
    type: 'heartbeatResp',
    to: m.from,
    commit: r.log.committed,
    ...(m.context !== undefined ? { context: m.context } : {}),
  });
}

function handleSnapshot(r: StepContext, m: Message): void {
  if (m.snapshot && r.restore(m.snapshot)) {
    r.send({ type: 'appResp', to: m.from, index: r.log.lastIndex(), commit: r.log.committed });
  } else {
    r.send({ type: 'appResp', to: m.from, index: r.log.committed, commit: r.log.committed });
  }
}

/** Messages from the leader of our term (the term rules already ran in Raft.step). */
function fromLeader(r: StepContext, m: Message): boolean {
  switch (m.type) {
    case 'app':
      handleAppend(r, m);
      return true;
    case 'heartbeat':
      handleHeartbeat(r, m);
      return true;
    case 'snap':
      handleSnapshot(r, m);
      return true;
    default:
      return false;
  }
}

export function stepFollower(r: StepContext, m: Message): void {
  if (m.type === 'app' || m.type === 'heartbeat' || m.type === 'snap') {
    r.electionElapsed = 0;
    r.lead = m.from;
    fromLeader(r, m);
    return;
  }
  switch (m.type) {
    case 'timeoutNow':
      // Our leader hands over: campaign at once, past pre-vote and leases.
      r.campaign('transfer');
      break;
    case 'readIndexResp':
      r.readStates.push({ index: m.index, context: m.context ?? '' });
      break;
    default:
      // prop/readIndex from another node: we only forward our own requests
      // (RawNode.propose/readIndex), never re-forward, so they cannot loop.
      break;
  }
}

export function stepCandidate(r: StepContext, m: Message): void {
  if (m.type === 'app' || m.type === 'heartbeat' || m.type === 'snap') {
    // A leader of our term exists: we lost this election.
    r.becomeFollower(m.term, m.from);
    fromLeader(r, m);
    return;
  }
  const mine = r.role === 'preCandidate' ? 'preVoteResp' : 'voteResp';
  if (m.type !== mine) return;
  r.trk.recordVote(m.from, !m.reject);
  switch (r.trk.tally()) {
    case 'won':
      if (r.role === 'preCandidate') r.campaign('election');
      else r.becomeLeader();
      break;
    case 'lost':
      r.becomeFollower(r.term, NONE);
      break;
    case 'pending':
      break;
  }
}
