// The whole mesh in one process on virtual time: every replica of every cell
// is a real Cell wired by the product's own wireCell (agent sessions, child
// links, parent link), its streams on the simulated network, its timers on
// the VirtualScheduler. Only sockets, the clock and (for Raft cells) the disk
// are simulated.
import { pino } from 'pino';
import { Cell } from '../../../src/mesh/cell.js';
import { meshOf, type MeshIdentity } from '../../../src/mesh/mesh-identity.js';
import type { LinkDialer } from '../../../src/mesh/parent-link.js';
import { RaftCellLog } from '../../../src/mesh/raft-cell-log.js';
import { RaftLedgerLog } from '../../../src/mesh/raft-ledger-log.js';
import { wireCell } from '../../../src/mesh/replica.js';
import { PRODUCT_CODECS, type WireCodecs } from './wire-check.js';
import type { Scheduler } from '../../../src/mesh/scheduler.js';
import type { CellOptions } from '../../../src/mesh/types.js';
import type { VirtualScheduler } from '../../../src/mesh/virtual-scheduler.js';
import type { CellSpec, Topology } from '../../../src/topology/types.js';
import { MemoryLogStore, MemoryNetwork } from '../../../src/raft/index.js';
import type { Rng } from '../../../src/util/rng.js';
import type { ServerEnd, SimNet } from './net.js';

/** One replica as the simulator holds it: its cell (replaced on a restart) and its clock's skew. */
export interface SimReplica {
  readonly id: string;
  readonly spec: CellSpec;
  readonly replica: number;
  cell: Cell;
  up: boolean;
  /** Added to the virtual clock this replica reads (a clock jump). */
  skewMs: number;
}

export interface MeshOptions {
  readonly topology: Topology;
  readonly vs: VirtualScheduler;
  readonly net: SimNet;
  readonly rng: Rng;
  /** Settings every cell gets (short timers keep a seed's virtual run short). */
  readonly cellOptions: CellOptions;
  /**
   * Every cell a Raft group (as `meshlb serve` runs it: even one replica is a
   * one-voter group) on an in-memory network and in-memory stores that
   * outlive a crash; without it every replica leads alone (`meshlb dev`).
   */
  readonly raft?: boolean;
  /** Called with every cell built (at the start and after a restart): the checker watches its ledger. */
  readonly onCell?: (r: SimReplica) => void;
  /** Log lines of the cells (verbose runs); silent otherwise. */
  readonly logLevel?: string;
  /** The link codecs (wire-check.ts: checked ones); the product's by default. */
  readonly codecs?: WireCodecs;
}

/** Raft timing in the simulator: elections in 300-600 ms as by default, heartbeats every 60 ms. */
const RAFT_TIMING = { tickMs: 30, electionTick: 10, heartbeatTick: 2 };

export class SimMesh {
  readonly replicas = new Map<string, SimReplica>();
  readonly mesh: MeshIdentity;
  /** The Raft groups' network (their messages; the links and agent streams are on SimNet). */
  readonly raftNet: MemoryNetwork | undefined;
  /** Each replica's "disk": its Raft log, hard state and snapshots, kept across a crash. */
  private readonly disks = new Map<string, MemoryLogStore>();
  /** Replicas whose Raft replica is still stopping after a crash: a restart waits for it. */
  private readonly stopping = new Map<string, Promise<void>>();

  constructor(private readonly o: MeshOptions) {
    this.mesh = meshOf(o.topology);
    if (o.raft) {
      const r = o.rng.fork();
      this.raftNet = new MemoryNetwork({ clock: o.vs, random: () => r.next(), faults: { delayMs: [0, 3] } });
    }
    for (const spec of o.topology.cells) {
      for (const r of spec.replicas) {
        const rep: SimReplica = {
          id: r.id,
          spec,
          replica: r.replica,
          cell: undefined as unknown as Cell,
          up: true,
          skewMs: 0,
        };
        rep.cell = this.build(rep);
        this.replicas.set(r.id, rep);
        o.net.serve(r.id, 'link', (call) => this.replicas.get(r.id)?.cell.children?.open(asCall(call)));
        o.net.serve(r.id, 'agent', (call) => this.replicas.get(r.id)?.cell.agents?.connect(asCall(call)));
      }
    }
  }

  private build(rep: SimReplica): Cell {
    const { vs, net, rng, topology } = this.o;
    const codecs = this.o.codecs ?? PRODUCT_CODECS;
    const scheduler: Scheduler = {
      now: () => vs.now() + rep.skewMs,
      setTimer: (ms, fn) => vs.setTimer(ms, fn),
      defer: (fn) => vs.defer(fn),
    };
    const log = pino({ level: this.o.logLevel ?? 'silent', base: { cell: rep.spec.path, replica: rep.id } });
    const factory = this.raftNet ? this.raftLog(rep, scheduler) : undefined;
    const cell = new Cell(topology, rep.spec, rep.replica, {
      ...this.o.cellOptions,
      scheduler,
      random: seeded(rng),
      log,
      ...(factory ? { replicatedLog: factory } : {}),
    });
    const dial: LinkDialer = (address) => ({
      call: net.open(rep.id, address, 'link', codecs.linkRequest, codecs.linkResponse) as never,
      close: () => undefined,
    });
    const parent = topology.byPath.get(rep.spec.parent);
    wireCell(cell, () => parent?.replicas.map((r) => r.id) ?? [], dial);
    rep.cell = cell;
    this.o.onCell?.(rep);
    cell.start();
    return cell;
  }

  /** The cell's log for `rep`: a RaftLedgerLog on the replica's disk and the Raft network, as raft-cell.ts builds it. */
  private raftLog(rep: SimReplica, clock: Scheduler): CellOptions['replicatedLog'] {
    const peers: Record<string, string> = {};
    for (const r of rep.spec.replicas) peers[r.id] = r.id;
    let disk = this.disks.get(rep.id);
    if (!disk) this.disks.set(rep.id, (disk = new MemoryLogStore({ bootstrap: peers })));
    const store = disk;
    const r = this.o.rng.fork();
    const net = this.raftNet!;
    return (ledger) =>
      new RaftCellLog(
        new RaftLedgerLog({
          ledger,
          raft: {
            groupId: rep.spec.path,
            id: rep.id,
            peers,
            storage: { log: store, snapshots: store.snapshots },
            transport: net.transport(rep.id),
            clock,
            random: () => r.next(),
            // Fewer, coarser ticks than the default 10 ms (30-60 ticks per election): the same
            // election and heartbeat bounds within a factor of two, a third of the simulated work.
            timing: RAFT_TIMING,
          },
        }),
        clock,
      );
  }

  /** The replica that leads `path` now (undefined during an election or while all are down). */
  leaderOf(path: string): SimReplica | undefined {
    const spec = this.o.topology.byPath.get(path);
    for (const r of spec?.replicas ?? []) {
      const rep = this.replicas.get(r.id);
      if (rep?.up && rep.cell.leading) return rep;
    }
    return undefined;
  }

  /** Cut `id` off from every other endpoint (links, agents, its Raft peers), or heal that. */
  isolate(id: string, on: boolean): void {
    this.o.net.isolate(id, on);
    if (on) this.raftNet?.cut(id);
    else if (this.replicas.get(id)?.up) this.raftNet?.heal(id);
  }

  endpointsOf(path: string): string[] {
    return this.o.topology.byPath.get(path)?.replicas.map((r) => r.id) ?? [];
  }

  /** The process dies: its streams break, its memory is gone; its storage (Raft cells) stays. */
  crash(id: string): void {
    const rep = this.replicas.get(id);
    if (!rep || !rep.up) return;
    rep.up = false;
    this.o.net.setDown(id, true);
    this.raftNet?.cut(id);
    rep.cell.parent?.close();
    rep.cell.close();
    this.stopping.set(
      id,
      rep.cell.ledgerLog.close().catch(() => undefined),
    );
  }

  /** A new process on the same storage (once the old one has let go of it). */
  restart(id: string): void {
    const rep = this.replicas.get(id);
    if (!rep || rep.up) return;
    const stopping = this.stopping.get(id);
    if (stopping) {
      this.stopping.delete(id);
      void stopping.then(() => this.restart(id));
      return;
    }
    this.o.net.setDown(id, false);
    this.raftNet?.heal(id);
    rep.up = true;
    rep.skewMs = 0;
    rep.cell = this.build(rep);
  }

  close(): void {
    for (const rep of this.replicas.values()) {
      if (!rep.up) continue;
      rep.cell.parent?.close();
      rep.cell.close();
      void rep.cell.ledgerLog.close();
    }
  }
}

function asCall<T>(call: ServerEnd<never, never>): T {
  return call as unknown as T;
}

function seeded(rng: Rng): () => number {
  const r = rng.fork();
  return () => r.next();
}
