// The link's two transports (src/mesh/link-dialer.ts) over real sockets on
// 127.0.0.1, each forced per replica (linkTransport): tasks flow down a chain
// of four tiers and their results come back; when the root restarts on the
// same port, its child's link breaks and comes back by itself, and tasks flow
// again; with mTLS (security.tls) both link with the replica certificates. The
// lean http2 client and grpc-js behave the same.
import { afterEach, describe, expect, it } from 'vitest';
import { MeshClient } from '../../src/client/index.js';
import { TaskState } from '../../src/gen/meshlb/v1/task.js';
import { startMesh, type MeshHarness } from '../../src/dev/harness.js';
import { SimAgent } from '../../src/dev/sim-agent.js';
import { LINK_TRANSPORTS } from '../../src/mesh/link-dialer.js';
import { Replica } from '../../src/mesh/replica.js';
import { chainTopologyYaml } from '../../src/topology/chain.js';
import { parseTopology } from '../../src/topology/parse.js';
import { seededRandom } from '../../src/util/rng.js';
import { waitFor } from '../helpers/wait.js';
import { perCellSecurity, secureTopology } from '../security/fixture.js';

const SEED = Number(process.env.MESHLB_TEST_SEED ?? 20261206);
const CHAIN = parseTopology(
  chainTopologyYaml({ name: 'transport-chain', defaults: { summaryIntervalMs: 100, linkTimeoutMs: 1500 } }),
);

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function runTasks(address: string, root: () => Replica, n: number): Promise<void> {
  const client = new MeshClient({ address });
  try {
    const items = await client.submitBatch(Array.from({ length: n }, (_, i) => ({ kind: 'echo', payload: `p${i}` })));
    expect(items.every((i) => i.ok)).toBe(true);
    await waitFor(
      () => items.every((i) => root().cell.ledger.get(i.taskId)?.state === TaskState.TASK_STATE_COMPLETED),
      {
        timeoutMs: 15_000,
        what: `${n} tasks completed`,
      },
    );
  } finally {
    client.close();
  }
}

describe(`the link over each transport (seed ${SEED})`, () => {
  for (const transport of LINK_TRANSPORTS) {
    it(`${transport}: tasks through four tiers; the link comes back after the root restarts`, async () => {
      const mesh: MeshHarness = await startMesh(CHAIN, { seed: SEED, perCell: () => ({ linkTransport: transport }) });
      cleanups.push(() => mesh.close());
      await mesh.ready();
      const node = mesh.nodes[0]!;
      const agent = new SimAgent({
        address: mesh.address(node),
        agentId: 'a1',
        kinds: ['echo'],
        slots: 4,
        heartbeatIntervalMs: 100,
        random: seededRandom(SEED),
      });
      cleanups.push(() => agent.kill());
      await agent.start();
      for (const r of mesh.replicas.values()) if (r.cell.parent) expect(r.cell.parent.stats.transport).toBe(transport);
      const rootAddress = mesh.address('/');
      let root = mesh.replicas.get('/')!;
      await runTasks(rootAddress, () => root, 200);

      // The root goes away and comes back on the same port (an empty ledger: it kept it in memory).
      const child = mesh.replicas.get('/r')!.cell;
      const opened = child.parent!.stats.opened;
      await root.close(0);
      await waitFor(() => !child.parent!.connected, { what: 'the child to see its parent gone' });
      const port = Number(rootAddress.split(':').pop());
      const again = new Replica({
        topology: CHAIN,
        cell: '/',
        host: '127.0.0.1',
        port,
        seed: SEED,
        summaryIntervalMs: 100,
      });
      await again.start();
      cleanups.push(() => again.close(0));
      root = again;
      await waitFor(() => child.parent!.connected && again.cell.children!.links.size === 1, {
        timeoutMs: 15_000,
        what: 'the child linked to the restarted root',
      });
      expect(child.parent!.stats.opened).toBeGreaterThan(opened);
      expect(child.parent!.stats.transport).toBe(transport);
      await runTasks(rootAddress, () => root, 100);
    }, 60_000);
  }

  for (const transport of LINK_TRANSPORTS) {
    it(`${transport}: links over mTLS with the replica certificates`, async () => {
      const R = 'replicas: [{ address: "127.0.0.1:{port}" }]';
      const t = await secureTopology(`name: /\n${R}\nchildren:\n  - { name: r, ${R} }\n`, { auth: false });
      const sec = perCellSecurity(t);
      const mesh = await startMesh(t.topology, {
        seed: SEED,
        summaryIntervalMs: 100,
        perCell: (path) => ({ ...sec(path), linkTransport: transport }),
      });
      cleanups.push(() => mesh.close());
      await mesh.ready(15_000);
      const link = mesh.replicas.get('/r')!.cell.parent!;
      expect(link.connected).toBe(true);
      expect(link.stats.transport).toBe(transport);
    }, 60_000);
  }
});
