// When summaries go up a link, over real gRPC on loopback: a chain of four
// cells with one agent. With the periodic summary out of the way (a long
// interval), tasks one at a time must cost no summary per task — the child
// sends one only when the parent's credit view drifts by an eighth of the
// slots — and accepted acks ride with those summaries; nothing is lost and
// the parent's credit never exceeds what is really free below; the node's
// picker is not rebuilt per result.
import { credentials } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentServiceClient } from '../../src/gen/meshlb/v1/agent.js';
import { Durability, TaskSpec, TaskState } from '../../src/gen/meshlb/v1/task.js';
import { startMesh, type MeshHarness } from '../../src/dev/harness.js';
import { SimAgent } from '../../src/dev/sim-agent.js';
import { parseTopology } from '../../src/topology/parse.js';
import { chainTopologyYaml } from '../../src/topology/chain.js';
import { waitFor } from '../helpers/wait.js';

const CHAIN = parseTopology(chainTopologyYaml({ basePort: 7300, nodes: ['n'], regionLabels: { location: 'eu-west' } }));
const SLOTS = 64;

describe('summaries and acks on a link', () => {
  let mesh: MeshHarness;
  let agent: SimAgent;
  let agentClient: AgentServiceClient;

  beforeAll(async () => {
    mesh = await startMesh(CHAIN, { seed: 5, summaryIntervalMs: 60_000, prefetchRatio: 0 });
    agentClient = new AgentServiceClient(mesh.address('/r/z/n'), credentials.createInsecure());
    agent = new SimAgent({ address: '', agentId: 'a1', kinds: ['k'], slots: SLOTS, client: agentClient });
    await agent.start();
    await mesh.ready();
    // Every level has seen the agent's slots.
    await waitFor(() => mesh.replicas.get('/')!.cell.children!.links.get('/r')!.credits('k') === SLOTS, {
      what: 'root credit',
    });
  });

  afterAll(async () => {
    agent?.end();
    agentClient?.close();
    await mesh?.close();
  });

  it('tasks one at a time cost no summary each, and credit stays exact', async () => {
    const root = mesh.replicas.get('/')!.cell;
    const links = ['/', '/r', '/r/z'].map((p) => [...mesh.replicas.get(p)!.cell.children!.links.values()][0]!);
    const seq0 = links.map((l) => l.summary!.seq);
    const node = mesh.replicas.get('/r/z/n')!.cell.dispatcher;
    const rebuilds0 = node.rebuilds;
    const t0 = Date.now();
    const N = 40;
    for (let i = 0; i < N; i++) {
      const [o] = await root.submit([TaskSpec.fromPartial({ kind: 'k', durability: Durability.DURABILITY_NONE })]);
      await waitFor(() => root.ledger.get(o!.id)!.state === TaskState.TASK_STATE_COMPLETED, {
        what: `task ${i} completed`,
      });
      // Never more credit than slots really free below (all free between tasks).
      for (const l of links) expect(l.credits('k')).toBeLessThanOrEqual(SLOTS);
    }
    const sent = links.map((l, i) => l.summary!.seq - seq0[i]!);
    // Before: two summaries per task per link (one after the ack, one after the result).
    // Now: one each time the parent's view is off by SLOTS/8 = 8 slots, i.e. about N/8.
    for (const n of sent) expect(n).toBeLessThanOrEqual(N / 4);
    // The held acks went out with those summaries: at most the acks since the last one are pending.
    for (const l of links) expect(l.sent.size).toBeLessThan(SLOTS / 8 + 1);
    expect(agent.maxHeld).toBeLessThanOrEqual(SLOTS);
    // A result hands its slot back to the node's live picker: rebuilds come from the
    // 250 ms refresh only, not one per result (that would be N).
    expect(node.rebuilds - rebuilds0).toBeLessThanOrEqual(2 + Math.ceil((Date.now() - t0) / 250));
    expect(root.ledger.counters.completed).toBe(N);
  });
});
