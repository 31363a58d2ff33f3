// Groups of keys over real gRPC through a four-tier chain (docs/flow-control.md):
// a round-robin group's members share the group's limit, and a member that
// submitted one task after another member's twenty runs in turn, not after
// all twenty; a template `tenant:*` gives each tenant its own limit.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent, seededRandom } from '../../src/agent/index.js';
import { MeshClient, TaskState } from '../../src/client/index.js';
import { startMesh, type MeshHarness } from '../../src/dev/harness.js';
import { chainTopologyYaml } from '../../src/topology/chain.js';
import { parseTopology } from '../../src/topology/parse.js';
import type { Topology } from '../../src/topology/types.js';

const SEED = Number(process.env.MESHLB_TEST_SEED ?? 616161);
const base = parseTopology(chainTopologyYaml({ name: 'flow-groups', basePort: 7300 }));
const TOPOLOGY: Topology = {
  ...base,
  flow: {
    lingerMs: 300,
    concurrency: new Map([
      ['customers', { limit: 2, strategy: 'round-robin' as const }],
      ['tenant:*', { limit: 1, strategy: 'queue' as const }],
    ]),
    rateLimits: new Map(),
  },
};

describe(`round-robin concurrency groups over gRPC (seed ${SEED})`, () => {
  let mesh: MeshHarness;
  let client: MeshClient;
  let agent: Agent;
  const order: string[] = [];
  let running = 0;
  let peak = 0;
  /** Concurrency key → running now, and the most at once. */
  const perKey = new Map<string, { now: number; peak: number }>();

  beforeAll(async () => {
    mesh = await startMesh(TOPOLOGY, { seed: SEED, heartbeatIntervalMs: 100, summaryIntervalMs: 100 });
    agent = new Agent({
      address: mesh.address('/r/z/n1'),
      agentId: 'worker',
      slots: 8,
      random: seededRandom(SEED),
      backoff: { initialMs: 10, maxMs: 100 },
    })
      .handle('tenant-job', async (t) => {
        const key = t.payload.toString();
        const k = perKey.get(key) ?? { now: 0, peak: 0 };
        perKey.set(key, k);
        k.peak = Math.max(k.peak, ++k.now);
        peak = Math.max(peak, ++running);
        await new Promise((r) => setTimeout(r, 40));
        running--;
        k.now--;
        return 'ok';
      })
      .handle('job', async (t) => {
        order.push(t.payload.toString());
        peak = Math.max(peak, ++running);
        // Long enough that all of a's tasks are waiting in the gate before b's arrive.
        await new Promise((r) => setTimeout(r, 40));
        running--;
        return 'ok';
      });
    await agent.start();
    await mesh.ready();
    client = new MeshClient({ address: mesh.address('/'), deadlineMs: 10_000 });
  });

  afterAll(async () => {
    agent?.close();
    client?.close();
    await mesh?.close();
  });

  it("shares the group's limit and serves the members in turn", async () => {
    const a = await client.submitBatch(
      Array.from({ length: 20 }, (_, i) => ({ kind: 'job', payload: `a${i}`, concurrencyKey: 'customers:a' })),
    );
    const b = await client.submitBatch(
      Array.from({ length: 2 }, (_, i) => ({ kind: 'job', payload: `b${i}`, concurrencyKey: 'customers:b' })),
    );
    const done = await Promise.all([...a, ...b].map((it) => client.waitForResult(it.taskId, { timeoutMs: 20_000 })));
    expect(done.every((t) => t.state === TaskState.TASK_STATE_COMPLETED)).toBe(true);
    expect(peak).toBeLessThanOrEqual(2);
    // First come first would run b's after all 20 of a's; in turn, b's start among the first few.
    const lastB = Math.max(order.indexOf('b0'), order.indexOf('b1'));
    expect(lastB).toBeLessThan(8);
  });

  it('a template gives each key of its prefix its own limit', async () => {
    peak = 0;
    const items = await client.submitBatch(
      ['tenant:a', 'tenant:b'].flatMap((key) =>
        Array.from({ length: 4 }, () => ({ kind: 'tenant-job', payload: key, concurrencyKey: key })),
      ),
    );
    const done = await Promise.all(items.map((it) => client.waitForResult(it.taskId, { timeoutMs: 20_000 })));
    expect(done.every((t) => t.state === TaskState.TASK_STATE_COMPLETED)).toBe(true);
    expect(perKey.get('tenant:a')?.peak).toBe(1);
    expect(perKey.get('tenant:b')?.peak).toBe(1);
    // Each tenant on its own: the two ran side by side at some point.
    expect(peak).toBe(2);
  });
});
