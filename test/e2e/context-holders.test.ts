// Agents report the context keys they hold warm (AgentContexts) over real gRPC:
// SDK agents on a node of a four-tier chain, a MeshClient at the root. A key
// goes to the agent that reported it, not to the ring's choice; back to the
// ring once dropped; an agent started with staged keys gets them from its first
// welcome; a report over the limits ends the stream INVALID_ARGUMENT.
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent, seededRandom } from '../../src/agent/index.js';
import { MeshClient, TaskState } from '../../src/client/index.js';
import { startMesh, type MeshHarness } from '../../src/dev/harness.js';
import { AgentServiceClient, type ConnectRequest, type ConnectResponse } from '../../src/gen/meshlb/v1/agent.js';
import { parseTopology } from '../../src/topology/parse.js';
import { chainTopologyYaml } from '../../src/topology/chain.js';
import { waitFor } from '../helpers/wait.js';

const SEED = Number(process.env.MESHLB_TEST_SEED ?? 515151);
const TOPOLOGY = parseTopology(chainTopologyYaml({ name: 'ctx-chain', basePort: 7300 }));
const NODE = '/r/z/n1';

describe(`agents report the contexts they hold (seed ${SEED})`, () => {
  let mesh: MeshHarness;
  let client: MeshClient;
  const agents: Agent[] = [];

  const start = async (id: string, contexts?: string[]): Promise<Agent> => {
    const a = new Agent({
      address: mesh.address(NODE),
      agentId: id,
      slots: 2,
      random: seededRandom(SEED + agents.length),
      backoff: { initialMs: 10, maxMs: 100 },
      ...(contexts ? { contexts } : {}),
    }).handle('echo', () => id);
    agents.push(a);
    await a.start();
    return a;
  };
  const holders = (key: string): readonly string[] => mesh.replicas.get(NODE)!.cell.agents?.contexts.holders(key) ?? [];
  const runOn = async (key: string): Promise<string> => {
    const { taskId } = await client.submit({ kind: 'echo', contextKey: key });
    const rec = await client.waitForResult(taskId, { timeoutMs: 15_000 });
    expect(rec.state).toBe(TaskState.TASK_STATE_COMPLETED);
    return rec.result!.agentId;
  };

  beforeAll(async () => {
    mesh = await startMesh(TOPOLOGY, { seed: SEED, heartbeatIntervalMs: 100, heartbeatTimeoutMs: 1500 });
    for (let i = 0; i < 4; i++) await start(`ctx-a${i}`);
    await mesh.ready();
    client = new MeshClient({ address: mesh.address('/'), deadlineMs: 10_000 });
  });

  afterAll(async () => {
    for (const a of agents) a.close();
    client?.close();
    await mesh?.close();
  });

  it('a key runs on the agent that reported it, and on the ring holder again once dropped', async () => {
    const key = 'session-77';
    const ringHolder = await runOn(key);
    expect(await runOn(key)).toBe(ringHolder);
    const warm = agents.find((a) => a.agentId !== ringHolder)!;
    warm.contexts.hold(key);
    await waitFor(() => holders(key).includes(warm.agentId), { timeoutMs: 5000, what: 'the report at the node' });
    for (let i = 0; i < 6; i++) expect(await runOn(key)).toBe(warm.agentId);
    warm.contexts.drop(key);
    await waitFor(() => holders(key).length === 0, { timeoutMs: 5000, what: 'the drop at the node' });
    expect(await runOn(key)).toBe(ringHolder);
  });

  it('keys staged before start reach the node with the first welcome; a gone agent holds nothing', async () => {
    const staged = await start('ctx-staged', ['dataset-1', 'dataset-2']);
    await waitFor(() => holders('dataset-2').includes('ctx-staged'), { timeoutMs: 5000, what: 'the staged keys' });
    expect(await runOn('dataset-1')).toBe('ctx-staged');
    staged.close();
    await waitFor(() => holders('dataset-1').length === 0, { timeoutMs: 5000, what: 'the keys forgotten' });
    expect(await runOn('dataset-1')).not.toBe('ctx-staged');
  });

  it('a report with a key past 256 bytes ends the stream INVALID_ARGUMENT', async () => {
    const c = new AgentServiceClient(mesh.address(NODE), grpc.credentials.createInsecure());
    try {
      const call = c.connect();
      const ended = new Promise<grpc.StatusObject>((resolve) => {
        call.on('status', resolve);
        call.on('error', () => undefined);
        call.on('data', (_m: ConnectResponse) => undefined);
      });
      const hello = { agentId: 'ctx-bad', kinds: ['echo'], labels: [], slots: 1, version: '', mesh: '', meshId: '' };
      call.write({ msg: { $case: 'hello', value: { ...hello, nodeCell: '', running: [] } } } as ConnectRequest);
      call.write({ msg: { $case: 'contexts', value: { held: ['k'.repeat(300)], dropped: [], reset: false } } });
      const st = await ended;
      expect(st.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(st.details).toMatch(/a key of 300 bytes \(at most 256\)/);
    } finally {
      c.close();
    }
  });
});
