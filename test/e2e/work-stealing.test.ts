// Work stealing over real gRPC: a burst lands on one node whose only agent is slow,
// while its sibling under the same zone has idle fast agents. With stealing on, the
// zone asks the loaded node for queued work back and the sibling runs much of it;
// with it off (stealBatch 0) the burst waits on the slow agent. Every task
// completes exactly once either way (the mesh simulator checks "in one place at a
// time" on every step of its seeds; this shows the behaviour on sockets).
import { afterEach, describe, expect, it } from 'vitest';
import { MeshClient } from '../../src/client/index.js';
import { TaskState } from '../../src/gen/meshlb/v1/task.js';
import { SEED, startTestMesh, type TestMesh } from './mesh-helpers.js';

const A = '/eu/west-1a/n1';
const B = '/eu/west-1a/n2';

describe(`work stealing between sibling nodes (seed ${SEED})`, () => {
  let t: TestMesh | undefined;
  let client: MeshClient | undefined;
  afterEach(async () => {
    client?.close();
    await t?.close();
  });

  /** 40 tasks submitted at A; where they ran, and how long the burst took (ms). */
  async function burst(stealBatch: number): Promise<{ onB: number; givenBack: number; ms: number }> {
    t = await startTestMesh({ stealBatch });
    await t.addAgent(A, { agentId: 'slow', slots: 2, serviceTimeMs: 150 });
    for (let i = 0; i < 4; i++) await t.addAgent(B, { agentId: `fast-${i}`, slots: 2, serviceTimeMs: 10 });
    await t.mesh.ready();
    client = new MeshClient({ address: t.mesh.address(A) });
    const start = Date.now();
    const items = await client.submitBatch(Array.from({ length: 40 }, (_, i) => ({ kind: 'echo', payload: `t${i}` })));
    expect(items.every((i) => i.ok)).toBe(true);
    let onB = 0;
    for (const i of items) {
      const rec = await client.waitForResult(i.taskId, { timeoutMs: 30_000 });
      expect(rec.state).toBe(TaskState.TASK_STATE_COMPLETED);
      if (rec.result!.nodeCell === B) onB++;
    }
    const ms = Date.now() - start;
    const givenBack = t.mesh.replicas.get(A)!.cell.stats.givenBack;
    return { onB, givenBack, ms };
  }

  it('an idle sibling takes queued work from a loaded node through their zone', { timeout: 60_000 }, async () => {
    const on = await burst(32);
    expect(on.givenBack).toBeGreaterThan(0);
    expect(on.onB).toBeGreaterThanOrEqual(20);
  });

  it('with stealing off the burst stays on the loaded node', { timeout: 60_000 }, async () => {
    const off = await burst(0);
    expect(off.givenBack).toBe(0);
    expect(off.onB).toBe(0);
  });
});
