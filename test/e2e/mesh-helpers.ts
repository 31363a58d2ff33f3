// Shared setup for the mesh integration tests: the example hierarchy (15
// cells, four tiers) on loopback, and instrumented simulated agents.
import { credentials } from '@grpc/grpc-js';
import { AgentServiceClient } from '../../src/gen/meshlb/v1/agent.js';
import { startMesh, type MeshHarness } from '../../src/dev/harness.js';
import { SimAgent, type SimAgentOptions } from '../../src/dev/sim-agent.js';
import type { CellOptions } from '../../src/mesh/types.js';
import { seededRandom } from '../../src/policies/index.js';
import { parseTopology } from '../../src/topology/parse.js';

export const TEST_TOPOLOGY = parseTopology(`
name: test
tiers:
  global: { policy: global-geo }
  region: { policy: region-wrr }
  zone: { policy: zone-least-conn }
  node: { policy: node-score }
addressing: { host: 127.0.0.1, basePort: 7100 }
cells:
  name: /
  children:
    - name: eu
      labels: { location: eu-west }
      children:
        - { name: west-1a, children: [{ name: n1 }, { name: n2 }] }
        - { name: west-1b, children: [{ name: n1 }, { name: n2 }] }
    - name: us
      labels: { location: us-east }
      children:
        - { name: east-1a, children: [{ name: n1 }, { name: n2 }] }
        - { name: east-1b, children: [{ name: n1 }, { name: n2 }] }
`);

export const SEED = Number(process.env.MESHLB_TEST_SEED ?? 20261122);

export interface TestMesh {
  mesh: MeshHarness;
  agents: SimAgent[];
  addAgent(node: string, o: Partial<SimAgentOptions> & { agentId: string }): Promise<SimAgent>;
  close(): Promise<void>;
}

export async function startTestMesh(opts: CellOptions = {}, topology = TEST_TOPOLOGY): Promise<TestMesh> {
  const mesh = await startMesh(topology, {
    seed: SEED,
    heartbeatIntervalMs: 100,
    // Generous against CPU starvation on a shared 2-core CI machine; tests of
    // heartbeat loss still finish in a couple of seconds.
    heartbeatTimeoutMs: 1500,
    summaryIntervalMs: 100,
    ...opts,
  });
  const clients = new Map<string, AgentServiceClient>();
  const agents: SimAgent[] = [];
  let n = 0;
  return {
    mesh,
    agents,
    async addAgent(node, o) {
      let client = clients.get(node);
      if (!client)
        clients.set(node, (client = new AgentServiceClient(mesh.address(node), credentials.createInsecure())));
      const a = new SimAgent({
        address: mesh.address(node),
        kinds: ['echo'],
        slots: 2,
        heartbeatIntervalMs: 100,
        random: seededRandom(SEED + n++),
        client,
        ...o,
      });
      agents.push(a);
      await a.start();
      return a;
    },
    async close() {
      for (const a of agents) a.kill();
      for (const c of clients.values()) c.close();
      await mesh.close();
    },
  };
}
