// Operator changes on a cell that is a Raft group (the root: three replicas
// with data dirs, over gRPC and lmdb): asked at a follower, they are
// forwarded to the leader, committed through the cell's log and applied on
// every replica; they survive a change of leader and a replica's restart from
// its data dir. Policy (SetPolicy) and a replay (RetryTask of a cancelled
// task) are the cases here; drain and cordons are the same kind of ledger
// command (ledger-replay.test.ts, and the Raft log property tests replicate
// every kind).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MeshClient } from '../../src/client/index.js';
import { TaskState } from '../../src/gen/meshlb/v1/task.js';
import type { Replica } from '../../src/mesh/replica.js';
import { OpsMesh, SEED } from '../helpers/raft-cell-mesh.js';
import { waitFor } from '../helpers/wait.js';
import { adminAt, type Admin } from '../admin/admin-client.js';

describe(`operator changes on a Raft cell are replicated (seed ${SEED})`, () => {
  let m: OpsMesh;
  const admins: Admin[] = [];
  const at = (r: Replica): Admin => {
    const a = adminAt(r.address);
    admins.push(a);
    return a;
  };
  const leader = (): Promise<Replica> => waitFor(() => m.leader(), { timeoutMs: 10_000, what: 'a root leader' });
  /** A replica that does not lead and knows who does (so it can forward). */
  const follower = async (): Promise<Replica> => {
    const l = await leader();
    const f = [...m.roots.values()].find((r) => r !== l)!;
    await waitFor(() => f.cell.leaderHint().leaderAddress, { what: 'the follower to know its leader' });
    return f;
  };

  beforeAll(async () => {
    m = await OpsMesh.start();
  }, 30_000);

  afterAll(async () => {
    for (const a of admins) a.close();
    await m?.close();
  });

  it('SetPolicy at a follower: committed at the leader, in force on every replica, through failover and restart', async () => {
    const f = await follower();
    const res = await at(f).call('setPolicy', { policy: 'p2c' });
    expect(res.cells).toEqual([{ cell: '/', policy: 'p2c', configJson: '', replicated: true, error: '' }]);
    await waitFor(() => [...m.roots.values()].every((r) => r.cell.ledger.config.policy === 'p2c'), {
      what: 'the policy on all three replicas',
    });
    for (const r of m.roots.values()) {
      expect(await at(r).call('getCell')).toMatchObject({ policy: 'p2c', policyOverridden: true });
    }

    const old = await leader();
    const n = m.numberOf(old);
    await m.stopRoot(n);
    const next = await leader();
    expect(next).not.toBe(old);
    expect(await at(next).call('getCell')).toMatchObject({ policy: 'p2c', policyOverridden: true });
    const back = await m.startRoot(n);
    await waitFor(() => back.cell.ledger.config.policy === 'p2c', { what: 'the restarted replica to hold the policy' });

    await at(back).call('setPolicy', { reset: true });
    await waitFor(() => [...m.roots.values()].every((r) => r.cell.ledger.config.policy === ''), {
      what: 'the reset on all three replicas',
    });
    expect(await at(back).call('getCell')).toMatchObject({ policy: 'global-geo', policyOverridden: false });
  }, 30_000);

  it('CancelTask and RetryTask at a follower: the replay is one ledger command every replica applies', async () => {
    const client = new MeshClient({ address: [...m.roots.values()].map((r) => r.address) });
    try {
      const sub = await client.submit({ kind: 'nobody', idempotencyKey: 'replay-me' });
      const f = await follower();
      const admin = at(f);
      const cancelled = await admin.call('cancelTask', { taskId: sub.taskId, reason: 'by operator' });
      expect(cancelled.task!.state).toBe(TaskState.TASK_STATE_CANCELLED);
      const retried = await admin.call('retryTask', { taskId: sub.taskId, reason: 'again' });
      expect(retried.action).toBe('replayed');
      await waitFor(
        () =>
          [...m.roots.values()].every((r) => {
            const rec = r.cell.ledger.get(sub.taskId);
            return rec?.replays === 1 && rec.state === TaskState.TASK_STATE_QUEUED && rec.reason === 'again';
          }),
        { what: 'the replay applied on all three replicas' },
      );
      const listed = await admin.call('listTasks', { kind: 'nobody' });
      expect(listed.tasks.map((t) => [t.id, t.replays])).toEqual([[sub.taskId, 1]]);
      await admin.call('cancelTask', { taskId: sub.taskId });
    } finally {
      client.close();
    }
  });
});
