// A task of the simulation (one attempt at a time) and an agent, plus the
// port through which cells report to the run's home side (sim.ts).

import type { Priority, QueueTask } from '../../src/queue/index.js';
import type { TimerHandle } from '../../src/mesh/scheduler.js';
import type { VirtualScheduler } from '../../src/mesh/virtual-scheduler.js';
import type { SimCell } from './cells.js';
import type { Picker } from '../../src/policies/index.js';
import type { AgentSpec, SimSettings, TaskSpec } from './types.js';

/** What the cells report to the run (sim.ts): the task's home side. */
export interface Home {
  readonly sched: VirtualScheduler;
  readonly settings: SimSettings;
  readonly baseMs: Readonly<Record<string, number>>;
  readonly tenantWeights: Readonly<Record<string, number>>;
  /** An attempt ended on an agent (ok or failed). */
  result(t: SimTask, ok: boolean, now: number): void;
  /** An attempt was lost (agent or cell died, queue refused it): retry from home. */
  lost(t: SimTask, now: number): void;
  expired(t: SimTask, cell: SimCell): void;
  /** The home cell popped the task and sent it on. */
  served(t: SimTask, now: number): void;
  started(t: SimTask, a: SimAgent, now: number): void;
  /** The attempt reached a node cell (tracing only). */
  atNode(t: SimTask, node: SimCell, now: number): void;
  /** The cell's picker routed the attempt to `to` (tracing only: `picker.explain` still sees the pick). */
  routed(cell: SimCell, t: SimTask, picker: Picker, to: string, now: number): void;
  violation(): void;
  /** A child cell sent its parent a summary. */
  summarySent(): void;
}

export class SimTask implements QueueTask {
  readonly id: string;
  readonly kind: string;
  readonly priority: Priority;
  readonly tenant: string;
  readonly deadline: number | undefined;
  readonly affinityKey: string;
  attempt = 1;
  /** When it last entered the home queue, and its wait ticket (-1: not waiting). */
  enqAt = 0;
  waitSeq = -1;
  /** Cells whose subtree holds the current attempt (their `held` counts it). */
  path: SimCell[] = [];
  exclude: string[] | undefined = undefined;
  /** The sequence number of its last dispatch from a parent to a child cell (views.ts). */
  sendSeq = 0;
  timer: TimerHandle | undefined = undefined;
  agent: SimAgent | undefined = undefined;
  startedAt = 0;
  runMs = 0;
  done = false;
  /** The home popped it this attempt (counted once for tenant shares). */
  homeServed = false;
  /** Its lane's effective rank when the home popped it (for the inversion check). */
  laneRankAtServe = Infinity;

  constructor(readonly spec: TaskSpec) {
    this.id = spec.id;
    this.kind = spec.kind;
    this.priority = spec.priority;
    this.tenant = spec.tenant;
    this.deadline = spec.deadlineMs !== undefined ? spec.at + spec.deadlineMs : undefined;
    this.affinityKey = (spec.affinity ?? []).map((l) => `${l.key}=${l.value}`).join(',');
  }
}

/** The mesh's Ewma (agent-session.ts): seeded by its first sample. */
export class Ewma {
  private seeded = false;
  constructor(
    private readonly alpha: number,
    public value: number,
  ) {}
  add(x: number): void {
    if (!this.seeded) {
      this.value = x;
      this.seeded = true;
    } else this.value += this.alpha * (x - this.value);
  }
}

export class SimAgent {
  inFlight = 0;
  readonly heldByKind = new Map<string, number>();
  up = true;
  upSince = 0;
  upMs = 0;
  busyMs = 0;
  latency = new Ewma(0.1, 0);
  /** Per kind, for an agent of several kinds (the node's per-kind EWMA: src/mesh/agent-speed.ts). */
  readonly latencyByKind = new Map<string, Ewma>();
  success = new Ewma(0.1, 1);
  readonly running = new Set<SimTask>();
  readonly labelSet: ReadonlySet<string>;

  constructor(
    readonly spec: AgentSpec,
    readonly node: SimCell,
  ) {
    this.labelSet = new Set(spec.labels.map((l) => l.key + '\0' + l.value));
  }
}
