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
//
// Time comes only from the RaftClock it is given (clock.ts; real by default):
// the tick, request deadlines and the pump's turns, so a simulator can run it
// on virtual time.
//
// Around it: proposer.ts turns callers' requests into core calls, apply.ts
// applies committed entries and snapshots, snapshotter.ts takes this replica's
// own snapshots, address-book.ts keeps the peers' addresses.
import { RawNode } from '../core/raft.js';
import {
  NONE,
  type ConfState,
  type Message,
  type NodeId,
  type Ready,
  type Role,
  type Snapshot,
} from '../core/types.js';
import { LmdbStorage } from '../storage/lmdb-storage.js';
import type { LogStore, SnapshotStore } from '../storage/ports.js';
import { silentLogger, type RaftLogger } from '../logger.js';
import { AddressBook } from './address-book.js';
import { Applier } from './apply.js';
import { every, realClock, type RaftClock, type RaftTimer } from './clock.js';
import type { CoreFactory, RaftCore } from './core-port.js';
import { DEFAULT_LIMITS, DEFAULT_TIMING, type RaftLimits, type RaftTiming } from './defaults.js';
import { ShuttingDownError } from './errors.js';
import { Proposer } from './proposer.js';
import { Requests } from './requests.js';
import { Snapshotter } from './snapshotter.js';
import { StrayFilter } from './strays.js';
import type { ReplicaOptions, RequestOptions } from './options.js';
import type { RaftEndpoint, RaftMember, ReplicaStatus, Transport } from './transport.js';

/** How long stop() waits for a snapshot being written (a large one on a busy disk takes seconds). */
const STOP_SNAPSHOT_WAIT_MS = 10_000;

export class RaftReplica implements RaftEndpoint {
  readonly groupId: string;
  readonly id: NodeId;
  private readonly core: RaftCore;
  private readonly log: LogStore;
  private readonly snaps: SnapshotStore;
  private readonly transport: Transport;
  private readonly clock: RaftClock;
  private readonly timing: RaftTiming;
  private readonly limits: RaftLimits;
  private readonly logger: RaftLogger;
  private readonly book: AddressBook;
  private readonly applier: Applier;
  private readonly snapshotter: Snapshotter;
  private readonly proposer: Proposer;
  private role: Role = 'follower';
  private leader: NodeId = NONE;
  private term = 0;
  private commit = 0;
  private ticks = 0;
  private pumping = false;
  private pumpIdle: Promise<void> = Promise.resolve();
  private closed = false;
  private stopping: Promise<void> | undefined;
  private readonly ticker: RaftTimer;
  private readonly requests: Requests;
  private readonly leaderListeners = new Set<(leader: NodeId, term: number) => void>();
  private readonly strays: StrayFilter;

  constructor(opts: ReplicaOptions) {
    this.groupId = opts.groupId;
    this.id = opts.id;
    this.transport = opts.transport;
    this.clock = opts.clock ?? realClock;
    this.requests = new Requests(this.clock);
    this.timing = { ...DEFAULT_TIMING, ...opts.timing };
    this.limits = { ...DEFAULT_LIMITS, ...opts.limits };
    this.logger = opts.log ?? silentLogger;
    this.strays = new StrayFilter(this.id, opts.isPeerId ?? (() => true), this.clock, this.logger);
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
    this.book = new AddressBook(this.transport, this.log, opts.peers);
    this.applier = new Applier({
      self: this.id,
      sm: opts.stateMachine,
      book: this.book,
      requests: this.requests,
      logger: this.logger,
      applyConfChange: (cc) => this.core.applyConfChange(cc),
    });
    this.snapshotter = new Snapshotter({
      snaps: this.snaps,
      log: this.log,
      limits: this.limits,
      logger: this.logger,
      closed: () => this.closed,
      clock: this.clock,
    });
    // The state machine lives in memory: rebuild it from the latest snapshot,
    // the core then re-applies the committed entries after it.
    const snap = this.snaps.load();
    if (snap && snap.meta.index > 0) this.restore(snap);
    const init = this.log.initialState();
    this.applier.conf = init.conf;
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
      applied: this.applier.applied,
      random: opts.random ?? Math.random,
      // The leader replicates while it writes (see handleReady and Ready.earlyMessages).
      earlyMessages: true,
    });
    this.proposer = new Proposer({
      core: this.core,
      log: this.log,
      book: this.book,
      requests: this.requests,
      timing: this.timing,
      limits: this.limits,
      clock: this.clock,
      closed: () => this.closed,
      kick: () => this.kick(),
      leader: () => this.leader,
      isLeader: () => this.isLeader(),
      conf: () => this.applier.conf,
    });
    this.book.dialAll();
    this.transport.start(this);
    this.ticker = every(this.clock, this.timing.tickMs, () => this.onTick());
    this.kick();
  }

  // ---- public API ----

  /** Replicate `data`; resolves with the state machine's apply() result once applied on THIS replica. */
  propose(data: Uint8Array, opts: RequestOptions = {}): Promise<unknown> {
    return this.proposer.propose(data, opts);
  }

  /** Linearizable read barrier (ReadIndex): resolves once this replica has applied everything committed before the call. */
  read(opts: RequestOptions = {}): Promise<void> {
    return this.proposer.read(opts);
  }

  /** Single-server membership changes; resolve with the configuration once the change is applied here. */
  addVoter(id: NodeId, address: string, opts: RequestOptions = {}): Promise<ConfState> {
    return this.proposer.changeConf({ type: 'addVoter', node: id, context: address }, opts);
  }
  addLearner(id: NodeId, address: string, opts: RequestOptions = {}): Promise<ConfState> {
    return this.proposer.changeConf({ type: 'addLearner', node: id, context: address }, opts);
  }
  removeNode(id: NodeId, opts: RequestOptions = {}): Promise<ConfState> {
    return this.proposer.changeConf({ type: 'removeNode', node: id, context: '' }, opts);
  }

  /** Hand leadership to `to` (leader only); resolves once `to` is seen as leader. */
  transferLeadership(to: NodeId, opts: RequestOptions = {}): Promise<void> {
    return this.proposer.transferLeadership(to, opts);
  }

  /** Resolves with the leader id once one is known. */
  waitForLeader(opts: RequestOptions = {}): Promise<NodeId> {
    return this.proposer.waitForLeader(opts);
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
      leaderAddress: this.book.get(this.leader),
      commit: this.commit,
      applied: this.applier.applied,
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
        address: this.book.get(id),
        voter,
        match: p?.match ?? 0,
        recentActive: p?.recentActive ?? false,
      };
    };
    return [...st.conf.voters.map((id) => member(id, true)), ...st.conf.learners.map((id) => member(id, false))];
  }

  addressOf(id: NodeId): string {
    return this.book.get(id);
  }

  /**
   * Stop ticking, fail what is waiting with ShuttingDownError, finish the Ready
   * in flight and the snapshot being written (at most STOP_SNAPSHOT_WAIT_MS:
   * a replica restarted on the same directory must not race it), close
   * transport and storage. Also after the replica failed on its own (which
   * only closed it), and every call resolves once all that is done.
   */
  stop(): Promise<void> {
    return (this.stopping ??= this.shutdown());
  }

  private async shutdown(): Promise<void> {
    this.closed = true;
    this.ticker.cancel();
    this.proposer.failAll(new ShuttingDownError());
    await this.pumpIdle;
    if (!(await this.snapshotter.settle(STOP_SNAPSHOT_WAIT_MS))) {
      this.logger.warn({ waitedMs: STOP_SNAPSHOT_WAIT_MS }, 'stopping with a snapshot still being written');
    }
    await this.transport.close();
    await this.log.close();
  }

  // ---- RaftEndpoint (called by the transport) ----

  deliver(msgs: readonly Message[]): void {
    if (this.closed) return;
    for (const m of msgs) {
      if (!this.strays.admits(m)) continue;
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
    if (!this.closed && peer !== this.id) this.book.learn(peer, address);
  }

  reportSnapshot(peer: NodeId, ok: boolean): void {
    if (this.closed) return;
    this.core.reportSnapshot(peer, ok);
    this.kick();
  }

  // ---- the pump ----

  private onTick(): void {
    this.core.tick();
    this.proposer.tick(++this.ticks);
    this.kick();
  }

  private kick(): void {
    if (this.pumping || this.closed) return;
    this.pumping = true;
    // A later turn (setImmediate on the real clock), not a microtask: what is proposed in this turn joins one Ready.
    this.pumpIdle = new Promise((resolve) => this.clock.defer(() => void this.pump().then(resolve)));
  }

  private async pump(): Promise<void> {
    try {
      while (!this.closed && this.core.hasReady()) {
        const rd = this.core.ready();
        await this.handleReady(rd);
        this.core.advance(rd);
        // Yield to the event loop between Readies: acks and proposals that arrived
        // during the fsync are stepped first and share the next Ready's write.
        await new Promise<void>((resolve) => this.clock.defer(resolve));
      }
    } catch (err) {
      this.logger.error({ err }, 'raft replica failed; stopping');
      this.proposer.failAll(err instanceof Error ? err : new Error(String(err)));
      this.closed = true;
      this.ticker.cancel();
    } finally {
      this.pumping = false; // synchronous with the last hasReady() check: no lost wake-up
    }
  }

  private async handleReady(rd: Ready): Promise<void> {
    // The term first: leader-change listeners must see the term of this Ready.
    if (rd.hardState) {
      this.term = rd.hardState.term;
      this.commit = rd.hardState.commit;
    }
    if (rd.softState) this.onSoftState(rd.softState.leader, rd.softState.role);
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
    if (!rd.snapshot && rd.entries.length > 0 && rd.committedEntries.length > 0) {
      this.applier.applyCommitted(rd.committedEntries, Math.min(this.log.lastIndex(), rd.entries[0]!.index - 1));
    }
    // 1. persist: snapshot, then entries + hard state in one fsync'd transaction.
    // The write does not block the event loop (lmdb commits on its own thread):
    // while it syncs, messages are stepped into the core and proposals queue
    // there for the next Ready; the early sends above reach their sockets.
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
    this.applier.applyCommitted(rd.committedEntries, Number.POSITIVE_INFINITY);
    this.proposer.applied(rd.readStates, this.applier.applied, this.applier.appliedTerm);
    this.snapshotter.maybeTake(this.applier.applied, this.applier.conf, () => this.applier.snapshotData());
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

  private restore(snap: Snapshot): void {
    this.applier.restore(snap);
    this.requests.unknownUpTo(snap.meta.index);
    this.snapshotter.restored(snap.meta.index);
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
}
