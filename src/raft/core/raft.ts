// RawNode: the public face of the pure Raft core. The driver (runtime or
// simulator) feeds it ticks and messages, pulls a Ready, does the IO that Ready
// asks for in the documented order, and calls advance(). See Ready in types.ts.

import { applyToConf, encodeConfChange } from './confchange.js';
import { Raft, type TestingKnobs } from './core.js';
import { flushAppends, transferLeadership } from './leader.js';
import type { ProgressState } from '../tracker/progress.js';
import {
  EntryType,
  type ConfChange,
  type ConfState,
  type HardState,
  type Message,
  type NodeId,
  type ProposeResult,
  type RaftConfig,
  type Ready,
  type Role,
  type SoftState,
} from './types.js';

export interface PeerStatus {
  readonly match: number;
  readonly next: number;
  readonly state: ProgressState;
  readonly learner: boolean;
  readonly recentActive: boolean;
  readonly inflight: number;
}

export interface Status {
  readonly id: NodeId;
  readonly term: number;
  readonly vote: NodeId;
  readonly role: Role;
  readonly leader: NodeId;
  readonly commit: number;
  readonly applied: number;
  readonly lastIndex: number;
  /** Leader only (empty otherwise): what it knows about each peer, itself included. */
  readonly progress: Readonly<Record<NodeId, PeerStatus>>;
  readonly conf: ConfState;
  readonly leadTransferee: NodeId;
}

/** Soft cap on bytes of committed entries per Ready, so a restart does not load the whole log at once. */
const MAX_COMMITTED_BYTES_PER_READY = 8 * 1024 * 1024;

export class RawNode {
  private readonly r: Raft;
  private prevSoft: SoftState;
  private prevHard: HardState;
  /** A Ready was handed out and not yet advanced: the next one must wait. */
  private outstanding = false;
  /** The driver sends Ready.earlyMessages before persisting (RaftConfig.earlyMessages). */
  private readonly early: boolean;
  private readonly unsafeAllEarly: boolean;

  constructor(config: RaftConfig, knobs: TestingKnobs = {}) {
    this.r = new Raft(config, knobs);
    this.early = config.earlyMessages === true;
    this.unsafeAllEarly = knobs.unsafeEarlyVotesAndAcks === true;
    this.prevSoft = { leader: this.r.lead, role: this.r.role };
    this.prevHard = config.storage.initialState().hardState;
  }

  get id(): NodeId {
    return this.r.id;
  }

  /** Advance logical time by one tick (election and heartbeat timeouts are counted in ticks). */
  tick(): void {
    this.r.tick();
  }

  /** Feed a message from a peer. Messages addressed to another node are ignored. */
  step(msg: Message): void {
    if (msg.to !== this.r.id) return;
    this.r.step(msg);
  }

  /** Start an election now (pre-vote first when enabled), as if the election timeout fired. */
  campaign(): void {
    this.r.hup();
  }

  propose(data: Uint8Array): ProposeResult {
    return this.r.propose(EntryType.Normal, data);
  }

  /** Propose a single-server change; at most one may be pending (appended but not applied). */
  proposeConfChange(cc: ConfChange): ProposeResult {
    return this.r.propose(EntryType.ConfChange, encodeConfChange(cc));
  }

  /**
   * Call for each committed ConfChange entry, in log order, while applying
   * (step 3 of Ready). Returns the configuration now in force.
   */
  applyConfChange(cc: ConfChange): ConfState {
    const conf = applyToConf(this.r.trk.confState(), cc);
    this.r.applyConfChange(conf);
    return conf;
  }

  /** Leader only: hand leadership to `to` (a voter). Proposals are refused until it finishes or times out. */
  transferLeader(to: NodeId): void {
    transferLeadership(this.r, to);
  }

  /**
   * Request a linearizable read. A ReadState with this context appears in a
   * later Ready once leadership is confirmed; serve the read when applied >=
   * its index. Dropped silently when no leader is known (retry on timeout).
   */
  readIndex(context: string): void {
    this.r.readIndex(context);
  }

  hasReady(): boolean {
    if (this.outstanding) return false;
    const r = this.r;
    flushAppends(r);
    if (r.lead !== this.prevSoft.leader || r.role !== this.prevSoft.role) return true;
    if (r.term !== this.prevHard.term || r.vote !== this.prevHard.vote || r.log.committed !== this.prevHard.commit) {
      return true;
    }
    return (
      r.msgs.length > 0 ||
      r.readStates.length > 0 ||
      r.log.unstable.length > 0 ||
      r.log.unstableSnapshot !== undefined ||
      r.log.hasNextCommitted()
    );
  }

  /** Take the pending work. The driver must advance() it before asking for the next one. */
  ready(): Ready {
    if (this.outstanding) throw new Error('raft: ready() called before advance() of the previous Ready');
    const r = this.r;
    flushAppends(r);
    const soft: SoftState = { leader: r.lead, role: r.role };
    const hard: HardState = { term: r.term, vote: r.vote, commit: r.log.committed };
    const softChanged = soft.leader !== this.prevSoft.leader || soft.role !== this.prevSoft.role;
    const hardChanged =
      hard.term !== this.prevHard.term || hard.vote !== this.prevHard.vote || hard.commit !== this.prevHard.commit;
    const entries = r.log.unstable.slice();
    const snapshot = r.log.unstableSnapshot;
    // Early sends (see Ready): only a leader's appends and heartbeats, and only
    // when this Ready carries no new term or vote (so the term they carry is
    // already durable). Everything else waits for the write.
    let messages = r.msgs;
    const earlyMessages: Message[] = [];
    if (this.early && this.unsafeAllEarly) {
      messages = [];
      earlyMessages.push(...r.msgs);
    } else if (this.early && hard.term === this.prevHard.term && hard.vote === this.prevHard.vote) {
      messages = [];
      for (const m of r.msgs) {
        if ((m.type === 'app' || m.type === 'heartbeat') && m.from === r.id && m.term === hard.term)
          earlyMessages.push(m);
        else messages.push(m);
      }
    }
    const rd: Ready = {
      ...(softChanged ? { softState: soft } : {}),
      ...(hardChanged ? { hardState: hard } : {}),
      entries,
      ...(snapshot ? { snapshot } : {}),
      committedEntries: r.log.nextCommitted(MAX_COMMITTED_BYTES_PER_READY),
      messages,
      ...(this.early ? { earlyMessages } : {}),
      readStates: r.readStates,
      // A commit-only change need not be synced: the commit index can be relearned from the leader.
      mustSync:
        entries.length > 0 ||
        snapshot !== undefined ||
        hard.term !== this.prevHard.term ||
        hard.vote !== this.prevHard.vote,
    };
    r.msgs = [];
    r.readStates = [];
    this.prevSoft = soft;
    this.prevHard = hard;
    this.outstanding = true;
    return rd;
  }

  /** The driver persisted, sent and applied everything in `rd`. */
  advance(rd: Ready): void {
    const log = this.r.log;
    if (rd.snapshot) {
      log.stableSnapTo(rd.snapshot.meta.index);
      if (rd.snapshot.meta.index > log.applied) log.applied = rd.snapshot.meta.index;
    }
    const last = rd.entries[rd.entries.length - 1];
    if (last) log.stableTo(last.index, last.term);
    // A leader counts itself toward commit only for entries now durable here;
    // a new commit index goes out to the followers with the next Ready.
    if ((last || rd.snapshot) && this.r.selfDurable()) this.r.pendingBcast = true;
    const applied = rd.committedEntries[rd.committedEntries.length - 1];
    if (applied) log.appliedTo(applied.index);
    this.outstanding = false;
  }

  /** The transport could not reach `id`: stop pipelining to it until it answers a probe. */
  reportUnreachable(id: NodeId): void {
    const p = this.r.role === 'leader' ? this.r.trk.progress.get(id) : undefined;
    if (p?.state === 'replicate') p.becomeProbe();
  }

  /** The transport finished (ok) or failed to send a snapshot to `id`. */
  reportSnapshot(id: NodeId, ok: boolean): void {
    const p = this.r.role === 'leader' ? this.r.trk.progress.get(id) : undefined;
    if (p?.state !== 'snapshot') return;
    if (!ok) p.pendingSnapshot = 0;
    p.becomeProbe();
    // Wait for the follower's answer (or the next heartbeat) before probing again.
    p.probeSent = true;
  }

  status(): Status {
    const r = this.r;
    const progress: Record<NodeId, PeerStatus> = {};
    if (r.role === 'leader') {
      for (const [id, p] of r.trk.progress) {
        progress[id] = {
          match: p.match,
          next: p.next,
          state: p.state,
          learner: p.isLearner,
          recentActive: p.recentActive,
          inflight: p.inflights.count,
        };
      }
    }
    return {
      id: r.id,
      term: r.term,
      vote: r.vote,
      role: r.role,
      leader: r.lead,
      commit: r.log.committed,
      applied: r.log.applied,
      lastIndex: r.log.lastIndex(),
      progress,
      conf: r.trk.confState(),
      leadTransferee: r.leadTransferee,
    };
  }
}
