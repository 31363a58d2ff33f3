// The cells a set of metrics counts: each cell gets a CellMeter (the mesh's
// port for counts, src/mesh/meter.ts) holding its series handles, listens to
// its ledger for task outcomes, and is read for the gauges when scraped.
//
// Counted once per cell, not per replica: task counts and task latency are
// taken where the ledger applies a command, only on the replica that leads
// the cell then (a follower applies the same commands, and a replica
// replaying its log at start does not lead yet); links, results passing back
// and dispatches exist only on the leader. So summing a family over a cell's
// replicas gives the cell's figure. Gauges are each replica's own view.
import { status } from '@grpc/grpc-js';
import type { Counter, Gauge } from 'prom-client';
import { MeshFailure, TaskState, type TaskResult } from '../gen/meshlb/v1/task.js';
import type {
  CellMeter,
  EndedStream,
  LinkKind,
  LinkMeter,
  MeteredCell,
  MeterFactory,
  StreamEnd,
} from '../mesh/meter.js';
import type { TaskRecord } from '../mesh/ledger.js';
import type { GaugeName, MeshFamilies } from './metric-families.js';
import type { CounterSeries, HistogramSeries } from './series.js';

/** What each gauge reads of a cell; undefined: the cell has no such thing (no agents, no Raft group). */
const READ: Record<GaugeName, (c: MeteredCell) => number | undefined> = {
  queueDepth: (c) => c.queue.size,
  inFlight: (c) => c.inFlight(),
  agentsConnected: (c) => c.agents?.byId.size,
  childLinks: (c) => c.children?.links.size,
  leader: (c) => (c.leading ? 1 : 0),
  raftTerm: (c) => c.ledgerLog.replication()?.term,
  raftCommitIndex: (c) => c.ledgerLog.replication()?.commit,
  raftAppliedIndex: (c) => c.ledgerLog.replication()?.applied,
  raftCommitLag: (c) => {
    const r = c.ledgerLog.replication();
    return r && Math.max(0, r.lastIndex - r.commit);
  },
  raftApplyLag: (c) => {
    const r = c.ledgerLog.replication();
    return r && Math.max(0, r.commit - r.applied);
  },
  raftLogEntries: (c) => c.ledgerLog.replication()?.logEntries,
};

export class CellMeters {
  private readonly cells = new Set<MeteredCell>();

  constructor(private readonly f: MeshFamilies) {}

  /** For CellOptions.meter: count this cell until it closes. */
  readonly factory: MeterFactory = (cell) => {
    this.cells.add(cell);
    return new PromCellMeter(cell, this.f, () => this.cells.delete(cell));
  };

  /** Fill a gauge from the cells open now. */
  collect(name: GaugeName, gauge: Gauge<'cell'>): void {
    gauge.reset();
    const read = READ[name];
    for (const [cell, c] of this.byPath()) {
      const v = read(c);
      if (v !== undefined) gauge.set({ cell }, v);
    }
  }

  /** Breaker states and trips per cell (the trips counter holds each cell's own count). */
  collectBreakers(states: Gauge<'cell' | 'state'>, trips: Counter<'cell'>): void {
    states.reset();
    trips.reset();
    for (const [cell, c] of this.byPath()) {
      if (!c.breakers) continue;
      const n = c.breakers.counts();
      states.set({ cell, state: 'closed' }, n.closed);
      states.set({ cell, state: 'open' }, n.open);
      states.set({ cell, state: 'half_open' }, n.halfOpen);
      trips.inc({ cell }, c.breakers.trips);
    }
  }

  /** One replica per cell path (several share a process in tests): the one that leads, else the first. */
  byPath(): Map<string, MeteredCell> {
    const out = new Map<string, MeteredCell>();
    for (const c of this.cells) {
      const seen = out.get(c.path);
      if (!seen || (!seen.leading && c.leading)) out.set(c.path, c);
    }
    return out;
  }
}

const STATUS_LABEL: ReadonlyMap<TaskState, string> = new Map([
  [TaskState.TASK_STATE_COMPLETED, 'completed'],
  [TaskState.TASK_STATE_FAILED, 'failed'],
  [TaskState.TASK_STATE_CANCELLED, 'cancelled'],
  [TaskState.TASK_STATE_DEAD_LETTERED, 'dead_lettered'],
]);

/** How a link kind's two directions read from this cell: what it writes and what it reads. */
const DIRECTIONS: Record<LinkKind, { sent: string; received: string }> = {
  parent: { sent: 'up', received: 'down' },
  child: { sent: 'down', received: 'up' },
  agent: { sent: 'down', received: 'up' },
};

/** One link kind of one cell; its series are made on first use, so a cell shows only the links it has. */
class PromLinkMeter implements LinkMeter {
  private out: CounterSeries | undefined;
  private in: CounterSeries | undefined;
  private size: HistogramSeries | undefined;

  constructor(
    private readonly cell: string,
    private readonly link: LinkKind,
    private readonly f: MeshFamilies,
  ) {}

  sent(items: number): void {
    const { cell, link } = this;
    this.out ??= this.f.linkMessages.series({ cell, link, direction: DIRECTIONS[link].sent });
    this.size ??= this.f.linkBatchSize.series({ cell, link });
    this.out.inc();
    this.size.observe(items);
  }

  received(): void {
    const { cell, link } = this;
    this.in ??= this.f.linkMessages.series({ cell, link, direction: DIRECTIONS[link].received });
    this.in.inc();
  }
}

class PromCellMeter implements CellMeter {
  readonly parent: LinkMeter;
  readonly child: LinkMeter;
  readonly agent: LinkMeter;
  private readonly submitted: CounterSeries;
  private readonly retried: CounterSeries;
  private readonly completed = new Map<TaskState, CounterSeries>();
  private readonly rejections = new Map<status, CounterSeries>();
  private readonly ends = new Map<string, CounterSeries>();
  private readonly dispatchLatency: HistogramSeries;
  private readonly taskLatency: HistogramSeries;
  private readonly unsubscribe: () => void;
  private closed = false;

  constructor(
    private readonly cell: MeteredCell,
    private readonly f: MeshFamilies,
    private readonly detach: () => void,
  ) {
    const path = cell.path;
    this.parent = new PromLinkMeter(path, 'parent', f);
    this.child = new PromLinkMeter(path, 'child', f);
    this.agent = new PromLinkMeter(path, 'agent', f);
    this.submitted = f.tasksSubmitted.series({ cell: path });
    this.retried = f.tasksRetried.series({ cell: path });
    for (const [state, label] of STATUS_LABEL)
      this.completed.set(state, f.tasksCompleted.series({ cell: path, status: label }));
    this.dispatchLatency = f.dispatchLatency.series({ cell: path });
    this.taskLatency = f.taskLatency.series({ cell: path });
    cell.ledger.onChange((rec) => this.changed(rec));
    cell.ledger.onTerminal((rec) => this.ended(rec));
    // A replica of a Raft group (one with a data dir, even alone) shows its leader changes, from 0.
    if (cell.ledgerLog.replication() !== undefined) {
      const changes = f.raftLeaderChanges.series({ cell: path });
      this.unsubscribe = cell.ledgerLog.onLeaderChange((ev) => {
        if (ev.leader !== '') changes.inc();
      });
    } else this.unsubscribe = () => undefined;
  }

  /** Every ledger change: a task accepted (QUEUED at attempt 0), or an attempt after the first started. */
  private changed(rec: TaskRecord): void {
    if (this.closed || !this.cell.leading) return;
    if (rec.state === TaskState.TASK_STATE_QUEUED && rec.attempt === 0) this.submitted.inc();
    else if (rec.state === TaskState.TASK_STATE_DISPATCHED && rec.attempt > 1) this.retried.inc();
  }

  private ended(rec: TaskRecord): void {
    if (this.closed || !this.cell.leading) return;
    this.completed.get(rec.state)?.inc();
    this.taskLatency.observe(Math.max(0, rec.updatedMs - rec.createdMs) / 1000);
  }

  resultBack(arrivedMs: number, home: boolean, r: TaskResult): void {
    const now = this.cell.scheduler.now();
    // An agent's own result (the mesh's failures name no agent): it started run_micros before it ended.
    if (r.agentId !== '' && r.meshFailure === MeshFailure.MESH_FAILURE_UNSPECIFIED) {
      this.dispatchLatency.observe(Math.max(0, now - r.runMicros / 1000 - arrivedMs) / 1000);
    }
    // At the home, task latency is taken when the outcome is recorded (ended), once per task.
    if (!home) this.taskLatency.observe(Math.max(0, now - arrivedMs) / 1000);
  }

  rejected(code: status): void {
    let s = this.rejections.get(code);
    if (!s) {
      s = this.f.rejected.series({ cell: this.cell.path, reason: reasonLabel(code) });
      this.rejections.set(code, s);
    }
    s.inc();
  }

  streamEnded(stream: EndedStream, reason: StreamEnd): void {
    const key = `${stream}/${reason}`;
    let s = this.ends.get(key);
    if (!s) {
      s = this.f.streamsEnded.series({ cell: this.cell.path, stream, reason });
      this.ends.set(key, s);
    }
    s.inc();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.unsubscribe();
    this.detach();
  }
}

/** `RESOURCE_EXHAUSTED` -> `resource_exhausted`. */
function reasonLabel(code: status): string {
  const name = status[code] as string | undefined;
  return name ? name.toLowerCase() : `code_${code}`;
}
