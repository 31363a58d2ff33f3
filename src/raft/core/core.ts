// The Raft state machine proper: roles, terms, elections and the term rules
// every message goes through. Role-specific handling lives in leader.ts and
// follower.ts, the election rules (vote requests, the lease, granting a vote)
// in election.ts; RawNode (raft.ts) wraps this with the Ready/advance interface.
// Nothing here does IO, reads a clock or draws randomness except config.random.

import { ProgressTracker } from '../tracker/tracker.js';
import { applyToConf, decodeConfChange } from './confchange.js';
import { handleVoteRequest, hasUnappliedConfChange, leaseIgnores, requestVotes } from './election.js';
import {
  bcastAppend,
  flushAppends,
  handleReadRequest,
  maybeCommit,
  maybeLeave,
  stepLeader,
  tickLeader,
} from './leader.js';
import { stepCandidate, stepFollower } from './follower.js';
import { RaftLog } from './log.js';
import { ReadOnlyQueue } from './read-only.js';
import type { MessageInit, StepContext, TestingKnobs } from './step-context.js';
import {
  EntryType,
  NONE,
  type ConfState,
  type Entry,
  type Message,
  type NodeId,
  type ProposeResult,
  type RaftConfig,
  type ReadState,
  type Role,
  type Snapshot,
} from './types.js';

export type { TestingKnobs } from './step-context.js';

export class Raft implements StepContext {
  readonly id: NodeId;
  /** Persistent (HardState): current term and the vote cast in it. */
  term = 0;
  vote: NodeId = NONE;
  /** Leader of `term` as far as we know; NONE while unknown. */
  lead: NodeId = NONE;
  role: Role = 'follower';
  readonly log: RaftLog;
  readonly trk: ProgressTracker;
  /** Ticks since the last election timeout reset (leader: since the last check-quorum round). */
  electionElapsed = 0;
  /** Leader only: ticks since the last heartbeat broadcast. */
  heartbeatElapsed = 0;
  /** In [electionTick, 2*electionTick), redrawn on every role change. */
  randomizedElectionTimeout = 0;
  /** Leader only: target of an ongoing transfer; proposals are refused while set. */
  leadTransferee: NodeId = NONE;
  /**
   * Leader only, after its own removal was applied: it keeps leading (without
   * counting itself) until every remaining voter reports a commit index >= this,
   * then steps down. Stepping down at once could leave the others unaware that
   * the removal committed, waiting for our vote. 0 when not leaving.
   */
  leavingAt = 0;
  /** Leader only: index of the last conf change appended; a new one waits until applied >= this. */
  pendingConfIndex = 0;
  readonly readOnly = new ReadOnlyQueue();
  /** Leader only: reads that arrived before it committed an entry of its own term. */
  pendingReads: Array<{ context: string; from: NodeId }> = [];
  /** Leader: new entries or a new commit index wait for flushAppends (one append per follower per Ready). */
  pendingBcast = false;
  /** Outbox and read results, drained by RawNode.ready(). */
  msgs: Message[] = [];
  readStates: ReadState[] = [];

  constructor(
    readonly cfg: RaftConfig,
    readonly knobs: TestingKnobs = {},
  ) {
    if (cfg.id === NONE) throw new Error('raft: config.id must not be empty');
    if (!(cfg.heartbeatTick > 0)) throw new Error('raft: heartbeatTick must be > 0');
    if (!(cfg.electionTick > cfg.heartbeatTick)) throw new Error('raft: electionTick must be > heartbeatTick');
    if (!(cfg.maxInflight >= 1)) throw new Error('raft: maxInflight must be >= 1');
    if (!(cfg.maxSizePerMsg > 0)) throw new Error('raft: maxSizePerMsg must be > 0');
    this.id = cfg.id;
    const { hardState, conf } = cfg.storage.initialState();
    this.log = new RaftLog(cfg.storage, cfg.applied, hardState.commit);
    this.trk = new ProgressTracker(cfg.maxInflight);
    this.trk.applyConf(this.confAtApplied(conf), this.log.lastIndex() + 1);
    this.becomeFollower(hardState.term, NONE);
    this.vote = hardState.vote;
  }

  /**
   * The storage reports the configuration of its snapshot; conf changes the
   * driver already applied after it are replayed from the log, so the driver
   * need not persist the configuration separately.
   */
  private confAtApplied(conf: ConfState): ConfState {
    const lo = this.log.firstIndex();
    if (this.log.applied < lo) return conf;
    for (const e of this.log.slice(lo, this.log.applied + 1)) {
      if (e.type === EntryType.ConfChange) conf = applyToConf(conf, decodeConfChange(e.data));
    }
    return conf;
  }

  promotable(): boolean {
    return this.trk.isVoter(this.id);
  }

  send(init: MessageInit): void {
    // prop and readIndex are term-less requests (like etcd's local messages): they are never rejected for their term.
    const termless = init.type === 'prop' || init.type === 'readIndex';
    this.msgs.push({
      from: this.id,
      term: termless ? 0 : this.term,
      logTerm: 0,
      index: 0,
      entries: [],
      commit: 0,
      reject: false,
      rejectHint: 0,
      ...init,
    });
  }

  // ---- role transitions -------------------------------------------------

  private reset(term: number): void {
    if (this.term !== term) {
      this.term = term;
      this.vote = NONE;
    }
    this.lead = NONE;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.randomizedElectionTimeout = this.cfg.electionTick + Math.floor(this.cfg.random() * this.cfg.electionTick);
    this.leadTransferee = NONE;
    this.leavingAt = 0;
    this.pendingBcast = false;
    this.trk.resetVotes();
    this.readOnly.clear();
    this.pendingReads = [];
  }

  becomeFollower(term: number, lead: NodeId): void {
    this.reset(term);
    this.lead = lead;
    this.role = 'follower';
  }

  private becomePreCandidate(): void {
    // Pre-vote (dissertation §9.6) must not disturb anything persistent: term and vote stay.
    if (this.role === 'leader') throw new Error('raft: leader cannot become pre-candidate');
    this.trk.resetVotes();
    this.lead = NONE;
    this.role = 'preCandidate';
  }

  private becomeCandidate(): void {
    if (this.role === 'leader') throw new Error('raft: leader cannot become candidate');
    this.reset(this.term + 1);
    this.vote = this.id;
    this.role = 'candidate';
  }

  becomeLeader(): void {
    if (this.role !== 'candidate') throw new Error(`raft: ${this.role} cannot become leader`);
    this.reset(this.term);
    this.lead = this.id;
    this.role = 'leader';
    const last = this.log.lastIndex();
    this.trk.resetProgress(last + 1);
    // We count ourselves only for what is durable here (see selfDurable); a
    // tail received but not yet written counts once advance() reports it.
    this.selfDurable();
    // Any conf change in the uncommitted tail may still be pending: be conservative.
    this.pendingConfIndex = last;
    // An entry of our own term lets us commit (and therefore serve reads) promptly.
    this.appendEntry(EntryType.Normal, new Uint8Array(0));
    bcastAppend(this);
  }

  // ---- elections ----------------------------------------------------------

  /** Start an election: 'pre' runs a pre-vote first; 'transfer' skips it and overrides leases. */
  campaign(kind: 'pre' | 'election' | 'transfer'): void {
    if (!this.promotable() || this.role === 'leader') return;
    if (hasUnappliedConfChange(this)) return;
    let voteTerm: number;
    if (kind === 'pre') {
      this.becomePreCandidate();
      voteTerm = this.term + 1;
    } else {
      this.becomeCandidate();
      voteTerm = this.term;
    }
    this.trk.recordVote(this.id, true);
    if (this.trk.tally() === 'won') {
      if (kind === 'pre') this.campaign('election');
      else this.becomeLeader();
      return;
    }
    requestVotes(this, kind, voteTerm);
  }

  /** Election timeout fired (or the application asked to campaign). */
  hup(): void {
    this.campaign(this.cfg.preVote ? 'pre' : 'election');
  }

  tick(): void {
    if (this.role === 'leader') {
      tickLeader(this);
      return;
    }
    this.electionElapsed++;
    if (this.promotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      this.hup();
    }
  }

  // ---- messages -------------------------------------------------------------

  step(m: Message): void {
    if (m.type === 'prop' || m.type === 'readIndex') {
      // Term-less requests: their outcome does not depend on the sender's term.
    } else if (m.term > this.term) {
      // Leader lease (check-quorum): a disruptive rejoiner's request is ignored (election.ts).
      if ((m.type === 'vote' || m.type === 'preVote') && leaseIgnores(this, m)) return;
      if (m.type === 'preVote') {
        // A pre-vote never changes our term.
      } else if (m.type === 'preVoteResp' && !m.reject) {
        // A granted pre-vote carries the term we would campaign at, not a newer leader's.
      } else {
        const fromLeader = m.type === 'app' || m.type === 'heartbeat' || m.type === 'snap';
        this.becomeFollower(m.term, fromLeader ? m.from : NONE);
      }
    } else if (m.term < this.term) {
      if (m.type === 'app' || m.type === 'heartbeat') {
        // A stale leader: tell it our term so it steps down.
        this.send({ type: 'appResp', to: m.from });
      } else if (m.type === 'preVote') {
        this.send({ type: 'preVoteResp', to: m.from, reject: true });
      }
      return;
    }

    if (m.type === 'vote' || m.type === 'preVote') {
      handleVoteRequest(this, m);
      return;
    }
    switch (this.role) {
      case 'leader':
        stepLeader(this, m);
        break;
      case 'candidate':
      case 'preCandidate':
        stepCandidate(this, m);
        break;
      case 'follower':
        stepFollower(this, m);
        break;
    }
  }

  // ---- proposals --------------------------------------------------------------

  /** Leader: append one entry to its own log (the caller broadcasts). */
  appendEntry(type: EntryType, data: Uint8Array): Entry {
    const e: Entry = { term: this.term, index: this.log.lastIndex() + 1, type, data };
    this.log.append([e]);
    // The leader does NOT count itself for this entry yet: it may be sent to
    // followers before it is durable here (Ready.earlyMessages), so a commit
    // counting it now could rest on a copy a crash erases. advance() counts it
    // once the driver has written it (selfDurable).
    return e;
  }

  /**
   * Leader: advance our own match index to the last entry durable on our disk
   * and commit what a quorum now holds. Returns whether the commit index moved.
   */
  selfDurable(): boolean {
    if (this.role !== 'leader') return false;
    const self = this.trk.progress.get(this.id);
    if (!self) return false;
    const durable = this.log.stableLastIndex();
    if (!self.maybeUpdate(durable)) return false;
    return maybeCommit(this);
  }

  /** Leader-side admission of one proposal (local or forwarded). */
  acceptProposal(type: EntryType, data: Uint8Array): ProposeResult {
    // Handing over (transfer, or leaving after our removal): new work goes to the next leader.
    if (this.leadTransferee !== NONE || this.leavingAt > 0) return { ok: false, reason: 'transferring' };
    if (type === EntryType.ConfChange && this.pendingConfIndex > this.log.applied) {
      return { ok: false, reason: 'pendingConfChange' };
    }
    const max = this.cfg.maxUncommitted;
    if (max > 0 && this.log.lastIndex() - this.log.committed >= max) return { ok: false, reason: 'tooManyUncommitted' };
    const e = this.appendEntry(type, data);
    if (type === EntryType.ConfChange) this.pendingConfIndex = e.index;
    return { ok: true, index: e.index, term: e.term };
  }

  propose(type: EntryType, data: Uint8Array): ProposeResult {
    if (this.role !== 'leader') {
      if (this.lead === NONE) return { ok: false, reason: 'notLeader', leader: NONE };
      this.send({ type: 'prop', to: this.lead, entries: [{ term: 0, index: 0, type, data }] });
      return { ok: true, forwarded: true, leader: this.lead };
    }
    const res = this.acceptProposal(type, data);
    // Replicated once per Ready for all proposals of a turn (flushAppends).
    if (res.ok) this.pendingBcast = true;
    return res;
  }

  readIndex(context: string): void {
    if (this.role === 'leader') {
      handleReadRequest(this, context, this.id);
    } else if (this.lead !== NONE) {
      this.send({ type: 'readIndex', to: this.lead, context });
    }
    // No known leader: the request is dropped; the caller retries after a timeout.
  }

  // ---- snapshots and membership ------------------------------------------------

  /** Follower: adopt a leader's snapshot. Returns false if it brings nothing new. */
  restore(s: Snapshot): boolean {
    // No group is ever in a configuration without voters: such a snapshot is forged or corrupt.
    if (s.meta.conf.voters.length === 0) return false;
    if (s.meta.index <= this.log.committed) return false;
    if (this.log.matchTerm(s.meta.index, s.meta.term)) {
      // We already hold that entry: just fast-forward the commit index.
      this.log.commitTo(s.meta.index);
      return false;
    }
    this.log.restore(s);
    this.trk.applyConf(s.meta.conf, this.log.lastIndex() + 1);
    return true;
  }

  applyConfChange(conf: ConfState): void {
    // A peer this change removes must still get the commit index that covers its removal.
    flushAppends(this, true);
    this.trk.applyConf(conf, this.log.lastIndex() + 1);
    if (this.role !== 'leader') return;
    if (!this.promotable()) {
      // A removed (or demoted) leader steps down once the remaining voters know
      // the removal committed (see leavingAt); until then it keeps replicating.
      this.leavingAt = Math.max(this.log.committed, 1);
      this.leadTransferee = NONE;
      bcastAppend(this);
      maybeLeave(this);
      return;
    }
    this.leavingAt = 0;
    if (this.leadTransferee !== NONE && !this.trk.isVoter(this.leadTransferee)) this.leadTransferee = NONE;
    // A smaller quorum may already hold more entries.
    if (maybeCommit(this)) bcastAppend(this);
  }
}
