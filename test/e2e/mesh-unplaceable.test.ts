// A task of a kind no agent serves, homed at each tier, over real gRPC across
// the 15-cell mesh (issue 8): homed at the root it waited QUEUED forever;
// homed at a region, zone or node it spilled up to the root, sat there, and
// was dead-lettered as "lost: lease lapsed" once its leases ran out. Now every
// tier does the same: the task waits at the top (visible in the root's
// GetCell as unplaceable, per kind) for unplaceableTimeoutMs, then ends
// DEAD_LETTERED with the reason "no agent of kind X".
import { credentials } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MeshClient } from '../../src/client/index.js';
import { AdminServiceClient, type GetCellResponse } from '../../src/gen/meshlb/v1/admin.js';
import { TaskState } from '../../src/gen/meshlb/v1/task.js';
import { waitFor } from '../helpers/wait.js';
import { SEED, startTestMesh, type TestMesh } from './mesh-helpers.js';

const WAIT_MS = 3000;
const HOMES = ['/', '/eu', '/eu/west-1a', '/eu/west-1a/n1'];

describe(`a task of a kind no agent serves, homed at every tier (seed ${SEED})`, () => {
  let t: TestMesh;
  let admin: AdminServiceClient;
  const clients: MeshClient[] = [];

  beforeAll(async () => {
    // Leases far shorter than the wait: before, they lapsed (3 x 0.7 s) long before it ended.
    t = await startTestMesh({ unplaceableTimeoutMs: WAIT_MS, taskTimeoutMs: 500, leaseSlackMs: 200, maxAttempts: 3 });
    for (const node of ['/eu/west-1a/n1', '/us/east-1b/n2']) await t.addAgent(node, { agentId: `${node}-e` });
    await t.mesh.ready();
    admin = new AdminServiceClient(t.mesh.address('/'), credentials.createInsecure());
  });

  afterAll(async () => {
    admin?.close();
    for (const c of clients) c.close();
    await t?.close();
  });

  const rootCell = () =>
    new Promise<GetCellResponse>((resolve, reject) =>
      admin.getCell({ path: '' }, (err, res) => (err ? reject(err) : resolve(res))),
    );

  it('waits at the top, shown as unplaceable, then is dead-lettered "no agent of kind X", at every tier', async () => {
    const submitted: { home: string; client: MeshClient; taskId: string }[] = [];
    for (const home of HOMES) {
      const client = new MeshClient({ address: t.mesh.address(home) });
      clients.push(client);
      const { taskId } = await client.submit({ kind: 'nobody', payload: home });
      submitted.push({ home, client, taskId });
    }
    // All four reach the root and wait there.
    await waitFor(async () => (await rootCell()).unplaceable === 4, { timeoutMs: 2000, what: '4 unplaceable at "/"' });
    const root = await rootCell();
    expect(root.unplaceableKinds).toEqual([{ kind: 'nobody', tasks: 4 }]);
    // A kind that is served still runs meanwhile.
    const echo = await clients[0]!.submit({ kind: 'echo' });
    expect((await clients[0]!.waitForResult(echo.taskId, { timeoutMs: 5000 })).state).toBe(
      TaskState.TASK_STATE_COMPLETED,
    );

    for (const s of submitted) {
      const done = await s.client.waitForResult(s.taskId, { timeoutMs: 15_000 });
      expect({ home: s.home, state: TaskState[done.state], reason: done.reason }).toEqual({
        home: s.home,
        state: 'TASK_STATE_DEAD_LETTERED',
        reason: 'no agent of kind nobody',
      });
      expect(done.homeCell).toBe(s.home);
      // It waited the whole limit (no lease lapsed first), and its attempt was never spent twice.
      expect(done.updatedUnixMs - done.createdUnixMs).toBeGreaterThanOrEqual(WAIT_MS);
      expect(done.attempt).toBeLessThanOrEqual(1);
    }
    const after = await rootCell();
    expect(after.unplaceable).toBe(0);
    expect(after.unplaceableKinds).toEqual([]);
  }, 30_000);
});
