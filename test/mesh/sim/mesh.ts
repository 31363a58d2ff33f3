// The whole mesh in one process on virtual time: every replica of every cell
// is a real Cell wired by the product's own wireCell (agent sessions, child
// links, parent link), its streams on the simulated network, its timers on
// the VirtualScheduler. Only sockets, the clock and (for Raft cells) the disk
// are simulated.
import { pino } from 'pino';
import { OpenRequest, OpenResponse } from '../../../src/gen/meshlb/v1/link.js';
import { Cell } from '../../../src/mesh/cell.js';
import { meshOf, type MeshIdentity } from '../../../src/mesh/mesh-identity.js';
import type { LinkDialer } from '../../../src/mesh/parent-link.js';
import { wireCell } from '../../../src/mesh/replica.js';
import type { Scheduler } from '../../../src/mesh/scheduler.js';
import type { CellOptions } from '../../../src/mesh/types.js';
import type { VirtualScheduler } from '../../../src/mesh/virtual-scheduler.js';
import type { CellSpec, Topology } from '../../../src/topology/types.js';
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
  /** The cell's log for a replicated cell (Raft on the simulated network); absent: one replica leading alone. */
  readonly logFor?: (r: SimReplica) => CellOptions['replicatedLog'];
  /** Called with every cell built (at the start and after a restart): the checker watches its ledger. */
  readonly onCell?: (r: SimReplica) => void;
  /** Log lines of the cells (verbose runs); silent otherwise. */
  readonly logLevel?: string;
}

export class SimMesh {
  readonly replicas = new Map<string, SimReplica>();
  readonly mesh: MeshIdentity;

  constructor(private readonly o: MeshOptions) {
    this.mesh = meshOf(o.topology);
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
    const scheduler: Scheduler = {
      now: () => vs.now() + rep.skewMs,
      setTimer: (ms, fn) => vs.setTimer(ms, fn),
      defer: (fn) => vs.defer(fn),
    };
    const log = pino({ level: this.o.logLevel ?? 'silent', base: { cell: rep.spec.path, replica: rep.id } });
    const factory = this.o.logFor?.(rep);
    const cell = new Cell(topology, rep.spec, rep.replica, {
      ...this.o.cellOptions,
      scheduler,
      random: seeded(rng),
      log,
      ...(factory ? { replicatedLog: factory } : {}),
    });
    const dial: LinkDialer = (address) => ({
      call: net.open(rep.id, address, 'link', OpenRequest, OpenResponse) as never,
      close: () => undefined,
    });
    const parent = topology.byPath.get(rep.spec.parent);
    wireCell(cell, () => parent?.replicas.map((r) => r.id) ?? [], dial);
    rep.cell = cell;
    this.o.onCell?.(rep);
    cell.start();
    return cell;
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

  endpointsOf(path: string): string[] {
    return this.o.topology.byPath.get(path)?.replicas.map((r) => r.id) ?? [];
  }

  /** The process dies: its streams break, its memory is gone; its storage (Raft cells) stays. */
  crash(id: string): void {
    const rep = this.replicas.get(id);
    if (!rep || !rep.up) return;
    rep.up = false;
    this.o.net.setDown(id, true);
    rep.cell.parent?.close();
    rep.cell.close();
    void rep.cell.ledgerLog.close();
  }

  /** A new process on the same storage. */
  restart(id: string): void {
    const rep = this.replicas.get(id);
    if (!rep || rep.up) return;
    this.o.net.setDown(id, false);
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
