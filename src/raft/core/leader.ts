// Leader-side handling: replication (batched, pipelined, flow-controlled per
// follower), commitment, heartbeats and check-quorum, ReadIndex and leadership
// transfer. Functions over the Raft instance rather than methods so that each
// file stays readable; they see it only through StepContext (step-context.ts).

import type { StepContext } from './step-context.js';
import { quorumActive } from '../quorum/majority.js';
import type { ReadRequest } from './read-only.js';
import { CompactedError, EntryType, NONE, type Entry, type Message, type NodeId } from './types.js';

/**
 * Send the next append (or a snapshot) to `to` unless its progress is paused.
 * With sendIfEmpty false, nothing is sent when there are no new entries.
 * Returns whether a message was sent.
 */
function sendAppend(r: StepContext, to: NodeId, sendIfEmpty = true): boolean {
  const p = r.trk.progress.get(to);
  if (!p || to === r.id || p.isPaused()) return false;
  const prevIndex = p.next - 1;
  const prevTerm = r.log.term(prevIndex);
  let ents: Entry[] | undefined;
  if (prevTerm !== undefined) {
    try {
      ents = r.log.slice(p.next, r.log.lastIndex() + 1, r.cfg.maxSizePerMsg);
    } catch (err) {
      if (!(err instanceof CompactedError)) throw err;
    }
  }
  if (prevTerm === undefined || ents === undefined) {
    // The follower needs entries we have compacted: ship the snapshot instead.
    const snapshot = r.log.storage.snapshot();
    if (snapshot.meta.index === 0) throw new Error(`raft: need a snapshot for ${to} but storage has none`);
    r.send({ type: 'snap', to, snapshot });
    p.becomeSnapshot(snapshot.meta.index);
    return true;
  }
  if (ents.length === 0 && !sendIfEmpty) return false;
  r.send({ type: 'app', to, index: prevIndex, logTerm: prevTerm, entries: ents, commit: r.log.committed });
  p.sentEntries(prevIndex + ents.length, ents.length);
  if (r.log.committed > p.sentCommit) p.sentCommit = r.log.committed;
  return true;
}

export function bcastAppend(r: StepContext): void {
  for (const id of r.trk.progress.keys()) if (id !== r.id) sendAppend(r, id);
}

/**
 * Replicate new entries or a new commit index, once for everything that
 * happened since the last Ready: many proposals (or acks that moved the
 * commit index) in one turn become one append per follower, not one each.
 * A follower gets an empty append only if it has not been sent this commit
 * index yet. RawNode flushes this when it looks for a Ready.
 */
export function flushAppends(r: StepContext, force = false): void {
  if (!r.pendingBcast) return;
  r.pendingBcast = false;
  if (r.role !== 'leader') return;
  // An empty append that only carries the commit index waits until we have
  // applied up to it: the callers answered by that apply usually propose again,
  // and the append carrying their entries carries the commit index too. When
  // nothing follows, it goes out right after the apply (the driver asks for the
  // next Ready after advance()), not on a timer.
  // (`force`: a conf change is about to drop peers, which must still hear it.)
  const applyFirst = !force && r.log.applied < r.log.committed;
  for (const [id, p] of r.trk.progress) {
    if (id === r.id) continue;
    const owed = p.sentCommit < r.log.committed;
    if (sendAppend(r, id, owed && !applyFirst)) continue;
    if (owed && applyFirst) r.pendingBcast = true;
  }
}

function bcastHeartbeat(r: StepContext, context = r.readOnly.last()): void {
  for (const [id, p] of r.trk.progress) {
    if (id === r.id) continue;
    // Never tell a follower to commit beyond what it is known to hold.
    const commit = Math.min(p.match, r.log.committed);
    r.send({ type: 'heartbeat', to: id, commit, ...(context !== undefined ? { context } : {}) });
  }
}

/** Advance the commit index if a quorum holds a newer entry of the current term (Raft §5.4.2). */
export function maybeCommit(r: StepContext): boolean {
  const idx = r.trk.committed();
  if (idx <= r.log.committed) return false;
  // Figure 8: counting replicas is only safe for entries of the leader's own term.
  if (r.log.term(idx) !== r.term && !r.knobs.unsafeCommitPriorTermByCount) return false;
  r.log.commitTo(idx);
  if (r.pendingReads.length > 0 && r.log.term(r.log.committed) === r.term) {
    const waiting = r.pendingReads;
    r.pendingReads = [];
    for (const rq of waiting) handleReadRequest(r, rq.context, rq.from);
  }
  return true;
}

export function tickLeader(r: StepContext): void {
  r.heartbeatElapsed++;
  r.electionElapsed++;
  if (r.electionElapsed >= r.cfg.electionTick) {
    r.electionElapsed = 0;
    if (r.cfg.checkQuorum) {
      // Check-quorum: a leader cut off from a majority steps down so clients look elsewhere.
      if (!r.trk.quorumActive(r.id)) {
        r.becomeFollower(r.term, NONE);
        return;
      }
      r.trk.resetRecentActive(r.id);
    }
    // A transfer that did not finish within an election timeout is abandoned.
    r.leadTransferee = NONE;
  }
  if (r.heartbeatElapsed >= r.cfg.heartbeatTick) {
    r.heartbeatElapsed = 0;
    bcastHeartbeat(r);
  }
}

/** A removed leader steps down once every remaining voter reported a commit index covering its removal. */
export function maybeLeave(r: StepContext): void {
  if (r.role !== 'leader' || r.leavingAt === 0) return;
  for (const id of r.trk.voters) {
    if ((r.trk.progress.get(id)?.commit ?? 0) < r.leavingAt) return;
  }
  r.becomeFollower(r.term, NONE);
}

function sendTimeoutNow(r: StepContext, to: NodeId): void {
  r.send({ type: 'timeoutNow', to });
}

export function transferLeadership(r: StepContext, to: NodeId): void {
  if (r.role !== 'leader' || r.leavingAt > 0 || to === r.id || !r.trk.isVoter(to)) return;
  if (r.leadTransferee === to) return;
  r.leadTransferee = to;
  // The transfer must finish within one election timeout (tickLeader aborts it).
  r.electionElapsed = 0;
  const p = r.trk.progress.get(to)!;
  if (p.match === r.log.lastIndex()) sendTimeoutNow(r, to);
  else sendAppend(r, to);
}

/** A read request (local or forwarded): confirm leadership with a heartbeat round first. */
export function handleReadRequest(r: StepContext, context: string, from: NodeId): void {
  if (r.log.term(r.log.committed) !== r.term) {
    // Until an entry of our term commits we may not know the true commit index (§6.4 step 1).
    r.pendingReads.push({ context, from });
    return;
  }
  if (r.trk.voters.length === 1 && r.trk.voters[0] === r.id) {
    answerRead(r, { context, index: r.log.committed, from, acks: new Set() });
    return;
  }
  if (r.readOnly.add(context, r.log.committed, from, r.id)) bcastHeartbeat(r, context);
}

function answerRead(r: StepContext, rq: ReadRequest): void {
  if (rq.from === r.id) r.readStates.push({ index: rq.index, context: rq.context });
  else r.send({ type: 'readIndexResp', to: rq.from, index: rq.index, context: rq.context });
}

function handleAppResp(r: StepContext, m: Message): void {
  const p = r.trk.progress.get(m.from);
  if (!p) return;
  if (m.reject) {
    // Fast catch-up: jump to where our log can agree with the follower's hint.
    if (p.state === 'snapshot' && m.rejectHint >= p.pendingSnapshot && p.pendingSnapshot > 0) {
      // A stale append was refused by a follower that already holds the
      // snapshot (its hint says so): resume probing after it.
      p.becomeProbe();
      sendAppend(r, m.from);
      return;
    }
    let hint = m.rejectHint;
    if (m.hintTerm !== undefined && m.hintTerm > 0) hint = r.log.findConflictByTerm(m.rejectHint, m.hintTerm);
    if (p.maybeDecrTo(m.index, hint)) {
      if (p.state === 'replicate') p.becomeProbe();
      sendAppend(r, m.from);
    }
    return;
  }
  const wasPaused = p.isPaused();
  if (!p.maybeUpdate(m.index)) return;
  if (p.state === 'probe') {
    p.becomeReplicate();
  } else if (p.state === 'snapshot' && p.match >= p.pendingSnapshot) {
    p.becomeProbe();
    p.becomeReplicate();
  } else if (p.state === 'replicate') {
    p.inflights.freeLE(m.index);
  }
  if (maybeCommit(r))
    r.pendingBcast = true; // the new commit index goes to everyone once, at the next Ready
  else if (wasPaused) sendAppend(r, m.from);
  // Pipelining: keep streaming while the window has room.
  while (sendAppend(r, m.from, false)) {
    /* sent one more batch */
  }
  if (m.from === r.leadTransferee && p.match === r.log.lastIndex()) sendTimeoutNow(r, m.from);
}

function handleHeartbeatResp(r: StepContext, m: Message): void {
  const p = r.trk.progress.get(m.from);
  if (!p) return;
  p.probeSent = false;
  // Acks for a full window may have been lost: free one slot so replication
  // resumes (a gap makes the follower reject, which drops us back to probe).
  if (p.state === 'replicate' && p.inflights.full()) p.inflights.freeFirstOne();
  if (p.match < r.log.lastIndex()) sendAppend(r, m.from);
  const ctx = m.context;
  if (ctx === undefined) return;
  const acks = r.readOnly.acksOf(ctx);
  if (r.readOnly.ack(m.from, ctx) === 0) return;
  if (!quorumActive(r.trk.voters, (id) => acks.has(id))) return;
  for (const rq of r.readOnly.releaseThrough(ctx)) answerRead(r, rq);
}

export function stepLeader(r: StepContext, m: Message): void {
  const p = r.trk.progress.get(m.from);
  if (p) {
    p.recentActive = true;
    if ((m.type === 'appResp' || m.type === 'heartbeatResp') && m.commit > p.commit) p.commit = m.commit;
  }
  switch (m.type) {
    case 'prop': {
      let any = false;
      for (const e of m.entries) {
        // Forwarded proposals are fire-and-forget: refusals are silent drops.
        if (r.acceptProposal(e.type === EntryType.ConfChange ? EntryType.ConfChange : EntryType.Normal, e.data).ok)
          any = true;
      }
      if (any) r.pendingBcast = true;
      break;
    }
    case 'appResp':
      handleAppResp(r, m);
      break;
    case 'heartbeatResp':
      handleHeartbeatResp(r, m);
      break;
    case 'readIndex':
      handleReadRequest(r, m.context ?? '', m.from);
      break;
    default:
      // Vote responses after winning, a stray timeoutNow, etc.: nothing to do.
      break;
  }
  if (r.leavingAt > 0) maybeLeave(r);
}
