// Context routing over real gRPC across all four tiers: tasks that carry the same
// context key run on the same agent (its caches are warm), tasks without one spread
// out, and a burst of one key overflows to other agents instead of waiting on one.
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MeshClient } from '../../src/client/index.js';
import { TaskState } from '../../src/gen/meshlb/v1/task.js';
import { SEED, startTestMesh, type TestMesh } from './mesh-helpers.js';

describe(`context keys across four tiers (seed ${SEED})`, () => {
  let t: TestMesh;
  let client: MeshClient;

  beforeAll(async () => {
    t = await startTestMesh();
    for (const node of t.mesh.nodes) for (let i = 0; i < 2; i++) await t.addAgent(node, { agentId: `${node}-a${i}` });
    await t.mesh.ready();
    client = new MeshClient({ address: t.mesh.address('/') });
  });

  afterAll(async () => {
    client?.close();
    await t?.close();
  });

  /** Run one task to the end; the agent that ran it. */
  const runOn = async (spec: Parameters<MeshClient['submit']>[0]): Promise<string> => {
    const { taskId } = await client.submit(spec);
    const rec = await client.waitForResult(taskId, { timeoutMs: 15_000 });
    expect(rec.state).toBe(TaskState.TASK_STATE_COMPLETED);
    return rec.result!.agentId;
  };

  it('one key, one agent, while it has room; other keys elsewhere', async () => {
    const holders = new Map<string, Set<string>>();
    for (let round = 0; round < 5; round++) {
      for (const key of ['session-a', 'session-b', 'session-c', 'session-d']) {
        const agent = await runOn({ kind: 'echo', contextKey: key });
        if (!holders.has(key)) holders.set(key, new Set());
        holders.get(key)!.add(agent);
      }
    }
    for (const [key, agents] of holders) expect([...agents], `${key} ran on`).toHaveLength(1);
    // Four keys over sixteen agents: not all on one.
    expect(new Set([...holders.values()].map((s) => [...s][0])).size).toBeGreaterThan(1);
  });

  it('a burst of one key overflows to other agents and every task completes', async () => {
    const ids = await client.submitBatch(Array.from({ length: 24 }, () => ({ kind: 'echo', contextKey: 'hot-key' })));
    expect(ids.every((i) => i.ok)).toBe(true);
    const agents = new Set<string>();
    for (const i of ids) {
      const rec = await client.waitForResult(i.taskId, { timeoutMs: 15_000 });
      expect(rec.state).toBe(TaskState.TASK_STATE_COMPLETED);
      agents.add(rec.result!.agentId);
    }
    expect(agents.size).toBeGreaterThan(1);
  });

  it('refuses a context key past its bound with INVALID_ARGUMENT', async () => {
    await expect(client.submit({ kind: 'echo', contextKey: 'k'.repeat(257) })).rejects.toMatchObject({
      code: status.INVALID_ARGUMENT,
    });
  });
});
