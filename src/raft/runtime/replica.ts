// RaftReplica: the only async part of the Raft library. It owns the clock, the
// disk and the network, and drives the pure core through Ready/advance:
//
//   tick timer / network / propose()  -> core.step/tick/propose  -> kick()
//   pump: while core.hasReady(): rd = ready(); send(rd.earlyMessages); persist(rd);
//         send(rd.messages); apply(rd); advance(rd)
// (early messages are the leader's appends: they may leave before its own
// write, see Ready in core/types.ts; votes and acks wait for the write)
//
// Group commit falls out of the pump: while one Ready's entries are being
// fsync'd, new proposals pile up in the core and the next ready() hands them
// all over for a single transaction.
import { randomBytes } from 'node:crypto';
import { decodeConfChange } from '../core/confchange.js';
import { RawNode } from '../core/raft.js';
import {
  EntryType,
  NONE,
  type ConfChange,
  type ConfState,
  type Entry,
  type Message,
  type NodeId,
  type Ready,
  type Role,
  type Snapshot,
} from '../core/types.js';
import { LmdbStorage } from '../storage/lmdb-storage.js';
import type { LogStore, SnapshotStore } from '../storage/ports.js';
import { silentLogger, type RaftLogger } from '../logger.js';
import type { CoreFactory, RaftCore } from './core-port.js';
import { DEFAULT_LIMITS, DEFAULT_TIMING, type RaftLimits, type RaftTiming } from './defaults.js';
import { unwrap, unwrapSnapshot, wrap, wrapSnapshot } from './envelope.js';
import { ApplyError, NotLeaderError, OverloadedError, ShuttingDownError } from './errors.js';
import { Requests } from './requests.js';
import { Waiters } from './waiters.js';
import type { ReplicaOptions, RequestOptions, StateMachine } from './options.js';
import type { RaftEndpoint, RaftMember, ReplicaStatus, Transport } from './transport.js';

export class RaftReplica implements RaftEndpoint {
  readonly groupId: string;
  readonly id: NodeId;
  private readonly core: RaftCore;
  private readonly log: LogStore;
  private readonly snaps: SnapshotStore;
  private readonly sm: StateMachine;
  private readonly transport: Transport;
  private readonly timing: RaftTiming;
  private readonly limits: RaftLimits;
  private readonly logger: RaftLogger;
  private readonly addresses: Record<NodeId, string>;
  /** Unique per process start, so request ids never repeat across restarts. */
  private readonly nonce = randomBytes(6).toString('base64url');
  private seq = 0;
  private role: Role = 'follower';
  private leader: NodeId = NONE;
  private term = 0;
  private commit = 0;
  private applied: number;
  private conf: ConfState;
  private snapIndex: number;
  private snapshotting = false;
  private ticks = 0;
  private pumping = false;
  private pumpIdle: Promise<void> = Promise.resolve();
  private closed = false;
  private readonly ticker: NodeJS.Timeout;
  private readonly requests = new Requests();
  /** Proposals to retry once a leader is known (elections, transfers). */
  private retries: Array<() => void> = [];
  private readonly waiters = new Waiters();
  private readonly leaderListeners = new Set<(leader: NodeId, term: number) => void>();

  constructor(opts: ReplicaOptions) {
    this.groupId = opts.groupId;
    this.id = opts.id;
    this.sm = opts.stateMachine;
    this.transport = opts.transport;
    this.timing = { ...DEFAULT_TIMING, ...opts.timing };
    this.limits = { ...DEFAULT_LIMITS, ...opts.limits };
    this.logger = opts.log ?? silentLogger;
    let storage = opts.storage;
    if (!storage) {
      if (!opts.dataDir) throw new Error('raft replica: dataDir or storage is required');
      const lmdb = LmdbStorage.open({
        dir: opts.dataDir,
        bootstrap: opts.join ? undefined : opts.peers,
        log: this.logger,
      });
      storage = { log: lmdb, snapshots: lmdb.snapshots };
    }
    this.log = storage.log;
    this.snaps = storage.snapshots;
    const saved = this.log.getMeta('addresses');
    this.addresses = { ...(saved ? (JSON.parse(saved) as Record<NodeId, string>) : {}), ...opts.peers };
    // The state machine lives in memory: rebuild it from the latest snapshot,
    // the core then re-applies the committed entries after it.
    const snap = this.snaps.load();
    this.applied = this.snapIndex = 0;
    if (snap && snap.meta.index > 0) this.restore(snap);
    const init = this.log.initialState();
    this.conf = init.conf;
    this.term = init.hardState.term;
    this.commit = init.hardState.commit;
    const factory: CoreFactory = opts.core ?? ((cfg) => new RawNode(cfg));
    this.core = factory({
      id: opts.id,
      storage: this.log,
      electionTick: this.timing.electionTick,
      heartbeatTick: this.timing.heartbeatTick,
      preVote: true,
      checkQuorum: true,
      maxInflight: this.limits.maxInflight,
      maxSizePerMsg: this.limits.maxSizePerMsg,
      maxUncommitted: this.limits.maxUncommitted,
      applied: this.applied,
      random: opts.random ?? Math.random,
      // The leader replicates while it writes (see handleReady and Ready.earlyMessages).
      earlyMessages: true,
    });
    for (const [id, addr] of Object.entries(this.addresses)) this.transport.setPeer(id, addr);
    this.transport.start(this);
    this.ticker = setInterval(() => this.onTick(), this.timing.tickMs);
    this.kick();
  }

  // ---- public API ----

  /** Replicate `data`; resolves with the state machine's apply() result once applied on THIS replica. */
  propose(data: Uint8Array, opts: RequestOptions = {}): Promise<unknown> {
    if (this.closed) return Promise.reject(new ShuttingDownError());
    const id = `${this.nonce}.${(this.seq++).toString(36)}`;
    const entry = wrap(id, data);
    const timeoutMs = opts.timeoutMs ?? this.limits.requestTimeoutMs;
    return this.requests.propose(id, timeoutMs, () => this.submit(id, entry));
  }

  /** Linearizable read barrier (ReadIndex): resolves once this replica has applied everything committed before the call. */
  read(opts: RequestOptions = {}): Promise<void> {
    if (this.closed) return Promise.reject(new ShuttingDownError());
    const ctx = `${this.nonce}.r${(this.seq++).toString(36)}`;
    const timeoutMs = opts.timeoutMs ?? this.limits.requestTimeoutMs;
    return this.requests.read(ctx, timeoutMs, () => {
      this.core.readIndex(ctx);
      this.kick();
    });
  }

  /** Single-server membership changes; resolve with the configuration once the change is applied here. */
  addVoter(id: NodeId, address: string, opts?: RequestOptions): Promise<ConfState> {
    return this.changeConf({ type: 'addVoter', node: id, context: address }, opts);
  }
  addLearner(id: NodeId, address: string, opts?: RequestOptions): Promise<ConfState> {
    return this.changeConf({ type: 'addLearner', node: id, context: address }, opts);
  }
  removeNode(id: NodeId, opts?: RequestOptions): Promise<ConfState> {
    return this.changeConf({ type: 'removeNode', node: id, context: '' }, opts);
  }

  /** Hand leadership to `to` (leader only); resolves once `to` is seen as leader. */
  async transferLeadership(to: NodeId, opts: RequestOptions = {}): Promise<void> {
    if (this.closed) throw new ShuttingDownError();
    if (this.role !== 'leader') throw new NotLeaderError(this.leader, this.addresses[this.leader] ?? '');
    this.core.transferLeader(to);
    this.kick();
    await this.waitFor(() => this.leader === to, 'leadership transfer', opts.timeoutMs ?? this.limits.requestTimeoutMs);
  }

  /** Resolves with the leader id once one is known. */
  async waitForLeader(opts: RequestOptions = {}): Promise<NodeId> {
    await this.waitFor(() => this.leader !== NONE, 'a raft leader', opts.timeoutMs ?? this.limits.requestTimeoutMs);
    return this.leader;
  }

  onLeaderChange(fn: (leader: NodeId, term: number) => void): () => void {
    this.leaderListeners.add(fn);
    return () => this.leaderListeners.delete(fn);
  }

  isLeader(): boolean {
    return this.role === 'leader';
  }

  status(): ReplicaStatus {
    return {
      id: this.id,
      role: this.role,
      term: this.term,
      leader: this.leader,
      leaderAddress: this.addresses[this.leader] ?? '',
      commit: this.commit,
      applied: this.applied,
      lastIndex: this.log.lastIndex(),
      firstIndex: this.log.firstIndex(),
    };
  }

  /** The configuration in force here, voters first; on the leader with each member's progress. */
  members(): RaftMember[] {
    const st = this.core.status();
    const member = (id: NodeId, voter: boolean): RaftMember => {
      const p = st.progress[id];
      return {
        id,
        address: this.addresses[id] ?? '',
        voter,
        match: p?.match ?? 0,
        recentActive: p?.recentActive ?? false,
      };
    };
    return [...st.conf.voters.map((id) => member(id, true)), ...st.conf.learners.map((id) => member(id, false))];
  }

  addressOf(id: NodeId): string {
    return this.addresses[id] ?? '';
  }

  /** Stop ticking, fail what is waiting with ShuttingDownError, finish the Ready in flight, close transport and storage. */
  async stop(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.ticker);
    this.failAll(new ShuttingDownError());
    await this.pumpIdle;
    await this.transport.close();
    await this.log.close();
  }

  // ---- RaftEndpoint (called by the transport) ----

  deliver(msgs: readonly Message[]): void {
    if (this.closed) return;
    for (const m of msgs) {
      try {
        this.core.step(m);
      } catch (err) {
        this.logger.warn({ err: String(err), type: m.type, from: m.from }, 'core rejected message');
      }
    }
    this.kick();
  }

  reportUnreachable(peer: NodeId): void {
    if (!this.closed) this.core.reportUnreachable(peer);
  }

  learnAddress(peer: NodeId, address: string): void {
    if (this.closed || this.addresses[peer] || peer === this.id) return;
    this.addresses[peer] = address;
    this.transport.setPeer(peer, address);
  }

  reportSnapshot(peer: NodeId, ok: boolean): void {
    if (this.closed) return;
    this.core.reportSnapshot(peer, ok);
    this.kick();
  }

  // ---- the pump ----

  private onTick(): void {
    this.core.tick();
    this.ticks++;
    if (this.leader !== NONE && this.retries.length > 0) {
      const r = this.retries;
      this.retries = [];
      for (const fn of r) fn();
    }
    // A ReadIndex request can be lost with a leader; ask again every election timeout.
    if (this.ticks % this.timing.electionTick === 0) {
      for (const ctx of this.requests.unconfirmedReads()) this.core.readIndex(ctx);
    }
    this.kick();
  }

  private kick(): void {
    if (this.pumping || this.closed) return;
    this.pumping = true;
    // setImmediate, not a microtask: let everything proposed in this turn join the same Ready.
    this.pumpIdle = new Promise((resolve) => setImmediate(() => void this.pump().then(resolve)));
  }

  private async pump(): Promise<void> {
    try {
      while (!this.closed && this.core.hasReady()) {
        const rd = this.core.ready();
        await this.handleReady(rd);
        this.core.advance(rd);
        // Yield to the event loop between Readies: acks and proposals that arrived
        // during the fsync are stepped first and share the next Ready's write.
        await new Promise((resolve) => setImmediate(resolve));
      }
    } catch (err) {
      this.logger.error({ err }, 'raft replica failed; stopping');
      this.failAll(err instanceof Error ? err : new Error(String(err)));
      this.closed = true;
      clearInterval(this.ticker);
    } finally {
      this.pumping = false; // synchronous with the last hasReady() check: no lost wake-up
    }
  }

  private async handleReady(rd: Ready): Promise<void> {
    if (rd.softState) this.onSoftState(rd.softState.leader, rd.softState.role);
    if (rd.hardState) {
      this.term = rd.hardState.term;
      this.commit = rd.hardState.commit;
    }
    // Early sends: a leader's appends and heartbeats leave before its own write
    // (Ready.earlyMessages), so the followers' fsyncs overlap with ours. The
    // core counts our own copy toward commit only after advance(), i.e. once
    // the write below is durable, and nothing is applied before it.
    const early = rd.earlyMessages ?? [];
    if (early.length > 0) this.sendBatched(early);
    const writes = rd.snapshot !== undefined || rd.entries.length > 0 || rd.hardState !== undefined;
    // 0. Committed entries we already hold durably from earlier Readies (below
    // this Ready's first new entry) are applied before this Ready's write: the
    // rule "persist, then apply" exists for committed entries that arrive in the
    // same Ready as their data, which these are not. Without this a leader under
    // load answers every commit one fsync late (behind the next batch's write).
    let answered = false;
    if (!rd.snapshot && rd.entries.length > 0 && rd.committedEntries.length > 0) {
      answered = this.applyCommitted(rd.committedEntries, Math.min(this.log.lastIndex(), rd.entries[0]!.index - 1)) > 0;
    }
    if (rd.mustSync && early.length > 0) {
      // The synchronous fsync below blocks this thread: give the event loop one
      // turn first so the appends just handed to gRPC reach the socket (and the
      // callers answered above run) before we block.
      await new Promise((resolve) => setImmediate(resolve));
    } else if (answered) {
      await null; // let the callers just answered run (and propose again) before we block on the fsync
    }
    // 1. persist: snapshot, then entries + hard state in one fsync'd transaction.
    if (rd.snapshot) {
      await this.snaps.save(rd.snapshot);
      await this.log.applySnapshot(rd.snapshot.meta);
    }
    if (writes) {
      const write = this.log.append(rd.entries, rd.hardState, { sync: rd.mustSync });
      if (rd.mustSync) await write;
      else write.catch((err: unknown) => this.logger.error({ err }, 'raft hard state write failed'));
    }
    // 2. send the rest (votes, acks, ...): they promise what step 1 made durable.
    if (rd.messages.length > 0) this.sendBatched(rd.messages);
    // 3. apply.
    if (rd.snapshot) this.restore(rd.snapshot);
    this.applyCommitted(rd.committedEntries, Number.POSITIVE_INFINITY);
    for (const rs of rd.readStates) this.requests.readConfirmed(rs.context, rs.index);
    this.requests.applied(this.applied);
    this.waiters.check();
    this.maybeSnapshot();
  }

  /** Hand messages to the transport, one batch per peer. */
  private sendBatched(msgs: readonly Message[]): void {
    if (msgs.length === 1) {
      this.transport.send(msgs[0]!.to, msgs);
      return;
    }
    const byPeer = new Map<NodeId, Message[]>();
    for (const m of msgs) {
      const l = byPeer.get(m.to);
      if (l) l.push(m);
      else byPeer.set(m.to, [m]);
    }
    for (const [to, list] of byPeer) this.transport.send(to, list);
  }

  /** Apply committed entries up to `upTo`, in order, skipping what is already applied; returns how many. */
  private applyCommitted(entries: readonly Entry[], upTo: number): number {
    let n = 0;
    for (const e of entries) {
      if (e.index > upTo) break;
      if (e.index <= this.applied) continue;
      if (e.type === EntryType.ConfChange) this.applyConf(decodeConfChange(e.data));
      else if (e.data.length > 0) this.applyNormal(e.index, e.data);
      this.applied = e.index;
      n++;
    }
    return n;
  }

  private applyNormal(index: number, data: Uint8Array): void {
    let env: { id: string; payload: Uint8Array };
    try {
      env = unwrap(data);
    } catch (err) {
      this.logger.error({ index, err: String(err) }, 'skipping entry without a request envelope');
      return;
    }
    const p = this.requests.proposal(env.id);
    try {
      const result = this.sm.apply(env.payload, index);
      p?.resolve(result);
    } catch (err) {
      this.logger.error({ index, err: String(err) }, 'state machine apply failed');
      p?.reject(new ApplyError(index, err));
    }
  }

  private applyConf(cc: ConfChange): void {
    this.conf = this.core.applyConfChange(cc);
    if (cc.type === 'removeNode') {
      if (cc.node !== this.id) this.transport.removePeer(cc.node);
    } else if (cc.context) {
      this.addresses[cc.node] = cc.context;
      this.transport.setPeer(cc.node, cc.context);
    }
    void this.log.setMeta('addresses', JSON.stringify(this.addresses)).catch(() => undefined);
  }

  private restore(snap: Snapshot): void {
    const { addresses, sm } = unwrapSnapshot(snap.data);
    for (const [id, addr] of Object.entries(addresses)) {
      if (!(id in this.addresses)) this.addresses[id] = addr;
      this.transport.setPeer(id, this.addresses[id]!);
    }
    this.sm.restore(sm);
    this.applied = this.snapIndex = snap.meta.index;
    this.conf = snap.meta.conf;
  }

  /** Every `snapshotEvery` applied entries: snapshot the state machine, then compact the log behind it. */
  private maybeSnapshot(): void {
    if (this.snapshotting || this.applied - this.snapIndex < this.limits.snapshotEvery) return;
    this.snapshotting = true;
    const index = this.applied;
    const snap: Snapshot = {
      meta: { index, term: this.log.term(index), conf: this.conf },
      data: wrapSnapshot(this.addresses, this.sm.snapshot()),
    };
    void (async () => {
      try {
        await this.snaps.save(snap);
        this.snapIndex = index;
        const compactTo = index - this.limits.snapshotKeep;
        if (!this.closed && compactTo > this.log.firstIndex()) await this.log.compact(compactTo);
      } catch (err) {
        this.logger.error({ err }, 'snapshot failed');
      } finally {
        this.snapshotting = false;
      }
    })();
  }

  private onSoftState(leader: NodeId, role: Role): void {
    const changed = leader !== this.leader;
    this.leader = leader;
    this.role = role;
    if (changed) {
      this.logger.info({ leader, term: this.term, role }, 'leader changed');
      for (const fn of this.leaderListeners) fn(leader, this.term);
    }
  }

  // ---- requests ----

  private submit(id: string, entry: Uint8Array): void {
    const p = this.requests.proposal(id);
    if (!p || this.closed) return;
    const r = this.core.propose(entry);
    this.kick();
    if (r.ok) return;
    if (r.reason === 'notLeader' && r.leader !== NONE) {
      p.reject(new NotLeaderError(r.leader, this.addresses[r.leader] ?? ''));
    } else if (r.reason === 'tooManyUncommitted') {
      p.reject(new OverloadedError('too many uncommitted entries', this.timing.tickMs));
    } else {
      this.retries.push(() => this.submit(id, entry)); // no leader yet, or a transfer in flight
    }
  }

  private changeConf(cc: ConfChange, opts: RequestOptions = {}): Promise<ConfState> {
    if (this.closed) return Promise.reject(new ShuttingDownError());
    const r = this.core.proposeConfChange(cc);
    this.kick();
    if (!r.ok) {
      if (r.reason === 'notLeader') return Promise.reject(new NotLeaderError(r.leader, this.addresses[r.leader] ?? ''));
      return Promise.reject(new OverloadedError(r.reason, this.timing.tickMs * this.timing.electionTick));
    }
    const done = () =>
      cc.type === 'removeNode'
        ? !this.conf.voters.includes(cc.node) && !this.conf.learners.includes(cc.node)
        : cc.type === 'addVoter'
          ? this.conf.voters.includes(cc.node)
          : this.conf.learners.includes(cc.node);
    return this.waitFor(
      done,
      `membership change ${cc.type} ${cc.node}`,
      opts.timeoutMs ?? this.limits.requestTimeoutMs,
    ).then(async () => {
      // A commit-only hard state is persisted lazily; make the commit index covering this
      // change durable here before answering, so an operator who shuts a removed node down
      // after this resolves (on a remaining voter) follows the core's removal rule.
      await this.log.setHardState(this.log.initialState().hardState);
      return this.conf;
    });
  }

  private waitFor(cond: () => boolean, what: string, timeoutMs: number): Promise<void> {
    if (this.closed) return Promise.reject(new ShuttingDownError());
    return this.waiters.add(cond, what, timeoutMs);
  }

  private failAll(err: Error): void {
    this.requests.failAll(err);
    this.retries = [];
    this.waiters.failAll(err);
  }
}
