// Declared run times over the real mesh: a node that has measured nothing yet
// places by what SDK agents declare (AgentOptions.expectedRunMs), so a burst
// at a cold node fills the fast agent's slots instead of trying each agent
// one task at a time (which sends some of the burst to the slow one).
import { afterEach, describe, expect, it } from 'vitest';
import { Agent, seededRandom } from '../../src/agent/index.js';
import { MeshClient, TaskState } from '../../src/client/index.js';
import { startMesh, type MeshHarness } from '../../src/dev/harness.js';
import { parseTopology } from '../../src/topology/parse.js';
import { chainTopologyYaml } from '../../src/topology/chain.js';
import { waitFor } from '../helpers/wait.js';

const SEED = Number(process.env.MESHLB_TEST_SEED ?? 290290);
const TOPOLOGY = parseTopology(chainTopologyYaml({ name: 'speed-chain', basePort: 7300 }));
const NODE = '/r/z/n1';

describe(`a cold node and declared run times (seed ${SEED})`, () => {
  let mesh: MeshHarness | undefined;
  let client: MeshClient | undefined;
  const agents: Agent[] = [];

  afterEach(async () => {
    for (const a of agents) a.close();
    agents.length = 0;
    client?.close();
    await mesh?.close();
  });

  it('sends a burst to the agent that declares itself fast, none to the slow one', async () => {
    mesh = await startMesh(TOPOLOGY, { seed: SEED, heartbeatIntervalMs: 100, summaryIntervalMs: 100 });
    const running = new Map<string, number>();
    const gates: (() => void)[] = [];
    for (const [id, ms] of [
      ['quick', 5],
      ['sluggish', 400],
    ] as const) {
      const a = new Agent({
        address: mesh.address(NODE),
        agentId: id,
        slots: 4,
        expectedRunMs: ms,
        random: seededRandom(SEED + agents.length),
      }).handle('work', () => {
        running.set(id, (running.get(id) ?? 0) + 1);
        return new Promise<void>((resolve) => gates.push(resolve)); // held until the test has looked
      });
      agents.push(a);
      await a.start();
    }
    await mesh.ready();
    client = new MeshClient({ address: mesh.address(NODE), deadlineMs: 10_000 });
    const items = await client.submitBatch(Array.from({ length: 4 }, () => ({ kind: 'work' })));
    expect(items.every((i) => i.ok)).toBe(true);
    await waitFor(() => (running.get('quick') ?? 0) === 4, { timeoutMs: 10_000, what: "4 tasks on quick's 4 slots" });
    expect(running.get('sluggish') ?? 0).toBe(0);
    for (const g of gates.splice(0)) g();
    const done = await Promise.all(items.map((i) => client!.waitForResult(i.taskId, { timeoutMs: 10_000 })));
    expect(done.map((t) => [t.state, t.result?.agentId])).toEqual(
      Array.from({ length: 4 }, () => [TaskState.TASK_STATE_COMPLETED, 'quick']),
    );
  });
});
