// The agent SDK's two transports (src/agent/transport.ts) in a real mesh over
// sockets on 127.0.0.1: agents forced onto each transport run tasks submitted
// at the root of four tiers; when their node replica restarts on the same
// port they come back by themselves and run tasks again. The node's server is
// grpc-js either way.
import { afterEach, describe, expect, it } from 'vitest';
import { Agent } from '../../src/agent/index.js';
import { AGENT_TRANSPORTS } from '../../src/agent/transport.js';
import { MeshClient } from '../../src/client/index.js';
import { TaskState } from '../../src/gen/meshlb/v1/task.js';
import { startMesh } from '../../src/dev/harness.js';
import { Replica } from '../../src/mesh/replica.js';
import { chainTopologyYaml } from '../../src/topology/chain.js';
import { parseTopology } from '../../src/topology/parse.js';
import { seededRandom } from '../../src/util/rng.js';
import { waitFor } from '../helpers/wait.js';

const SEED = Number(process.env.MESHLB_TEST_SEED ?? 20261206);
const CHAIN = parseTopology(
  chainTopologyYaml({
    name: 'agent-transport-chain',
    defaults: { summaryIntervalMs: 100, heartbeatIntervalMs: 100, linkTimeoutMs: 1500 },
  }),
);

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function runTasks(address: string, root: Replica, n: number, tag: string): Promise<void> {
  const client = new MeshClient({ address });
  try {
    const items = await client.submitBatch(
      Array.from({ length: n }, (_, i) => ({ kind: 'echo', payload: `${tag}${i}` })),
    );
    expect(items.every((i) => i.ok)).toBe(true);
    await waitFor(() => items.every((i) => root.cell.ledger.get(i.taskId)?.state === TaskState.TASK_STATE_COMPLETED), {
      timeoutMs: 15_000,
      what: `${n} ${tag} tasks completed`,
    });
  } finally {
    client.close();
  }
}

describe(`agents over each transport in a mesh (seed ${SEED})`, () => {
  for (const transport of AGENT_TRANSPORTS) {
    it(`${transport}: SDK agents run tasks through four tiers and come back after their node restarts`, async () => {
      const mesh = await startMesh(CHAIN, { seed: SEED });
      cleanups.push(() => mesh.close());
      await mesh.ready();
      const nodePath = mesh.nodes[0]!;
      const nodeAddress = mesh.address(nodePath);
      const ran = new Map<string, number>();
      const agents = Array.from({ length: 3 }, (_, i) => {
        const a = new Agent({
          address: nodeAddress,
          agentId: `${transport}-${i}`,
          slots: 4,
          transport,
          backoff: { initialMs: 20, maxMs: 200 },
          random: seededRandom(SEED + i),
        });
        a.handle('echo', (t) => {
          ran.set(a.agentId, (ran.get(a.agentId) ?? 0) + 1);
          return t.text();
        });
        cleanups.push(() => a.close());
        return a;
      });
      await Promise.all(agents.map((a) => a.start()));
      for (const a of agents) expect(a.transport).toBe(transport);
      const root = mesh.replicas.get('/')!;
      await runTasks(mesh.address('/'), root, 200, 'before');
      expect([...ran.values()].reduce((x, y) => x + y, 0)).toBeGreaterThanOrEqual(200);

      // The node goes away and comes back on the same port, linked to its parent again.
      const node = mesh.replicas.get(nodePath)!;
      const parent = mesh.replicas.get(node.cell.spec.parent!)!;
      await node.close(0);
      await waitFor(() => agents.every((a) => a.state === 'connecting'), { what: 'the agents see their node gone' });
      const again = new Replica({
        topology: CHAIN,
        cell: nodePath,
        host: '127.0.0.1',
        port: Number(nodeAddress.split(':').pop()),
        seed: SEED,
        summaryIntervalMs: 100,
        heartbeatIntervalMs: 100,
        parentAddresses: () => [parent.address],
      });
      await again.start();
      cleanups.push(() => again.close(0));
      await waitFor(() => agents.every((a) => a.state === 'connected') && again.cell.parent?.connected === true, {
        timeoutMs: 15_000,
        what: 'the agents back on the restarted node, and it linked',
      });
      for (const a of agents) expect(a.stats.connects).toBe(2);
      const before = new Map(ran);
      await runTasks(mesh.address('/'), root, 100, 'after');
      expect(agents.filter((a) => (ran.get(a.agentId) ?? 0) > (before.get(a.agentId) ?? 0)).length).toBeGreaterThan(0);
      for (const a of agents) expect(a.stats.refusedOverSlots).toBe(0);
    }, 60_000);
  }
});
