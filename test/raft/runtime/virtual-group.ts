// A RaftReplica group on virtual time, for tests and as a model for the mesh
// simulator: the mesh's VirtualScheduler as the replicas' RaftClock, memory
// stores that outlive a replica (the "disk" a restart recovers from), and a
// seeded faulty MemoryNetwork. Nothing waits on real time: the driver moves
// the clock 1 ms at a time and, between moves, lets the microtasks (the
// in-memory storage's promises) and the work they defer settle.
import {
  MemoryLogStore,
  MemoryNetwork,
  RaftReplica,
  type NetworkFaults,
  type NodeId,
  type RaftLimits,
} from '../../../src/raft/index.js';
import { VirtualScheduler } from '../../../src/mesh/virtual-scheduler.js';
import { Rng } from '../../../src/util/rng.js';
import { KvStateMachine } from '../../../examples/raft-kv/state.js';

/** One real turn of the event loop: every microtask queued so far (and those they queue) has run. */
const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

export class VirtualDriver {
  readonly clock = new VirtualScheduler();
  /** Real event-loop turns taken (each is one setImmediate). */
  turns = 0;

  /** Run what is due now until rest: microtasks, then deferred work, until neither is left. */
  async settle(): Promise<void> {
    for (let i = 0; i < 100_000; i++) {
      this.turns++;
      await turn();
      if (this.clock.runDeferred() === 0) return;
    }
    throw new Error('virtual driver: no rest after 100000 turns (livelock?)');
  }

  /** Move virtual time 1 ms at a time until `cond` holds; fail after `limitMs` virtual ms. */
  async until<T>(cond: () => T | undefined | null | false, limitMs: number, what: string): Promise<T> {
    const end = this.clock.now() + limitMs;
    for (;;) {
      await this.settle();
      const v = cond();
      if (v) return v;
      if (this.clock.now() >= end) throw new Error(`${limitMs} virtual ms passed waiting for ${what}`);
      this.clock.advance(1);
    }
  }

  /** Drive the clock until `p` settles (within `limitMs` virtual ms); its value or its error. */
  async resolve<T>(p: Promise<T>, limitMs: number, what: string): Promise<T> {
    let out: { ok: true; v: T } | { ok: false; e: unknown } | undefined;
    p.then(
      (v) => (out = { ok: true, v }),
      (e: unknown) => (out = { ok: false, e }),
    );
    const r = await this.until(() => out, limitMs, what);
    if (!r.ok) throw r.e;
    return r.v;
  }
}

export interface Member {
  readonly id: NodeId;
  /** The replica's disk: kept across stop/start. */
  readonly log: MemoryLogStore;
  kv: KvStateMachine;
  replica: RaftReplica | undefined;
}

export class VirtualGroup {
  readonly driver = new VirtualDriver();
  readonly clock = this.driver.clock;
  readonly rng: Rng;
  readonly net: MemoryNetwork;
  readonly members = new Map<NodeId, Member>();
  /** What happened, with the virtual time: identical for identical seeds. */
  readonly trace: string[] = [];
  private readonly peers: Record<NodeId, string>;

  constructor(
    seed: number,
    readonly ids: readonly NodeId[] = ['a', 'b', 'c'],
    faults: Partial<NetworkFaults> = {},
    readonly limits: Partial<RaftLimits> = {},
  ) {
    this.rng = new Rng(seed);
    const netRng = this.rng.fork();
    this.net = new MemoryNetwork({ clock: this.clock, random: () => netRng.next(), faults });
    this.peers = Object.fromEntries(ids.map((id) => [id, `mem:${id}`]));
    for (const id of ids) {
      this.members.set(id, {
        id,
        log: new MemoryLogStore({ bootstrap: this.peers }),
        kv: new KvStateMachine(),
        replica: undefined,
      });
    }
  }

  startAll(): void {
    for (const id of this.ids) this.start(id);
  }

  /** Start (or restart) `id` on its stores, with a fresh state machine and its own random stream. */
  start(id: NodeId): RaftReplica {
    const m = this.member(id);
    const rng = this.rng.fork();
    m.kv = new KvStateMachine();
    m.replica = new RaftReplica({
      groupId: 'g',
      id,
      peers: this.peers,
      storage: { log: m.log, snapshots: m.log.snapshots },
      stateMachine: m.kv,
      transport: this.net.transport(id),
      clock: this.clock,
      random: () => rng.next(),
      limits: this.limits,
    });
    m.replica.onLeaderChange((leader, term) => this.note(`${id} sees leader ${leader || '-'} term ${term}`));
    this.note(`${id} started`);
    return m.replica;
  }

  /** Stop `id` (its timers, transport and pump), driving the clock until that is done. */
  async stop(id: NodeId): Promise<void> {
    const m = this.member(id);
    if (!m.replica) return;
    await this.driver.resolve(m.replica.stop(), 20_000, `${id} to stop`);
    m.replica = undefined;
    this.note(`${id} stopped`);
  }

  async stopAll(): Promise<void> {
    for (const id of this.ids) await this.stop(id);
  }

  note(what: string): void {
    this.trace.push(`${this.clock.now()} ${what}`);
  }

  member(id: NodeId): Member {
    const m = this.members.get(id);
    if (!m) throw new Error(`no member ${id}`);
    return m;
  }

  replica(id: NodeId): RaftReplica {
    const r = this.member(id).replica;
    if (!r) throw new Error(`replica ${id} is not running`);
    return r;
  }

  running(): Member[] {
    return [...this.members.values()].filter((m) => m.replica);
  }

  /** The leader every running replica agrees on, if any. */
  leader(): NodeId | undefined {
    const seen = new Set(this.running().map((m) => m.replica!.status().leader));
    const [l] = [...seen];
    return seen.size === 1 && l && this.members.get(l)?.replica?.isLeader() ? l : undefined;
  }
}
