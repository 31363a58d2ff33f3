// The callers' side of a replica: proposals (a request id in an envelope, so
// the entry is recognised when it applies here; retried on each tick while no
// leader is known, within their deadline), ReadIndex reads, membership changes
// and leadership transfers, each refused with a typed error when it cannot be
// served. Requests and Waiters keep what callers wait for; this decides what
// to ask the core and when.
import { randomBytes } from 'node:crypto';
import { NONE, type ConfChange, type ConfState, type NodeId, type ReadState } from '../core/types.js';
import type { LogStore } from '../storage/ports.js';
import type { AddressBook } from './address-book.js';
import type { RaftClock } from './clock.js';
import type { RaftCore } from './core-port.js';
import type { RaftLimits, RaftTiming } from './defaults.js';
import { wrap } from './envelope.js';
import { NotLeaderError, OverloadedError, ShuttingDownError } from './errors.js';
import type { RequestOptions } from './options.js';
import type { Requests } from './requests.js';
import { Waiters } from './waiters.js';

/** What the proposer needs of its replica. */
export interface ProposerPort {
  readonly core: Pick<RaftCore, 'propose' | 'proposeConfChange' | 'readIndex' | 'transferLeader'>;
  readonly log: Pick<LogStore, 'initialState' | 'setHardState'>;
  readonly book: AddressBook;
  readonly requests: Requests;
  readonly timing: RaftTiming;
  readonly limits: RaftLimits;
  /** Request deadlines run on it. */
  readonly clock: RaftClock;
  closed(): boolean;
  /** Run the pump: the core has something new to hand out. */
  kick(): void;
  leader(): NodeId;
  isLeader(): boolean;
  /** The configuration applied here. */
  conf(): ConfState;
}

export class Proposer {
  /** Unique per process start, so request ids never repeat across restarts. */
  private readonly nonce = randomBytes(6).toString('base64url');
  private seq = 0;
  /** Proposals to retry once a leader is known (elections, transfers). */
  private retries: Array<() => void> = [];
  private readonly waiters: Waiters;

  constructor(private readonly port: ProposerPort) {
    this.waiters = new Waiters(port.clock);
  }

  propose(data: Uint8Array, opts: RequestOptions): Promise<unknown> {
    if (this.port.closed()) return Promise.reject(new ShuttingDownError());
    const id = `${this.nonce}.${(this.seq++).toString(36)}`;
    const entry = wrap(id, data);
    return this.port.requests.propose(id, this.timeout(opts), () => this.submit(id, entry));
  }

  read(opts: RequestOptions): Promise<void> {
    if (this.port.closed()) return Promise.reject(new ShuttingDownError());
    const ctx = `${this.nonce}.r${(this.seq++).toString(36)}`;
    return this.port.requests.read(ctx, this.timeout(opts), () => {
      this.port.core.readIndex(ctx);
      this.port.kick();
    });
  }

  changeConf(cc: ConfChange, opts: RequestOptions): Promise<ConfState> {
    const { core, log, timing } = this.port;
    if (this.port.closed()) return Promise.reject(new ShuttingDownError());
    const r = core.proposeConfChange(cc);
    this.port.kick();
    if (!r.ok) {
      if (r.reason === 'notLeader') return Promise.reject(this.notLeader(r.leader));
      return Promise.reject(new OverloadedError(r.reason, timing.tickMs * timing.electionTick));
    }
    const done = () => {
      const conf = this.port.conf();
      return cc.type === 'removeNode'
        ? !conf.voters.includes(cc.node) && !conf.learners.includes(cc.node)
        : cc.type === 'addVoter'
          ? conf.voters.includes(cc.node)
          : conf.learners.includes(cc.node);
    };
    return this.waitFor(done, `membership change ${cc.type} ${cc.node}`, this.timeout(opts)).then(async () => {
      // A commit-only hard state is persisted lazily; make the commit index covering this
      // change durable here before answering, so an operator who shuts a removed node down
      // after this resolves (on a remaining voter) follows the core's removal rule.
      await log.setHardState(log.initialState().hardState);
      return this.port.conf();
    });
  }

  async transferLeadership(to: NodeId, opts: RequestOptions): Promise<void> {
    if (this.port.closed()) throw new ShuttingDownError();
    if (!this.port.isLeader()) throw this.notLeader(this.port.leader());
    this.port.core.transferLeader(to);
    this.port.kick();
    await this.waitFor(() => this.port.leader() === to, 'leadership transfer', this.timeout(opts));
  }

  async waitForLeader(opts: RequestOptions): Promise<NodeId> {
    await this.waitFor(() => this.port.leader() !== NONE, 'a raft leader', this.timeout(opts));
    return this.port.leader();
  }

  /** After each tick: retry what waited for a leader; re-issue reads every election timeout (the leader may have lost them). */
  tick(ticks: number): void {
    if (this.port.leader() !== NONE && this.retries.length > 0) {
      const r = this.retries;
      this.retries = [];
      for (const fn of r) fn();
    }
    if (ticks % this.port.timing.electionTick === 0) {
      for (const ctx of this.port.requests.unconfirmedReads()) this.port.core.readIndex(ctx);
    }
  }

  /**
   * After a Ready was applied: answer reads confirmed and applied, waits whose
   * condition now holds, and fail proposals a newer leader's log has made
   * impossible (appended here in an older term than `appliedTerm`) with
   * NotLeaderError: their entry will never commit, so unlike a timeout this
   * is a definite "not done, ask the leader".
   */
  applied(readStates: readonly ReadState[], applied: number, appliedTerm: number): void {
    for (const rs of readStates) this.port.requests.readConfirmed(rs.context, rs.index);
    this.port.requests.applied(applied);
    this.port.requests.lostBefore(appliedTerm, () => this.notLeader(this.port.leader()));
    this.waiters.check();
  }

  failAll(err: Error): void {
    this.port.requests.failAll(err);
    this.retries = [];
    this.waiters.failAll(err);
  }

  private submit(id: string, entry: Uint8Array): void {
    const p = this.port.requests.proposal(id);
    if (!p || this.port.closed()) return;
    const r = this.port.core.propose(entry);
    this.port.kick();
    if (r.ok) {
      if ('index' in r) this.port.requests.appended(id, r.index, r.term);
      return;
    }
    if (r.reason === 'notLeader' && r.leader !== NONE) {
      p.reject(this.notLeader(r.leader));
    } else if (r.reason === 'tooManyUncommitted') {
      p.reject(new OverloadedError('too many uncommitted entries', this.port.timing.tickMs));
    } else {
      this.retries.push(() => this.submit(id, entry)); // no leader yet, or a transfer in flight
    }
  }

  private waitFor(cond: () => boolean, what: string, timeoutMs: number): Promise<void> {
    if (this.port.closed()) return Promise.reject(new ShuttingDownError());
    return this.waiters.add(cond, what, timeoutMs);
  }

  private notLeader(leader: NodeId): NotLeaderError {
    return new NotLeaderError(leader, this.port.book.get(leader));
  }

  private timeout(opts: RequestOptions): number {
    return opts.timeoutMs ?? this.port.limits.requestTimeoutMs;
  }
}
