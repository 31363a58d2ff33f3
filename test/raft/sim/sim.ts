// The seeded Raft simulator (after TigerBeetle's VOPR): replicas of RawNode in
// one process on a virtual clock, with a network that loses, duplicates,
// delays and reorders messages, partitions (symmetric and one-way), crashes
// that lose unsynced writes, membership changes, leadership transfers,
// snapshots and compaction, and a key-value client workload whose history is
// checked for linearizability. One seed drives every choice; invariants are
// checked after every step (see invariants.ts); at the end everything is
// healed and the cluster must make progress within a bounded number of ticks.

import { confEquals, decodeConfChange } from '../../../src/raft/core/confchange.js';
import { MemoryStorage } from '../../../src/raft/core/memory-storage.js';
import type { TestingKnobs } from '../../../src/raft/core/core.js';
import { EntryType, type Message, type NodeId, type Ready } from '../../../src/raft/core/types.js';
import { InvariantChecker } from './invariants.js';
import { encodePut } from './kv.js';
import { checkHistory, type Operation } from './linearizability.js';
import { Disk, Replica, type NodeParams, type PendingOp } from './replica.js';
import { Rng } from '../../../src/util/rng.js';
import { Faults } from './faults.js';
import { Workload } from './workload.js';

export interface SimOptions {
  readonly seed: number;
  readonly replicas?: 3 | 5;
  /** Length of the chaos phase, in ticks. */
  readonly ticks?: number;
  /** Bound on the healed phase: progress must happen within this many ticks. */
  readonly livenessTicks?: number;
  /** Deliberately broken core behaviour (mutation testing of the checkers). */
  readonly knobs?: TestingKnobs;
  /** Deliberately broken driver: send every message (votes and acks too) before the disk sync. */
  readonly sendBeforeSync?: boolean;
  /** Force the leader's early sends on or off (default: drawn per seed, mostly on). */
  readonly earlyMessages?: boolean;
  /** Deliberately broken client: serve gets from the local replica without ReadIndex. */
  readonly unsafeLocalReads?: boolean;
  readonly maxSizePerMsg?: number;
  readonly log?: (line: string) => void;
}

export interface SimResult {
  readonly seed: number;
  readonly violations: string[];
  readonly livenessOk: boolean;
  readonly livenessTicks: number;
  readonly stats: Record<string, number>;
}

interface InFlight {
  readonly due: number;
  readonly msg: Message;
}

export function replayCommand(seed: number, replicas: number): string {
  return `npm run sim:raft -- --seed ${seed} --replicas ${replicas} --verbose`;
}

export class Simulation {
  readonly rng: Rng;
  readonly replicas = new Map<NodeId, Replica>();
  readonly checker: InvariantChecker;
  readonly params: NodeParams;
  readonly stats: Record<string, number> = {};
  now = 0;
  /** Logical clock for the history: bumped at every event so call/return times are distinct. */
  clock = 0;
  private inflight: InFlight[] = [];
  /** One-way links currently cut, as `from>to`. */
  readonly blocked = new Set<string>();
  healAt = 0;
  private loss: number;
  private dup: number;
  nextId: number;
  readonly storm: number;
  private readonly maxDelay: number;
  /** False during the healed liveness phase: no more faults. */
  private chaosOn = true;
  /** Removed nodes not yet shut down, with the index of their removal entry. */
  private readonly removals = new Map<NodeId, number>();
  readonly workload: Workload;
  private readonly faults: Faults;
  readonly log: (line: string) => void;

  constructor(readonly opts: SimOptions) {
    this.rng = new Rng(opts.seed);
    this.log = opts.log ?? (() => {});
    this.checker = new InvariantChecker(() => ` (seed ${opts.seed}, tick ${this.now})`);
    const r = this.rng;
    this.params = {
      electionTick: 10,
      heartbeatTick: 2,
      preVote: r.chance(0.7),
      checkQuorum: r.chance(0.7),
      maxInflight: r.int(1, 8),
      maxSizePerMsg: opts.maxSizePerMsg ?? r.pick([1, 64, 256, 4096]),
      maxUncommitted: r.chance(0.5) ? 0 : r.int(5, 50),
      // Most seeds drive the leader the way the runtime does: appends go out before the sync.
      earlyMessages: opts.earlyMessages ?? r.chance(0.8),
      knobs: opts.knobs ?? {},
    };
    // How hostile this seed's world is: every rate below is scaled by it.
    this.storm = r.pick([0.5, 1, 1, 2, 4]);
    this.loss = Math.min(0.4, r.pick([0, 0.01, 0.05, 0.1]) * this.storm);
    this.dup = r.pick([0, 0.01, 0.05]);
    this.maxDelay = r.pick([3, 8, 20]);
    const n = opts.replicas ?? 3;
    const ids = Array.from({ length: n }, (_, i) => String(i + 1));
    this.nextId = n + 1;
    this.workload = new Workload(this);
    this.faults = new Faults(this);
    for (const id of ids) this.addReplica(id, MemoryStorage.bootstrap(ids));
    this.log(
      `seed ${opts.seed}: ${n} replicas ${JSON.stringify({ ...this.params, knobs: undefined, storm: this.storm, loss: this.loss, dup: this.dup, maxDelay: this.maxDelay })}`,
    );
  }

  bump(key: string, by = 1): void {
    this.stats[key] = (this.stats[key] ?? 0) + by;
  }

  addReplica(id: NodeId, storage: MemoryStorage): Replica {
    const rep = new Replica(id, new Disk(storage), this.params, this.rng.fork());
    this.replicas.set(id, rep);
    this.process(rep);
    return rep;
  }

  up(): Replica[] {
    return [...this.replicas.values()].filter((r) => r.up);
  }

  leader(): Replica | undefined {
    let best: Replica | undefined;
    for (const r of this.up()) {
      const s = r.node.status();
      if (s.role === 'leader' && (!best || s.term > best.node.status().term)) best = r;
    }
    return best;
  }

  /** Run `fn` against a replica; a throw from the core is a violation, and the replica is crashed. */
  guard(rep: Replica, what: string, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.checker.onError(`${rep.id} threw during ${what}: ${(err as Error).stack ?? String(err)}`);
      if (rep.up) this.crash(rep, 1);
    }
  }

  // ---- the driver: Ready handling in the contract's order --------------------

  process(rep: Replica): void {
    this.guard(rep, 'ready', () => {
      while (rep.up && rep.node.hasReady()) this.handleReady(rep, rep.node.ready());
    });
  }

  private handleReady(rep: Replica, rd: Ready): void {
    const s = rep.disk.live;
    // 1. persist (then sync when asked)
    if (rd.snapshot) s.applySnapshot(rd.snapshot);
    s.append(rd.entries);
    if (rd.hardState) s.setHardState(rd.hardState);
    if (rd.entries.length > 0) {
      this.checker.onWrite(rep.id, rep.view, rd.entries[0]!.index, rd.entries[rd.entries.length - 1]!.index);
    }
    // A leader's early messages (Ready.earlyMessages) go out before the sync,
    // and a crash may strike before the sync: the unsynced entries are lost
    // while followers may already hold them.
    for (const m of rd.earlyMessages ?? []) this.send(m);
    if (this.opts.sendBeforeSync) {
      for (const m of rd.messages) this.send(m);
      // The mutation: a crash may strike between sending and syncing.
      if (rd.mustSync && this.rng.chance(0.05)) {
        this.crash(rep, this.rng.int(1, 5));
        return;
      }
      if (rd.mustSync) rep.disk.sync();
    } else {
      if ((rd.earlyMessages?.length ?? 0) > 0 && rd.mustSync && this.chaosOn && this.rng.chance(0.05)) {
        this.bump('crashesAfterEarlySend');
        this.crash(rep, this.rng.int(1, 10));
        return;
      }
      if (rd.mustSync) rep.disk.sync();
      // 2. send
      for (const m of rd.messages) this.send(m);
    }
    const st = rep.node.status();
    if (rd.hardState && st.role === 'leader' && this.chaosOn && this.rng.chance(0.03 * this.storm)) {
      // Adversarial timing: a leader crashes right after announcing a new commit index,
      // before anything else it knows can spread (the window figure 8 is about).
      this.crash(rep, this.rng.int(1, 30));
      return;
    }
    if (rd.softState) {
      this.checker.onRole(rep.id, rd.softState.role, st.term, rep.view);
      if (rd.softState.role === 'leader') this.bump('leadersElected');
      this.log(`t${this.now} ${rep.id} is ${rd.softState.role} term=${st.term}`);
    }
    // 3. apply
    if (rd.snapshot) {
      rep.conf = rd.snapshot.meta.conf;
      this.workload.onSnapshot(rep, rd.snapshot);
    }
    for (const e of rd.committedEntries) {
      const put = rep.kv.apply(e);
      this.checker.onApply(rep.id, e.index, rep.kv.hash);
      if (e.type === EntryType.ConfChange) this.applyConfChange(rep, decodeConfChange(e.data), e.index);
      this.workload.onApply(rep, put);
      if (!rep.up) return;
    }
    for (const rs of rd.readStates) this.workload.onReadState(rep, rs.context, rs.index);
    rep.node.advance(rd);
    this.checker.onCommit(rep.id, st.term, rep.node.status().commit, rep.view);
    this.workload.serveReads(rep);
  }

  private applyConfChange(rep: Replica, cc: ReturnType<typeof decodeConfChange>, index: number): void {
    rep.conf = rep.node.applyConfChange(cc);
    if (cc.type !== 'removeNode') return;
    this.bump('confChangesApplied');
    if (!rep.conf.voters.includes(cc.node) && !rep.conf.learners.includes(cc.node)) {
      const known = this.removals.get(cc.node);
      if (known === undefined || index < known) this.removals.set(cc.node, index);
    }
  }

  /**
   * The operator shuts a removed node down only once a remaining voter holds
   * the removal durably committed. Earlier is unsafe for liveness: the
   * remaining members might not know (or, after a crash, forget) that the
   * removal committed, and then wait forever for the removed node's vote.
   */
  private decommission(): void {
    for (const [id, index] of this.removals) {
      const gone = this.replicas.get(id);
      if (!gone || gone.removed) continue;
      const witness = this.up().find(
        (r) =>
          r.id !== id &&
          r.conf.voters.includes(r.id) &&
          !r.conf.voters.includes(id) &&
          r.disk.durable.hardState().commit >= index,
      );
      if (!witness) continue;
      this.log(`t${this.now} ${id} decommissioned (removal at ${index} durably committed on ${witness.id})`);
      gone.removed = true;
      if (gone.up) this.stop(gone);
    }
  }

  // ---- network ------------------------------------------------------------

  send(m: Message): void {
    this.bump('messages');
    if (this.rng.chance(this.loss)) return this.dropped(m);
    const copies = this.rng.chance(this.dup) ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      // Mostly prompt; sometimes late enough to arrive after terms have changed.
      const delay = this.rng.chance(0.1) ? this.rng.int(2, this.maxDelay) : this.rng.int(0, 1);
      this.inflight.push({ due: this.now + delay, msg: m });
    }
  }

  /** The transport tells a leader when a snapshot could not be delivered. */
  private dropped(m: Message): void {
    if (m.type !== 'snap') return;
    const from = this.replicas.get(m.from);
    if (from?.up) {
      from.node.reportSnapshot(m.to, false);
      this.process(from);
    }
  }

  private deliverDue(): void {
    const due = this.inflight.filter((f) => f.due <= this.now);
    if (due.length === 0) return;
    this.inflight = this.inflight.filter((f) => f.due > this.now);
    for (const { msg } of this.rng.shuffle(due)) {
      const to = this.replicas.get(msg.to);
      if (!to?.up || this.blocked.has(`${msg.from}>${msg.to}`)) {
        this.dropped(msg);
        // A transport notices a dead connection (sometimes) and tells the sender.
        const from = this.replicas.get(msg.from);
        if (from?.up && msg.type === 'app' && this.rng.chance(0.5)) {
          this.guard(from, 'reportUnreachable', () => from.node.reportUnreachable(msg.to));
        }
        continue;
      }
      this.clock++;
      this.guard(to, `step ${msg.type}`, () => to.node.step(msg));
      this.process(to);
      if (msg.type === 'snap') {
        // Like a real transport, report a snapshot once it has been streamed.
        const from = this.replicas.get(msg.from);
        if (from?.up) {
          this.guard(from, 'reportSnapshot', () => from.node.reportSnapshot(msg.to, true));
          this.process(from);
        }
      }
    }
  }

  // ---- faults -----------------------------------------------------------------

  stop(rep: Replica): void {
    rep.up = false;
    this.checker.onDown(rep.id);
    this.workload.onDown(rep);
  }

  crash(rep: Replica, downFor: number): void {
    this.bump('crashes');
    this.log(`t${this.now} crash ${rep.id} for ${downFor} ticks`);
    this.stop(rep);
    rep.disk.crash();
    rep.restartAt = this.now + downFor;
  }

  restart(rep: Replica): void {
    this.log(`t${this.now} restart ${rep.id}`);
    rep.up = true;
    this.guard(rep, 'restart', () => rep.boot());
    this.process(rep);
  }

  private tick(chaos: boolean): void {
    this.now++;
    if (chaos) this.faults.chaos();
    this.workload.issue(chaos);
    for (const rep of this.rng.shuffle(this.up())) {
      this.clock++;
      this.guard(rep, 'tick', () => rep.node.tick());
      this.process(rep);
    }
    this.deliverDue();
    this.decommission();
    for (const rep of this.up()) this.faults.maybeSnapshot(rep);
    this.workload.expire();
  }

  /** Heal everything and wait for a leader that commits and applies a fresh entry everywhere. */
  private liveness(bound: number): number {
    this.chaosOn = false;
    this.blocked.clear();
    this.loss = 0;
    this.dup = 0;
    for (const x of this.replicas.values()) if (!x.up && !x.removed) this.restart(x);
    const data = encodePut({ client: 0, seq: 1, key: '__probe', value: `probe-${this.opts.seed}` });
    for (let t = 1; t <= bound; t++) {
      this.tick(false);
      const l = this.leader();
      if (!l) continue;
      // The leader's configuration must match what its state machine applied.
      const conf = l.node.status().conf;
      if (!confEquals(conf, l.conf) && l.node.status().applied === l.node.status().commit) {
        this.checker.onError(`driver conf ${JSON.stringify(l.conf)} != core conf ${JSON.stringify(conf)} at ${l.id}`);
      }
      const members = [...conf.voters, ...conf.learners];
      const done = members.every((id) => this.replicas.get(id)?.kv.data.get('__probe') !== undefined);
      if (done && l.kv.data.has('__probe')) return t;
      if (t % 10 === 1) this.guard(l, 'probe', () => void l.node.propose(data));
      this.process(l);
    }
    return -1;
  }

  run(): SimResult {
    const ticks = this.opts.ticks ?? 400;
    // A run stops at the end of the tick of its first violation: the first one is the interesting one.
    for (let i = 0; i < ticks && this.checker.violations.length === 0; i++) this.tick(true);
    const bound = this.opts.livenessTicks ?? 400;
    const took = this.checker.violations.length === 0 ? this.liveness(bound) : 0;
    this.workload.finish();
    const history: Operation[] = this.workload.history;
    const lin = checkHistory(history);
    if (!lin.ok)
      this.checker.onError(`linearizability: history of key ${lin.key} is not linearizable (seed ${this.opts.seed})`);
    this.stats.ops = history.length;
    this.stats.ticks = this.now;
    return {
      seed: this.opts.seed,
      violations: [...this.checker.violations],
      livenessOk: took > 0,
      livenessTicks: took,
      stats: { ...this.stats },
    };
  }
}

export function runSeed(opts: SimOptions): SimResult {
  return new Simulation(opts).run();
}

export type { PendingOp };
