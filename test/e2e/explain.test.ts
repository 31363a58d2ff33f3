// AdminService/ExplainTask over the four-tier test mesh (15 cells over
// loopback, SimAgents): for tasks submitted at the root, the trail names each
// tier's decision — the cell, its policy, the candidates it scored (its own
// children, or its agents) with the chosen one first — and ends at the agent
// that ran the task. Asked at any replica, it is answered by the home's leader.
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MeshClient } from '../../src/client/index.js';
import { TaskState } from '../../src/gen/meshlb/v1/task.js';
import { adminAt, type Admin } from '../admin/admin-client.js';
import { waitFor } from '../helpers/wait.js';
import { SEED, startTestMesh, type TestMesh } from './mesh-helpers.js';

describe(`ExplainTask: the placement trail across four tiers (seed ${SEED})`, () => {
  let t: TestMesh;
  let client: MeshClient;
  let root: Admin;
  let node: Admin;

  beforeAll(async () => {
    t = await startTestMesh();
    for (const n of t.mesh.nodes) {
      await t.addAgent(n, { agentId: `${n}-a`, serviceTimeMs: 5 });
      await t.addAgent(n, { agentId: `${n}-b`, serviceTimeMs: 5 });
    }
    await t.mesh.ready();
    client = new MeshClient({ address: t.mesh.address('/') });
    root = adminAt(t.mesh.address('/'));
    node = adminAt(t.mesh.address(t.mesh.nodes[0]!));
  });

  afterAll(async () => {
    root?.close();
    node?.close();
    client?.close();
    await t?.close();
  });

  const ledger = () => t.mesh.replicas.get('/')!.cell.ledger;

  it('names each tier: the cell, its candidates and scores, the chosen one first, down to the agent that ran it', async () => {
    const items = await client.submitBatch(
      Array.from({ length: 24 }, (_, i) => ({ kind: 'echo', tenant: `t${i % 3}` })),
    );
    const ids = items.map((i) => i.taskId);
    await waitFor(() => ids.every((id) => ledger().get(id)?.state === TaskState.TASK_STATE_COMPLETED), {
      timeoutMs: 15_000,
      what: '24 tasks completed',
    });
    const topo = t.mesh.topology;
    for (const id of ids) {
      const rec = ledger().get(id)!;
      const e = await root.call('explainTask', { taskId: id });
      expect(e.note, id).toBe('');
      expect(e.homeCell).toBe('/');
      expect(e.attempt).toBe(rec.attempt);
      expect(e.trail.map((d) => d.tier)).toEqual(['global', 'region', 'zone', 'node']);
      expect(e.trail.map((d) => d.policy)).toEqual(['global-geo', 'region-wrr', 'zone-least-conn', 'node-score']);
      for (let i = 0; i < e.trail.length; i++) {
        const d = e.trail[i]!;
        expect(d.attempt).toBe(rec.attempt);
        expect(d.candidates[0]!.id).toBe(d.chosen);
        expect(d.candidates[0]!.eligible).toBe(true);
        expect(d.why.length).toBeGreaterThan(0);
        expect(d.eligible).toBeGreaterThanOrEqual(1);
        const spec = topo.byPath.get(d.cell)!;
        if (i < 3) {
          // A balancer cell chose among its children, and the next decision is the chosen child's.
          expect(d.action).toBe('child');
          for (const c of d.candidates) expect(spec.children).toContain(c.id);
          expect(d.total).toBe(spec.children.length);
          expect(e.trail[i + 1]!.cell).toBe(d.chosen);
        } else {
          // The node chose among its agents: the one that ran the task.
          expect(d.action).toBe('agent');
          expect(d.chosen).toBe(rec.result!.agentId);
          expect(d.candidates.map((c) => c.id).sort()).toEqual([`${d.cell}-a`, `${d.cell}-b`]);
          expect(d.score).toBe('expected delay, ms');
        }
      }
    }
  });

  it('asked at a node replica, the call goes to the home; bad input and unknown tasks get a clear status', async () => {
    const [s] = await client.submitBatch([{ kind: 'echo' }]);
    await waitFor(() => ledger().get(s!.taskId)?.state === TaskState.TASK_STATE_COMPLETED, { what: 'task done' });
    const e = await node.call('explainTask', { taskId: s!.taskId, cell: '/' });
    expect(e.trail).toHaveLength(4);
    expect((await root.refused('explainTask', { taskId: '' })).code).toBe(status.INVALID_ARGUMENT);
    expect((await root.refused('explainTask', { taskId: 'nope' })).code).toBe(status.NOT_FOUND);
    expect((await root.refused('explainTask', { taskId: s!.taskId, cell: '/mars' })).code).toBe(status.NOT_FOUND);
  });
});
