// The mesh's metric families: names, help, labels, buckets. What is counted
// on a hot path (tasks, latencies, link messages) is a SeriesCounter or
// SeriesHistogram (series.ts: a handle per cell, no allocation per count);
// what is a level (queue depth, agents, leadership, Raft state) is a
// prom-client Gauge read from the cells when scraped (`collect`), so the mesh
// does nothing for it. Every family carries a `cell` label: `meshlb dev` runs
// every cell in one process.
import { Counter, Gauge, type Registry } from 'prom-client';
import { SeriesCounter, SeriesHistogram } from './series.js';

/** Seconds: sub-millisecond hops on loopback up to tasks of tens of seconds. */
export const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
/** Items per link message (a batch is at most maxBatchItems, 512 by default). */
export const BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024];

/** The gauges, each read from the cells at scrape time. */
export const GAUGES = {
  queueDepth: ['queue_depth', 'Tasks queued in the cell (home tasks waiting for an attempt, forwarded tasks)'],
  inFlight: ['in_flight', 'Attempts this cell sent on (to a child, an agent or the parent) with no result yet'],
  agentsConnected: ['agents_connected', 'Agent streams open at a node cell'],
  childLinks: ['child_links_connected', 'Child cells linked'],
  leader: ['is_leader', '1 if this replica leads its cell (decides, dispatches), else 0'],
  raftTerm: ['raft_term', "Raft term of this replica of the cell's group"],
  raftCommitIndex: ['raft_commit_index', 'Highest log index this replica knows committed'],
  raftAppliedIndex: ['raft_applied_index', "Highest log index applied to this replica's ledger"],
  raftCommitLag: [
    'raft_commit_lag',
    "Entries in this replica's log not yet known committed (last index - commit index)",
  ],
  raftApplyLag: ['raft_apply_lag', 'Committed entries not yet applied here (commit index - applied index)'],
  raftLogEntries: ['raft_log_entries', 'Entries in the log since the last snapshot'],
} as const;

export type GaugeName = keyof typeof GAUGES;

export interface MeshFamilies {
  /** Tasks accepted at their home cell. */
  readonly tasksSubmitted: SeriesCounter;
  /** Terminal outcomes recorded at the home cell; status = completed|failed|cancelled|dead_lettered. */
  readonly tasksCompleted: SeriesCounter;
  /** Attempts after the first started at the home cell (a lapsed lease, a failed or refused attempt). */
  readonly tasksRetried: SeriesCounter;
  /** Requests and forwarded dispatches refused; reason = the gRPC status, snake case (invalid_argument, ...). */
  readonly rejected: SeriesCounter;
  /** Agent and link streams a cell ended with an error; stream = agent|link, reason = StreamEnd (src/mesh/meter.ts). */
  readonly streamsEnded: SeriesCounter;
  /** Arrival at the cell (submit, at the home) -> agent start, seconds. */
  readonly dispatchLatency: SeriesHistogram;
  /** Submit -> outcome recorded at the home; arrival -> result back at the cells an attempt passed. Seconds. */
  readonly taskLatency: SeriesHistogram;
  /** gRPC messages on links; direction = up|down, link = parent|child|agent. */
  readonly linkMessages: SeriesCounter;
  /** Items per message written on a link (tasks, results, acks coalesced into one gRPC message). */
  readonly linkBatchSize: SeriesHistogram;
  /** Leaders this replica has seen its cell's Raft group take (elections and transfers). */
  readonly raftLeaderChanges: SeriesCounter;
  readonly gauges: Readonly<Record<GaugeName, Gauge<'cell'>>>;
  /** Targets (agents at a node, children elsewhere) per circuit breaker state; state = closed|open|half_open. */
  readonly breakers: Gauge<'cell' | 'state'>;
  /** Times a cell's circuit breakers opened (trips, and re-trips after a failed probe). */
  readonly breakerTrips: Counter<'cell'>;
}

/** Fills the breaker families from the cells when scraped. */
export type BreakerCollector = (states: Gauge<'cell' | 'state'>, trips: Counter<'cell'>) => void;

/**
 * Register the families in `registry`. `collect(name, gauge)` fills a gauge
 * each time it is scraped.
 */
export function createFamilies(
  registry: Registry,
  p: string,
  collect: (name: GaugeName, gauge: Gauge<'cell'>) => void,
  collectBreakers: BreakerCollector = () => undefined,
): MeshFamilies {
  const registers = [registry];
  const counter = (name: string, help: string, labels: readonly string[]) =>
    new SeriesCounter(`${p}${name}`, help, labels, registers);
  const histogram = (name: string, help: string, labels: readonly string[], buckets: readonly number[]) =>
    new SeriesHistogram(`${p}${name}`, help, labels, buckets, registers);
  const gauges = {} as Record<GaugeName, Gauge<'cell'>>;
  for (const key of Object.keys(GAUGES) as GaugeName[]) {
    const [name, help] = GAUGES[key];
    gauges[key] = new Gauge({
      name: `${p}${name}`,
      help,
      labelNames: ['cell'],
      registers,
      collect(this: Gauge<'cell'>) {
        collect(key, this);
      },
    });
  }
  return {
    tasksSubmitted: counter('tasks_submitted_total', 'Tasks accepted at their home cell', ['cell']),
    tasksCompleted: counter('tasks_completed_total', 'Terminal task outcomes recorded at the home cell', [
      'cell',
      'status',
    ]),
    tasksRetried: counter('tasks_retried_total', 'Attempts after the first started at the home cell', ['cell']),
    rejected: counter('requests_rejected_total', 'Requests and forwarded dispatches refused, by gRPC status', [
      'cell',
      'reason',
    ]),
    streamsEnded: counter('streams_ended_total', 'Agent and link streams the cell ended with an error, by reason', [
      'cell',
      'stream',
      'reason',
    ]),
    dispatchLatency: histogram(
      'dispatch_latency_seconds',
      'Submit (at the home; arrival at other cells) to agent start',
      ['cell'],
      LATENCY_BUCKETS,
    ),
    taskLatency: histogram(
      'task_latency_seconds',
      'Submit to outcome recorded (at the home); arrival to result back (at other cells)',
      ['cell'],
      LATENCY_BUCKETS,
    ),
    linkMessages: counter('link_messages_total', 'gRPC messages on links', ['cell', 'direction', 'link']),
    linkBatchSize: histogram(
      'link_batch_size',
      'Items coalesced per message written on a link',
      ['cell', 'link'],
      [...BATCH_BUCKETS],
    ),
    raftLeaderChanges: counter('raft_leader_changes_total', "Leaders seen taking the cell's Raft group", ['cell']),
    gauges,
    ...breakerFamilies(p, registers, collectBreakers),
  };
}

/** Read at scrape time from each cell's breakers (the counter is the cell's own count, set on collect). */
function breakerFamilies(
  p: string,
  registers: Registry[],
  collect: BreakerCollector,
): Pick<MeshFamilies, 'breakers' | 'breakerTrips'> {
  // Each family's collect fills both (idempotent: reset, then set), so either may be scraped first.
  const both = (): void => collect(breakers, trips);
  const breakers: Gauge<'cell' | 'state'> = new Gauge({
    name: `${p}breakers`,
    help: 'Targets of a cell (agents at a node, child cells elsewhere) per circuit breaker state',
    labelNames: ['cell', 'state'] as const,
    registers,
    collect: both,
  });
  const trips: Counter<'cell'> = new Counter({
    name: `${p}breaker_trips_total`,
    help: "Times a cell's circuit breakers opened (a trip, or a failed probe while half-open)",
    labelNames: ['cell'],
    registers,
    collect: both,
  });
  return { breakers, breakerTrips: trips };
}
