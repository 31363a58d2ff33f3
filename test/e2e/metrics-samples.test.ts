// Metrics that count: a real mesh serves /metrics over HTTP, real tasks run
// through SDK agents, and the scraped VALUES are checked — task counts by
// outcome, retries, refusals, latency histograms at every tier, queue and
// links, leadership and each cell's Raft group.
//
// 1. The four tiers in one process (the harness), every cell a one-replica
//    Raft group on its own data dir, counted into one registry served by
//    startMetricsServer on a free loopback port.
// 2. `meshlb serve --metrics-port` as a real process: the CLI wires the
//    process's metrics to its cell.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMetrics, startMetricsServer, type MetricsServer } from '../../src/admin/metrics.js';
import { Agent, seededRandom } from '../../src/agent/index.js';
import { Supervisor } from '../../src/cli/supervisor.js';
import { MeshClient, MeshClientError, TaskState } from '../../src/client/index.js';
import { startMesh, type MeshHarness } from '../../src/dev/harness.js';
import { chainTopologyYaml } from '../../src/topology/chain.js';
import { parseTopology } from '../../src/topology/parse.js';
import { cellSlug } from '../../src/topology/paths.js';
import { freePort, serveArgs } from '../helpers/process.js';
import { waitFor } from '../helpers/wait.js';

const SEED = Number(process.env.MESHLB_TEST_SEED ?? 20261215);

const TOPOLOGY = parseTopology(chainTopologyYaml({ name: 'metrics', basePort: 7600 }));
const CELLS = ['/', '/r', '/r/z', '/r/z/n1'] as const;
const NODE = '/r/z/n1';

/** One sample of a Prometheus text body: the line named `name` whose labels include `labels`. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || !line.startsWith(name)) continue;
    const m = /^([a-z_:]+)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = new Map<string, string>();
    for (const l of (m[2] ?? '').matchAll(/([a-z_]+)="((?:[^"\\]|\\.)*)"/g)) have.set(l[1]!, l[2]!);
    if (Object.entries(labels).every(([k, v]) => have.get(k) === v)) return Number(m[3]);
  }
  return undefined;
}

async function scrape(url: string): Promise<string> {
  const res = await fetch(url);
  expect(res.status).toBe(200);
  return res.text();
}

describe(`metrics scraped from a real mesh under load (seed ${SEED})`, () => {
  const dir = mkdtempSync(join(tmpdir(), 'meshlb-metrics-'));
  const m = createMetrics();
  let mesh: MeshHarness;
  let server: MetricsServer;
  let client: MeshClient;
  const agents: Agent[] = [];
  /** Attempts the agents ran, by kind. */
  const ran = { echo: 0, flaky: 0, doomed: 0 };

  beforeAll(async () => {
    mesh = await startMesh(TOPOLOGY, {
      seed: SEED,
      heartbeatIntervalMs: 100,
      heartbeatTimeoutMs: 1500,
      summaryIntervalMs: 100,
      backoffBaseMs: 10,
      backoffMaxMs: 50,
      meter: m.meter,
      // A replica with a data dir is a Raft group, here of one replica per cell.
      perCell: (path) => ({ dataDir: join(dir, cellSlug(path)) }),
    });
    server = await startMetricsServer(0, { registry: m.registry });
    for (let i = 0; i < 2; i++) {
      const a = new Agent({
        address: mesh.address(NODE),
        agentId: `agent-${i}`,
        slots: 4,
        random: seededRandom(SEED + i),
        backoff: { initialMs: 10, maxMs: 100 },
      })
        .handle('echo', (t) => {
          ran.echo++;
          return t.payload;
        })
        .handle('flaky', (t) => {
          ran.flaky++;
          if (t.attempt === 1) throw new Error('first attempts fail');
          return 'ok';
        })
        .handle('doomed', () => {
          ran.doomed++;
          throw new Error('always fails');
        });
      agents.push(a);
      await a.start();
    }
    await mesh.ready();
    client = new MeshClient({ address: mesh.address('/'), deadlineMs: 10_000 });
  }, 60_000);

  afterAll(async () => {
    for (const a of agents) a.close();
    client?.close();
    await server?.close();
    await mesh?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('counts what the tasks did, at every tier, with the values they must have', async () => {
    const inputs = [
      ...Array.from({ length: 40 }, (_, i) => ({ kind: 'echo', payload: `e${i}` })),
      ...Array.from({ length: 6 }, () => ({ kind: 'flaky', payload: 'f', maxAttempts: 3 })),
      ...Array.from({ length: 3 }, () => ({ kind: 'doomed', payload: 'd', maxAttempts: 1 })),
    ];
    const items = await client.submitBatch(inputs);
    expect(items.every((i) => i.ok)).toBe(true);
    const done = await Promise.all(items.map((i) => client.waitForResult(i.taskId, { timeoutMs: 20_000 })));
    const states = done.map((t) => t.state);
    expect(states.filter((s) => s === TaskState.TASK_STATE_COMPLETED)).toHaveLength(46);
    expect(states.filter((s) => s === TaskState.TASK_STATE_FAILED)).toHaveLength(3);
    // Refused: one bad spec in a batch, one bad unary submit.
    const [bad] = await client.submitBatch([{ kind: '' }]);
    expect(bad!.ok).toBe(false);
    await expect(client.submit({ kind: '' })).rejects.toBeInstanceOf(MeshClientError);
    const attempts = ran.echo + ran.flaky + ran.doomed;
    expect(attempts).toBe(40 + 12 + 3);

    // Results and the last summaries settle: every cell back to idle.
    const text = await waitFor(
      async () => {
        const t = await scrape(server.url);
        const idle = CELLS.every(
          (cell) => sample(t, 'meshlb_in_flight', { cell }) === 0 && sample(t, 'meshlb_queue_depth', { cell }) === 0,
        );
        return idle && sample(t, 'meshlb_raft_apply_lag', { cell: '/' }) === 0 ? t : undefined;
      },
      { timeoutMs: 10_000, what: 'every cell idle' },
    );
    const at = (name: string, labels: Record<string, string>) => sample(text, name, labels);

    // The home ("/") recorded every task once, by outcome, and the retries of the flaky ones.
    expect(at('meshlb_tasks_submitted_total', { cell: '/' })).toBe(49);
    expect(at('meshlb_tasks_completed_total', { cell: '/', status: 'completed' })).toBe(46);
    expect(at('meshlb_tasks_completed_total', { cell: '/', status: 'failed' })).toBe(3);
    expect(at('meshlb_tasks_completed_total', { cell: '/', status: 'dead_lettered' })).toBe(0);
    expect(at('meshlb_tasks_retried_total', { cell: '/' })).toBe(6);
    expect(at('meshlb_requests_rejected_total', { cell: '/', reason: 'invalid_argument' })).toBe(2);
    // Nothing was homed below the root.
    expect(at('meshlb_tasks_submitted_total', { cell: NODE })).toBe(0);

    // Task latency: once per task at the home; per attempt where results passed back.
    expect(at('meshlb_task_latency_seconds_count', { cell: '/' })).toBe(49);
    for (const cell of CELLS) {
      // Every attempt an agent ran came back through every tier: dispatch latency at each.
      expect(at('meshlb_dispatch_latency_seconds_count', { cell }), cell).toBe(attempts);
      expect(at('meshlb_dispatch_latency_seconds_bucket', { cell, le: '+Inf' }), cell).toBe(attempts);
      expect(at('meshlb_dispatch_latency_seconds_sum', { cell }), cell).toBeGreaterThan(0);
      if (cell !== '/') expect(at('meshlb_task_latency_seconds_count', { cell }), cell).toBe(attempts);
      expect(at('meshlb_is_leader', { cell }), cell).toBe(1);
      expect(at('meshlb_raft_term', { cell }), cell).toBeGreaterThanOrEqual(1);
      expect(at('meshlb_raft_leader_changes_total', { cell }), cell).toBeGreaterThanOrEqual(1);
      expect(at('meshlb_raft_log_entries', { cell }), cell).toBeGreaterThanOrEqual(1);
    }
    // A tier below a task's arrival sees its agent start no later than the tier above (it got the task later).
    const sum = (name: string, cell: string) => at(`meshlb_${name}_seconds_sum`, { cell })!;
    for (let i = 1; i < CELLS.length; i++) {
      expect(sum('dispatch_latency', CELLS[i]!)).toBeLessThanOrEqual(sum('dispatch_latency', CELLS[i - 1]!));
      if (i > 1) expect(sum('task_latency', CELLS[i]!)).toBeLessThanOrEqual(sum('task_latency', CELLS[i - 1]!));
    }
    // The root's Raft log holds the accepted, dispatched and ended tasks: far more than one entry.
    const commit = at('meshlb_raft_commit_index', { cell: '/' })!;
    expect(commit).toBeGreaterThan(3);
    expect(at('meshlb_raft_applied_index', { cell: '/' })).toBe(commit);
    expect(at('meshlb_raft_commit_lag', { cell: '/' })).toBe(0);

    // Connections, and messages both ways on every link.
    expect(at('meshlb_agents_connected', { cell: NODE })).toBe(2);
    for (const cell of ['/', '/r', '/r/z']) expect(at('meshlb_child_links_connected', { cell }), cell).toBe(1);
    for (const [cell, link] of [
      ['/', 'child'],
      ['/r', 'child'],
      ['/r', 'parent'],
      ['/r/z', 'child'],
      ['/r/z', 'parent'],
      [NODE, 'parent'],
      [NODE, 'agent'],
    ] as const) {
      for (const direction of ['up', 'down']) {
        expect(
          at('meshlb_link_messages_total', { cell, link, direction }),
          `${cell} ${link} ${direction}`,
        ).toBeGreaterThan(0);
      }
    }
    // Written messages carry batches: at least one item each, and all 55 assignments went to agents.
    const batches = at('meshlb_link_batch_size_count', { cell: NODE, link: 'agent' })!;
    expect(batches).toBeGreaterThan(0);
    expect(at('meshlb_link_batch_size_sum', { cell: NODE, link: 'agent' })).toBeGreaterThanOrEqual(attempts);
    expect(at('meshlb_link_batch_size_bucket', { cell: NODE, link: 'agent', le: '+Inf' })).toBe(batches);
  }, 60_000);
});

describe('meshlb serve --metrics-port (real process)', () => {
  const sup = new Supervisor();
  afterAll(() => sup.stopAll(2000));

  it('counts its cell: submitted, dead-lettered, leader, Raft term, process metrics', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'meshlb-serve-metrics-'));
    try {
      const address = `127.0.0.1:${await freePort()}`;
      const metricsPort = await freePort();
      const topo = join(dir, 'topology.yaml');
      // No agents anywhere: the root dead-letters its tasks after unplaceableTimeoutMs.
      writeFileSync(
        topo,
        `name: one\ndefaults: { unplaceableTimeoutMs: 200 }\ncells:\n  name: /\n  replicas: [{ address: "${address}" }]\n`,
      );
      sup.start({
        name: 'serve',
        command: process.execPath,
        args: serveArgs(topo, '/', ['--data-dir', join(dir, 'data'), '--metrics-port', String(metricsPort)]),
      });
      const url = `http://127.0.0.1:${metricsPort}/metrics`;
      await waitFor(
        async () => {
          try {
            return sample(await scrape(url), 'meshlb_is_leader', { cell: '/' }) === 1;
          } catch {
            return false;
          }
        },
        { timeoutMs: 30_000, what: 'serve leading, /metrics up' },
      );
      const client = new MeshClient({ address, deadlineMs: 10_000 });
      try {
        const items = await client.submitBatch([{ kind: 'nobody' }, { kind: 'nobody' }, { kind: 'nobody' }]);
        expect(items.every((i) => i.ok)).toBe(true);
        const done = await Promise.all(items.map((i) => client.waitForResult(i.taskId, { timeoutMs: 10_000 })));
        expect(done.every((t) => t.state === TaskState.TASK_STATE_DEAD_LETTERED)).toBe(true);
      } finally {
        client.close();
      }
      const text = await scrape(url);
      expect(sample(text, 'meshlb_tasks_submitted_total', { cell: '/' })).toBe(3);
      expect(sample(text, 'meshlb_tasks_completed_total', { cell: '/', status: 'dead_lettered' })).toBe(3);
      expect(sample(text, 'meshlb_task_latency_seconds_count', { cell: '/' })).toBe(3);
      expect(sample(text, 'meshlb_queue_depth', { cell: '/' })).toBe(0);
      expect(sample(text, 'meshlb_raft_term', { cell: '/' })).toBeGreaterThanOrEqual(1);
      expect(sample(text, 'meshlb_raft_commit_index', { cell: '/' })).toBeGreaterThanOrEqual(3);
      expect(sample(text, 'meshlb_process_cpu_seconds_total')).toBeGreaterThan(0);
    } finally {
      await sup.stopAll(2000);
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
