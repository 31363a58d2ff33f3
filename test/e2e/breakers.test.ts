// Circuit breakers on a real mesh over loopback (four tiers in one process,
// SimAgents on gRPC): an agent that fails every task has its breaker opened at
// its node, a node whose only agent fails every task has its breaker opened at
// its zone; both show in ListAgents, GetCell, the summary and /metrics; work
// goes to the healthy agent meanwhile; once the agents heal, probes close the
// breakers and the agent takes work again. No task is lost: every one ends
// COMPLETED.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMetrics, type MeshMetrics } from '../../src/admin/metrics.js';
import { MeshClient } from '../../src/client/index.js';
import { startMesh, type MeshHarness } from '../../src/dev/harness.js';
import { SimAgent } from '../../src/dev/sim-agent.js';
import { BreakerState } from '../../src/gen/meshlb/v1/admin.js';
import { TaskState } from '../../src/gen/meshlb/v1/task.js';
import { seededRandom } from '../../src/policies/index.js';
import { parseTopology } from '../../src/topology/parse.js';
import { adminAt, type Admin } from '../admin/admin-client.js';
import { waitFor } from '../helpers/wait.js';

const SEED = Number(process.env.MESHLB_TEST_SEED ?? 20261206);

const TOPOLOGY = parseTopology(`
name: breakers
defaults: { maxAttempts: 50 }
breakers: { consecutiveFailures: 3, errorRate: 0, cooldownMs: 400, halfOpenProbes: 2, slowStartMs: 300 }
addressing: { host: 127.0.0.1, basePort: 7600 }
cells:
  name: /
  children:
    - name: eu
      children:
        - name: a
          # A child is judged by its error rate here: n1's one failing agent does not make n1 bad.
          breaker: { consecutiveFailures: 0, errorRate: 0.8, minRequests: 8, windowMs: 2000 }
          children:
            - { name: n1 }
            # No breakers of its own: its failing agent makes n2 fail, for the zone to judge.
            - { name: n2, breaker: { enabled: false } }
`);

const N1 = '/eu/a/n1';
const N2 = '/eu/a/n2';

describe(`circuit breakers over a real mesh (seed ${SEED})`, () => {
  let mesh: MeshHarness;
  let metrics: MeshMetrics;
  let client: MeshClient;
  let n1: Admin;
  let zone: Admin;
  const agents: SimAgent[] = [];
  const submitted: string[] = [];

  const agent = async (node: string, agentId: string, failureRate: number): Promise<SimAgent> => {
    const a = new SimAgent({
      address: mesh.address(node),
      agentId,
      kinds: ['work'],
      slots: 2,
      serviceTimeMs: 5,
      failureRate,
      heartbeatIntervalMs: 100,
      random: seededRandom(SEED + agents.length),
    });
    agents.push(a);
    await a.start();
    return a;
  };
  /** SimAgent reads its failure rate on each task: a test may heal it. */
  const setFailureRate = (a: SimAgent, rate: number): void => {
    (a.opts as { failureRate?: number }).failureRate = rate;
  };
  const rootState = (id: string): TaskState | undefined => mesh.replicas.get('/')!.cell.ledger.get(id)?.state;
  const runBatch = async (n: number, what: string): Promise<void> => {
    const items = await client.submitBatch(Array.from({ length: n }, () => ({ kind: 'work' })));
    const ids = items.map((i) => i.taskId);
    submitted.push(...ids);
    await waitFor(() => ids.every((id) => rootState(id) === TaskState.TASK_STATE_COMPLETED), {
      timeoutMs: 20_000,
      what,
    });
  };
  const agentBreaker = async (id: string) =>
    (await n1.call('listAgents')).agents.find((a) => a.agentId === id)!.breaker!;

  beforeAll(async () => {
    metrics = createMetrics();
    mesh = await startMesh(TOPOLOGY, {
      seed: SEED,
      heartbeatIntervalMs: 100,
      heartbeatTimeoutMs: 1500,
      summaryIntervalMs: 50,
      backoffBaseMs: 20,
      backoffMaxMs: 100,
      meter: metrics.meter,
    });
    await agent(N1, 'good', 0);
    await agent(N1, 'bad', 1);
    await agent(N2, 'bad2', 1);
    await mesh.ready();
    client = new MeshClient({ address: mesh.address('/') });
    n1 = adminAt(mesh.address(N1));
    zone = adminAt(mesh.address('/eu/a'));
  }, 30_000);

  afterAll(async () => {
    n1?.close();
    zone?.close();
    client?.close();
    for (const a of agents) a.kill();
    await mesh?.close();
  });

  it('failing targets trip their breakers (node: the agent; zone: the node) and work goes to the healthy agent', async () => {
    await runBatch(40, '40 tasks completed while two agents fail every task');
    const bad = await agentBreaker('bad');
    expect(bad.trips).toBeGreaterThanOrEqual(1);
    expect((await agentBreaker('good')).trips).toBe(0);
    const cell = await zone.call('getCell');
    const child = cell.children.find((c) => c.cell === N2)!;
    expect(child.breaker!.trips).toBeGreaterThanOrEqual(1);
    expect(cell.children.find((c) => c.cell === N1)!.breaker!.trips).toBe(0);
    // The good agent ran every task; the failing ones ran a few before their breakers opened.
    const [good, badAgent, bad2] = agents;
    expect(good!.completed).toBe(40);
    expect(badAgent!.failed + bad2!.failed).toBeLessThan(40);
    const text = await metrics.registry.metrics();
    expect(text).toMatch(new RegExp(`meshlb_breaker_trips_total\\{cell="${N1}"\\} [1-9]`));
    expect(text).toMatch(/meshlb_breaker_trips_total\{cell="\/eu\/a"\} [1-9]/);
    expect(text).toContain(`meshlb_breakers{cell="${N1}",state="closed"}`);
  });

  it('an open agent shows in ListAgents and the node summary; healed, probes close it and it takes work again', async () => {
    // Still failing: open, or half-open with its probes about to fail.
    expect((await agentBreaker('bad')).state).not.toBe(BreakerState.BREAKER_STATE_CLOSED);
    const summary = (await zone.call('getCell')).children.find((c) => c.cell === N1)!.summary!;
    expect(summary.breakersOpen).toBe(1);
    const [, badAgent, bad2] = agents;
    setFailureRate(badAgent!, 0);
    setFailureRate(bad2!, 0);
    const before = badAgent!.completed;
    let rounds = 0;
    await waitFor(
      async () => {
        await runBatch(8, `round ${++rounds} after healing`);
        const b = await agentBreaker('bad');
        return b.state === BreakerState.BREAKER_STATE_CLOSED && badAgent!.completed > before + 2 && b;
      },
      { timeoutMs: 20_000, what: 'bad agent probed, closed and taking work', intervalMs: 50 },
    );
    await waitFor(
      async () => {
        await runBatch(4, 'zone breaker round');
        const c = (await zone.call('getCell')).children.find((x) => x.cell === N2)!;
        return c.breaker!.state === BreakerState.BREAKER_STATE_CLOSED && c.summary!.breakersOpen === 0;
      },
      { timeoutMs: 20_000, what: 'n2 closed at the zone, its own breakers closed', intervalMs: 50 },
    );
    // No task lost: every one submitted ended COMPLETED.
    expect(submitted.filter((id) => rootState(id) !== TaskState.TASK_STATE_COMPLETED)).toEqual([]);
  });
});
