import { describe, expect, it } from 'vitest';
import { status } from '@grpc/grpc-js';
import { MAX_SERIES } from '../../src/admin/queue-metrics.js';
import { createMetrics, metrics, startMetricsServer } from '../../src/admin/metrics.js';
import { MeshFailure, ResultStatus, TaskSpec, type TaskResult } from '../../src/gen/meshlb/v1/task.js';
import { Ledger } from '../../src/mesh/ledger.js';
import { SoleLeader, type ReplicationStatus } from '../../src/mesh/leadership.js';
import type { MeteredCell } from '../../src/mesh/meter.js';
import type { FlowConfig } from '../../src/flow/flow-state.js';

/** A cell as a meter sees it, with every figure set by the test. */
function fakeCell(
  path: string,
  raft?: ReplicationStatus,
  flow?: FlowConfig,
  backlog = new Map<string, number>(),
  oldestWaiting = new Map<string, number>(),
) {
  const ledger = new Ledger({ retention: 100, defaultMaxAttempts: 3, ...(flow ? { flow } : {}) });
  const log = new SoleLeader(ledger, `${path}#1`);
  let leaderChange: ((ev: { leader: string; leaderAddress: string; term: number; self: boolean }) => void) | undefined;
  const ledgerLog = Object.assign(log, {
    replication: () => raft,
    onLeaderChange: (fn: typeof leaderChange) => {
      leaderChange = fn;
      return () => (leaderChange = undefined);
    },
  });
  let now = 1_000;
  const queued: (readonly [{ kind: string; tenant: string }, number])[] = [];
  const routed: { kind: string; tenant: string; via?: unknown }[] = [];
  const cell = {
    path,
    leading: true as boolean,
    scheduler: { now: () => now },
    ledger,
    ledgerLog,
    queue: { size: 7, withEnqueuedAt: () => queued },
    inFlight: () => 3,
    routes: { values: () => routed },
    agents: { byId: { size: 2 } },
    children: undefined,
    home: {
      flow: {
        backlog: () => backlog,
        oldestWaiting: () => oldestWaiting,
        tenants: { waitingOf: (t: string) => backlog.get(`t:${t}`) ?? 0 },
      },
    },
  } satisfies MeteredCell;
  return {
    cell,
    ledger,
    queued,
    routed,
    setNow: (t: number) => (now = t),
    leaderChanged: (leader: string) => leaderChange?.({ leader, leaderAddress: '', term: 2, self: false }),
  };
}

const agentResult = (runMicros: number): TaskResult => ({
  taskId: 't',
  attempt: 1,
  status: ResultStatus.RESULT_STATUS_OK,
  output: Buffer.alloc(0),
  error: '',
  agentId: 'a1',
  nodeCell: '/r/z/n1',
  runMicros,
  meshFailure: MeshFailure.MESH_FAILURE_UNSPECIFIED,
  retryAfterMs: 0,
});

describe('metrics', () => {
  it('counts into series handles and renders them as Prometheus text', async () => {
    const m = createMetrics();
    m.tasksSubmitted.series({ cell: '/' }).inc(3);
    m.tasksCompleted.series({ cell: '/', status: 'completed' }).inc(2);
    const lat = m.dispatchLatency.series({ cell: '/' });
    lat.observe(0.002);
    lat.observe(0.3);
    m.linkMessages.series({ cell: '/eu', direction: 'up', link: 'parent' }).inc();
    const text = await m.registry.metrics();
    expect(text).toContain('meshlb_tasks_submitted_total{cell="/"} 3');
    expect(text).toContain('meshlb_tasks_completed_total{cell="/",status="completed"} 2');
    expect(text).toContain('meshlb_dispatch_latency_seconds_bucket{cell="/",le="0.001"} 0');
    expect(text).toContain('meshlb_dispatch_latency_seconds_bucket{cell="/",le="0.0025"} 1');
    expect(text).toContain('meshlb_dispatch_latency_seconds_bucket{cell="/",le="0.5"} 2');
    expect(text).toContain('meshlb_dispatch_latency_seconds_bucket{cell="/",le="+Inf"} 2');
    expect(text).toContain('meshlb_dispatch_latency_seconds_sum{cell="/"} 0.302');
    expect(text).toContain('meshlb_dispatch_latency_seconds_count{cell="/"} 2');
    expect(text).toContain('meshlb_link_messages_total{cell="/eu",direction="up",link="parent"} 1');
    // One series per label set, however often it is asked for.
    m.tasksSubmitted.series({ cell: '/' }).inc();
    expect(await m.registry.metrics()).toContain('meshlb_tasks_submitted_total{cell="/"} 4');
    m.registry.resetMetrics();
    expect(await m.registry.metrics()).toContain('meshlb_tasks_submitted_total{cell="/"} 0');
  });

  it('keeps independent registries apart and the process one stable', () => {
    const a = createMetrics();
    const b = createMetrics();
    a.tasksSubmitted.series({ cell: '/' }).inc();
    expect(b.registry).not.toBe(a.registry);
    expect(metrics()).toBe(metrics());
  });

  it('reads a cell: gauges at scrape, ledger outcomes while leading, results passing back, refusals', async () => {
    const m = createMetrics();
    const raft = {
      role: 'leader',
      term: 4,
      leader: 'x',
      leaderAddress: '',
      commit: 10,
      applied: 8,
      lastIndex: 12,
      logEntries: 12,
    };
    const f = fakeCell('/r/z/n1', raft);
    const meter = m.meter(f.cell);
    f.ledger.apply({
      type: 'accepted',
      tasks: [{ id: 't', spec: TaskSpec.fromPartial({ kind: 'k' }), homeCell: '/r/z/n1', atMs: 1_000 }],
    });
    f.ledger.apply({ type: 'dispatched', refs: [{ id: 't', attempt: 1 }], atMs: 1_001 });
    f.setNow(1_050);
    // Submitted at 1000, the agent ran it for 20 ms of the 50: it started 30 ms after submit.
    meter.resultBack(1_000, true, agentResult(20_000));
    f.ledger.apply({ type: 'completed', result: agentResult(20_000), atMs: 1_050 });
    meter.rejected(status.RESOURCE_EXHAUSTED);
    meter.agent.sent(3);
    meter.agent.received();
    f.leaderChanged('x');
    const text = await m.registry.metrics();
    for (const line of [
      'meshlb_tasks_submitted_total{cell="/r/z/n1"} 1',
      'meshlb_tasks_completed_total{cell="/r/z/n1",status="completed"} 1',
      'meshlb_tasks_completed_total{cell="/r/z/n1",status="failed"} 0',
      'meshlb_tasks_retried_total{cell="/r/z/n1"} 0',
      'meshlb_dispatch_latency_seconds_sum{cell="/r/z/n1"} 0.03',
      'meshlb_task_latency_seconds_sum{cell="/r/z/n1"} 0.05',
      'meshlb_task_latency_seconds_count{cell="/r/z/n1"} 1',
      'meshlb_requests_rejected_total{cell="/r/z/n1",reason="resource_exhausted"} 1',
      'meshlb_link_messages_total{cell="/r/z/n1",link="agent",direction="down"} 1',
      'meshlb_link_messages_total{cell="/r/z/n1",link="agent",direction="up"} 1',
      'meshlb_link_batch_size_sum{cell="/r/z/n1",link="agent"} 3',
      'meshlb_queue_depth{cell="/r/z/n1"} 7',
      'meshlb_in_flight{cell="/r/z/n1"} 3',
      'meshlb_agents_connected{cell="/r/z/n1"} 2',
      'meshlb_is_leader{cell="/r/z/n1"} 1',
      'meshlb_raft_term{cell="/r/z/n1"} 4',
      'meshlb_raft_commit_index{cell="/r/z/n1"} 10',
      'meshlb_raft_applied_index{cell="/r/z/n1"} 8',
      'meshlb_raft_commit_lag{cell="/r/z/n1"} 2',
      'meshlb_raft_apply_lag{cell="/r/z/n1"} 2',
      'meshlb_raft_log_entries{cell="/r/z/n1"} 12',
      'meshlb_raft_leader_changes_total{cell="/r/z/n1"} 1',
    ]) {
      expect(text).toContain(line);
    }
    // No child links, no parent link: no series for them.
    expect(text).not.toContain('meshlb_child_links_connected{');
    expect(text).not.toContain('link="parent"');

    // A follower applies the same commands: not counted again.
    f.cell.leading = false;
    f.ledger.apply({
      type: 'accepted',
      tasks: [{ id: 'u', spec: TaskSpec.fromPartial({ kind: 'k' }), homeCell: '/r/z/n1', atMs: 1_100 }],
    });
    const follower = await m.registry.metrics();
    expect(follower).toContain('meshlb_tasks_submitted_total{cell="/r/z/n1"} 1');
    expect(follower).toContain('meshlb_is_leader{cell="/r/z/n1"} 0');

    // Closed: its gauges go, its counts stay.
    meter.close();
    const closed = await m.registry.metrics();
    expect(closed).not.toContain('meshlb_queue_depth{cell="/r/z/n1"}');
    expect(closed).toContain('meshlb_tasks_submitted_total{cell="/r/z/n1"} 1');
  });

  it('serves GET /metrics on loopback and 404 elsewhere', async () => {
    const m = createMetrics();
    m.meter(fakeCell('/eu/a/n1').cell);
    const srv = await startMetricsServer(0, { registry: m.registry });
    try {
      expect(srv.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
      const res = await fetch(srv.url);
      expect(res.status).toBe(200);
      expect(await res.text()).toContain('meshlb_agents_connected{cell="/eu/a/n1"} 2');
      const other = await fetch(srv.url.replace('/metrics', '/admin'));
      expect(other.status).toBe(404);
    } finally {
      await srv.close();
    }
  });

  it('has per-key flow gauges at the cell that counts keys: in flight, limit, waiting, oldest wait', async () => {
    const m = createMetrics();
    const flow: FlowConfig = {
      defaultTimeoutMs: 1000,
      spec: {
        lingerMs: 0,
        concurrency: new Map([['cust', { limit: 3, strategy: 'queue' as const }]]),
        rateLimits: new Map(),
        tenants: new Map([['gold', { weight: 2, min: 1, max: 3 }]]),
      },
    };
    const f = fakeCell(
      '/',
      undefined,
      flow,
      new Map([
        ['c:cust', 4],
        ['r:llm', 2],
        ['t:gold', 5],
      ]),
      new Map([
        ['c:cust', -500],
        ['r:llm', 250],
      ]),
    );
    m.meter(f.cell);
    const spec = TaskSpec.fromPartial({ kind: 'k', concurrencyKey: 'cust', tenant: 'gold' });
    f.ledger.apply({ type: 'accepted', tasks: ['a', 'b'].map((id) => ({ id, spec, homeCell: '/', atMs: 1 })) });
    f.ledger.apply({
      type: 'dispatched',
      refs: [
        { id: 'a', attempt: 1 },
        { id: 'b', attempt: 1 },
      ],
      atMs: 2,
    });
    const text = await m.registry.metrics();
    for (const line of [
      'meshlb_flow_in_flight{cell="/",key="cust"} 2',
      'meshlb_flow_limit{cell="/",key="cust"} 3',
      'meshlb_flow_waiting{cell="/",key="cust"} 4',
      'meshlb_flow_rate_waiting{cell="/",key="llm"} 2',
      'meshlb_flow_oldest_wait_seconds{cell="/",key="cust"} 1.5',
      'meshlb_flow_rate_oldest_wait_seconds{cell="/",key="llm"} 0.75',
      'meshlb_tenant_in_flight{cell="/",tenant="gold"} 2',
      'meshlb_tenant_min_slots{cell="/",tenant="gold"} 1',
      'meshlb_tenant_max_slots{cell="/",tenant="gold"} 3',
      'meshlb_tenant_waiting{cell="/",tenant="gold"} 5',
    ])
      expect(text).toContain(line);
  });

  it('has queue gauges per kind and tenant: backlog, oldest wait, in flight; past MAX_SERIES pairs the rest is "(other)"', async () => {
    const m = createMetrics();
    const f = fakeCell('/r/z/n1');
    f.setNow(10_000);
    f.queued.push([{ kind: 'gpu', tenant: 'acme' }, 7_500], [{ kind: 'gpu', tenant: 'acme' }, 9_000]);
    f.queued.push([{ kind: 'cpu', tenant: 'free' }, 9_900]);
    f.routed.push({ kind: 'gpu', tenant: 'acme', via: { type: 'agent' } }, { kind: 'gpu', tenant: 'acme' });
    m.meter(f.cell);
    let text = await m.registry.metrics();
    for (const line of [
      'meshlb_queue_backlog{cell="/r/z/n1",kind="gpu",tenant="acme"} 2',
      'meshlb_queue_oldest_wait_seconds{cell="/r/z/n1",kind="gpu",tenant="acme"} 2.5',
      'meshlb_queue_in_flight{cell="/r/z/n1",kind="gpu",tenant="acme"} 1',
      'meshlb_queue_backlog{cell="/r/z/n1",kind="cpu",tenant="free"} 1',
      'meshlb_queue_oldest_wait_seconds{cell="/r/z/n1",kind="cpu",tenant="free"} 0.1',
      'meshlb_queue_in_flight{cell="/r/z/n1",kind="cpu",tenant="free"} 0',
    ])
      expect(text).toContain(line);

    // A tenant per request cannot grow the series without bound.
    const m2 = createMetrics();
    const g = fakeCell('/');
    for (let i = 0; i < MAX_SERIES + 50; i++) g.queued.push([{ kind: 'k', tenant: `t${i}` }, 1_000]);
    m2.meter(g.cell);
    text = await m2.registry.metrics();
    const backlog = text.split('\n').filter((l) => l.startsWith('meshlb_queue_backlog{'));
    expect(backlog).toHaveLength(MAX_SERIES + 1);
    expect(text).toContain('meshlb_queue_backlog{cell="/",kind="k",tenant="(other)"} 50');
  });
});
