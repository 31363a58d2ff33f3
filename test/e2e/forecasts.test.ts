// Forecasts and scale recommendations on a real mesh over loopback (four tiers
// in one process, SimAgents on gRPC): load submitted at the root at a low and
// then a high rate; AdminService.GetScaleRecommendations (asked at the root
// replica, for the root and for the node) and /metrics show the forecast rate,
// the agents' service time measured at the node and carried up in summaries,
// and a recommendation that grows with the load. Every task completes.
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMetrics, type MeshMetrics } from '../../src/admin/metrics.js';
import { MeshClient } from '../../src/client/index.js';
import { startMesh, type MeshHarness } from '../../src/dev/harness.js';
import { SimAgent } from '../../src/dev/sim-agent.js';
import type { GetScaleRecommendationsResponse, KindScale } from '../../src/gen/meshlb/v1/admin.js';
import { TaskState } from '../../src/gen/meshlb/v1/task.js';
import { seededRandom } from '../../src/policies/index.js';
import { parseTopology } from '../../src/topology/parse.js';
import { adminAt, type Admin } from '../admin/admin-client.js';
import { waitFor } from '../helpers/wait.js';

const SEED = Number(process.env.MESHLB_TEST_SEED ?? 20261206);

const TOPOLOGY = parseTopology(`
name: forecasts
addressing: { host: 127.0.0.1, basePort: 7700 }
cells:
  name: /
  children:
    - name: eu
      children:
        - name: a
          children: [{ name: n1 }]
`);
const NODE = '/eu/a/n1';
const SERVICE_MS = 20;

describe(`forecasts and scale recommendations over a real mesh (seed ${SEED})`, () => {
  let mesh: MeshHarness;
  let metrics: MeshMetrics;
  let client: MeshClient;
  let admin: Admin;
  const agents: SimAgent[] = [];
  const submitted: string[] = [];

  beforeAll(async () => {
    metrics = createMetrics();
    mesh = await startMesh(TOPOLOGY, {
      seed: SEED,
      heartbeatIntervalMs: 100,
      heartbeatTimeoutMs: 1500,
      summaryIntervalMs: 100,
      meter: metrics.meter,
    });
    for (let i = 0; i < 2; i++) {
      const a = new SimAgent({
        address: mesh.address(NODE),
        agentId: `agent-${i}`,
        kinds: ['echo'],
        slots: 4,
        serviceTimeMs: SERVICE_MS,
        heartbeatIntervalMs: 100,
        random: seededRandom(SEED + i),
      });
      agents.push(a);
      await a.start();
    }
    client = new MeshClient({ address: mesh.address('/') });
    admin = adminAt(mesh.address('/'));
  });

  afterAll(async () => {
    admin?.close();
    client?.close();
    for (const a of agents) a.kill();
    await mesh?.close();
  });

  const echo = (r: GetScaleRecommendationsResponse): KindScale | undefined => r.kinds.find((k) => k.kind === 'echo');
  const at = async (cell: string): Promise<KindScale | undefined> =>
    echo(await admin.call('getScaleRecommendations', { cell }));

  /**
   * Submit `perTick` tasks every 50 ms (a bounded load loop: at most `max`
   * tasks) until `done` says so; returns the last value `done` gave.
   */
  async function load<T>(perTick: number, max: number, done: () => Promise<T | undefined>, what: string): Promise<T> {
    let sent = 0;
    for (;;) {
      const got = await done();
      if (got !== undefined) return got;
      if (sent >= max) throw new Error(`${what}: not seen after ${sent} tasks`);
      const items = await client.submitBatch(Array.from({ length: perTick }, () => ({ kind: 'echo' })));
      submitted.push(...items.map((i) => i.taskId));
      sent += perTick;
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  it('reads a recommendation that grows when the load grows, in the admin API and /metrics', async () => {
    const idle = await admin.call('getScaleRecommendations', { cell: NODE });
    expect(idle).toMatchObject({ cell: NODE, tier: 'node', horizonMs: 400, targetUtilization: 0.7 });
    expect(echo(idle)).toMatchObject({ currentAgents: 2, slotsPerAgent: 4, totalSlots: 8 });

    // About 40 tasks/s: 0.8 busy slots, one agent of 4 slots is plenty.
    const low = await load(
      2,
      400,
      async () => {
        const k = await at('/');
        return k && k.forecastRate > 20 && k.forecastServiceMs > 0 ? k : undefined;
      },
      'a forecast at the root from the low load',
    );
    expect(low.forecastRate).toBeLessThan(120);
    expect(low.recommendedAgents).toBeGreaterThanOrEqual(1);
    expect(low.recommendedAgents).toBeLessThanOrEqual(2);
    // Measured where the agents run (uniform 0.5..1.5 x 20 ms), carried up three tiers.
    expect(low.forecastServiceMs).toBeGreaterThan(SERVICE_MS / 2);
    expect(low.forecastServiceMs).toBeLessThan(SERVICE_MS * 2);

    /** A gauge's value for kind echo in a /metrics text. */
    const gauge = (text: string, name: string, cell: string): number | undefined => {
      const m = new RegExp(`^meshlb_${name}\\{cell="${cell.replace(/\//g, '\\/')}",kind="echo"\\} (\\S+)$`, 'm').exec(
        text,
      );
      return m ? Number(m[1]) : undefined;
    };
    // Up to about 400 tasks/s at the root: 8 busy slots wanted, 8 / (4 x 0.7) -> 3 agents (2 from
    // 140/s, which a CPU-starved run still reaches). The admin API and /metrics are read while the
    // load runs (the forecast falls once it stops).
    const high = await load(
      20,
      4000,
      async () => {
        const k = await at('/');
        if (!k || k.recommendedAgents < 2 || k.recommendedAgents <= low.recommendedAgents) return undefined;
        const text = await metrics.registry.metrics();
        const shown = gauge(text, 'scale_recommended_agents', '/') ?? 0;
        return shown >= 2 && shown > low.recommendedAgents ? { k, text } : undefined;
      },
      'the root recommendation grown by the high load, in the admin API and /metrics',
    );
    expect(high.k.forecastRate).toBeGreaterThan(low.forecastRate);
    expect(high.k.currentAgents).toBe(2);
    const node = await at(NODE);
    expect(node!.forecastServiceMs).toBeGreaterThan(0);
    // Under that load the node offered its parent more queue room than the static half of its slots.
    expect(mesh.replicas.get(NODE)!.cell.forecasts.raised).toBeGreaterThan(0);
    expect(gauge(high.text, 'scale_current_agents', NODE)).toBe(2);
    expect(gauge(high.text, 'forecast_arrival_rate', '/')).toBeGreaterThan(0);
    expect(gauge(high.text, 'forecast_service_seconds', NODE)).toBeGreaterThan(0);

    // Nothing lost on the way.
    const root = mesh.replicas.get('/')!.cell;
    await waitFor(() => submitted.every((id) => root.ledger.get(id)?.state === TaskState.TASK_STATE_COMPLETED), {
      timeoutMs: 60_000,
      what: `all ${submitted.length} tasks completed`,
    });
  });

  it('names an unknown cell NOT_FOUND', async () => {
    const r = await admin.refused('getScaleRecommendations', { cell: '/nowhere' });
    expect(r.code).toBe(status.NOT_FOUND);
  });
});
