// Affinity through the tiers over real gRPC (docs/mesh.md, "Affinity through
// the tiers"), on the 15-cell test mesh: every node has plain agents of kind
// echo and one node, /us/east-1b/n2, also an agent labelled gpu=h100.
// Summaries carry each kind's label sets up the tree, so a gpu=h100 task goes
// straight there from the root (each tier's trail lists the children without a
// match as "affinity"), and one homed at a node elsewhere spills up and comes
// down to it: first attempt, no lease lapsing. A task whose affinity no agent
// has waits at the root as unplaceable (GetCell), goes the moment a matching
// agent appears, and otherwise ends DEAD_LETTERED "no agent of kind echo
// matches gpu=a100" after unplaceableTimeoutMs, as a kind nobody serves does.
import { credentials } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MeshClient } from '../../src/client/index.js';
import { AdminServiceClient, type GetCellResponse } from '../../src/gen/meshlb/v1/admin.js';
import { TaskState } from '../../src/gen/meshlb/v1/task.js';
import { adminAt, type Admin } from '../admin/admin-client.js';
import { waitFor } from '../helpers/wait.js';
import { SEED, startTestMesh, type TestMesh } from './mesh-helpers.js';

const WAIT_MS = 8000;
const GPU_NODE = '/us/east-1b/n2';

describe(`affinity through the tiers, over real gRPC (seed ${SEED})`, () => {
  let t: TestMesh;
  let admin: AdminServiceClient;
  let explain: Admin;
  const clients = new Map<string, MeshClient>();
  const client = (home: string): MeshClient => {
    let c = clients.get(home);
    if (!c) clients.set(home, (c = new MeshClient({ address: t.mesh.address(home) })));
    return c;
  };

  beforeAll(async () => {
    // Leases shorter than the wait (a task sent where nothing matches would lapse its 3 x 2.5 s first), and
    // long enough that a busy machine's stalls do not lapse one that runs (the first test wants attempt 1).
    t = await startTestMesh({ unplaceableTimeoutMs: WAIT_MS, taskTimeoutMs: 2000, leaseSlackMs: 500, maxAttempts: 3 });
    for (const n of t.mesh.nodes) await t.addAgent(n, { agentId: `${n}-cpu`, serviceTimeMs: 5 });
    await t.addAgent(GPU_NODE, { agentId: 'h100-agent', labels: [{ key: 'gpu', value: 'h100' }], serviceTimeMs: 5 });
    await t.mesh.ready();
    admin = new AdminServiceClient(t.mesh.address('/'), credentials.createInsecure());
    explain = adminAt(t.mesh.address('/'));
  });

  afterAll(async () => {
    admin?.close();
    explain?.close();
    for (const c of clients.values()) c.close();
    await t?.close();
  });

  const rootCell = () =>
    new Promise<GetCellResponse>((resolve, reject) =>
      admin.getCell({ path: '' }, (err, res) => (err ? reject(err) : resolve(res))),
    );

  it('a gpu=h100 task lands on the only node with such an agent, first time, from the root and from a node elsewhere', async () => {
    // The root's summaries from its regions name the label sets below them.
    await waitFor(
      () =>
        t.mesh.replicas
          .get('/')!
          .cell.children!.candidates(Date.now())
          .some((c) => c.kindLabels?.get('echo')?.groups.some((g) => g.labels.some((l) => l.value === 'h100'))),
      { timeoutMs: 5000, what: "the root's view of /us names gpu=h100" },
    );
    const homes = ['/', '/', '/', '/eu/west-1a/n1', '/eu', '/us/east-1a'];
    const sent = [];
    for (const home of homes)
      sent.push({ home, ...(await client(home).submit({ kind: 'echo', affinity: { gpu: 'h100' } })) });
    for (const s of sent) {
      const done = await client(s.home).waitForResult(s.taskId, { timeoutMs: 15_000 });
      expect({
        home: s.home,
        state: TaskState[done.state],
        agent: done.result?.agentId,
        attempt: done.attempt,
      }).toEqual({
        home: s.home,
        state: 'TASK_STATE_COMPLETED',
        agent: 'h100-agent',
        attempt: 1,
      });
    }
    // From the root: each tier chose the child with the match, and listed the others as skipped for affinity.
    const e = await explain.call('explainTask', { taskId: sent[0]!.taskId });
    expect(e.trail.map((d) => `${d.cell}>${d.chosen}`)).toEqual([
      '/>/us',
      '/us>/us/east-1b',
      '/us/east-1b>/us/east-1b/n2',
      '/us/east-1b/n2>h100-agent',
    ]);
    for (const d of e.trail.slice(0, 3)) {
      const skipped = d.candidates.filter((c) => c.id !== d.chosen);
      expect(skipped.length, d.cell).toBeGreaterThan(0);
      for (const c of skipped)
        expect({ cell: d.cell, id: c.id, whyNot: c.whyNot }).toMatchObject({ whyNot: 'affinity' });
    }
  }, 30_000);

  it('no agent matches: waits at the root as unplaceable, goes when a matching agent appears, else ends with the reason', async () => {
    const a100 = [];
    for (const home of ['/', '/eu/west-1b/n1'])
      a100.push({ home, ...(await client(home).submit({ kind: 'echo', affinity: { gpu: 'a100' } })) });
    const b200 = await client('/').submit({ kind: 'echo', affinity: { gpu: 'b200' } });
    await waitFor(async () => (await rootCell()).unplaceable === 3, { timeoutMs: 3000, what: '3 unplaceable at "/"' });
    expect((await rootCell()).unplaceableKinds).toEqual([{ kind: 'echo', tasks: 3 }]);
    // An agent with gpu=b200 appears on some node: its task goes there at once.
    await t.addAgent('/eu/west-1b/n2', { agentId: 'b200-agent', labels: [{ key: 'gpu', value: 'b200' }] });
    const b = await client('/').waitForResult(b200.taskId, { timeoutMs: WAIT_MS });
    expect([TaskState[b.state], b.result?.agentId, b.attempt]).toEqual(['TASK_STATE_COMPLETED', 'b200-agent', 1]);
    for (const s of a100) {
      const done = await client(s.home).waitForResult(s.taskId, { timeoutMs: 20_000 });
      expect({ home: s.home, state: TaskState[done.state], reason: done.reason }).toEqual({
        home: s.home,
        state: 'TASK_STATE_DEAD_LETTERED',
        reason: 'no agent of kind echo matches gpu=a100',
      });
      // It waited the whole limit: no lease lapsed first, its attempt was never spent twice.
      expect(done.updatedUnixMs - done.createdUnixMs).toBeGreaterThanOrEqual(WAIT_MS);
      expect(done.attempt).toBeLessThanOrEqual(1);
    }
    expect((await rootCell()).unplaceable).toBe(0);
  }, 40_000);
});
