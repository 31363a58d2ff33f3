// Clients of a 3-replica root cell on Raft, in one process over real gRPC and
// lmdb (as test/mesh/raft-cell.test.ts): every replica serves TaskService.
// Followers forward writes to the leader and read after a ReadIndex barrier,
// so a task submitted through one follower is found at once through the
// other. The client SDK, given all three addresses, keeps submitting through
// a leader close: submits whose answer was lost are repeated with the same
// idempotency key, and N submits end as exactly N tasks.
import { afterEach, describe, expect, it } from 'vitest';
import { MeshClient } from '../../src/client/index.js';
import { TaskState } from '../../src/gen/meshlb/v1/task.js';
import type { Replica } from '../../src/mesh/replica.js';
import { seededRandom } from '../../src/util/rng.js';
import { OpsMesh, SEED } from '../helpers/raft-cell-mesh.js';
import { waitFor } from '../helpers/wait.js';

interface Mesh {
  ops: OpsMesh;
  clients: MeshClient[];
}

let mesh: Mesh | undefined;

afterEach(async () => {
  if (!mesh) return;
  for (const c of mesh.clients) c.close();
  await mesh.ops.close();
  mesh = undefined;
});

async function start(): Promise<Mesh> {
  mesh = { ops: await OpsMesh.start({ slots: 8, serviceTimeMs: 20 }), clients: [] };
  return mesh;
}

const roots = (m: Mesh): Replica[] => [...m.ops.roots.values()];

function client(m: Mesh, address: string | string[], seed: number): MeshClient {
  const c = new MeshClient({ address, deadlineMs: 15_000, random: seededRandom(seed) });
  m.clients.push(c);
  return c;
}

/** The leader once it leads and the region has linked to it, and the two followers. */
async function roles(m: Mesh): Promise<{ leader: Replica; followers: Replica[] }> {
  const leader = await waitFor(() => m.ops.leader(), { timeoutMs: 10_000, what: 'a root leader' });
  const followers = roots(m).filter((r) => r !== leader);
  // The followers know who leads (they forward there).
  await waitFor(() => followers.every((f) => f.cell.leaderHint().leader === leader.cell.replicaId) || undefined, {
    timeoutMs: 10_000,
    what: 'followers that know the leader',
  });
  await waitFor(() => leader.cell.children?.links.size === 1 || undefined, {
    timeoutMs: 10_000,
    what: 'the region linked to the root leader',
  });
  return { leader, followers };
}

describe('clients of a 3-replica root cell (seed ' + SEED + ')', () => {
  it('a task submitted through one follower is found at once through the other; batches, streams, watch and cancel work on followers', async () => {
    const m = await start();
    const { leader, followers } = await roles(m);
    const [f1, f2] = followers as [Replica, Replica];
    const c1 = client(m, f1.address, SEED + 1);
    const c2 = client(m, f2.address, SEED + 2);

    const ids: string[] = [];
    for (let i = 0; i < 20; i++) {
      const { taskId, existing } = await c1.submit({ kind: 'echo', payload: `one-${i}` });
      expect(existing).toBe(false);
      // Linearizable: right after the Submit returned, the other follower has it.
      const t = await c2.get(taskId);
      expect(t.id).toBe(taskId);
      ids.push(taskId);
    }
    expect(c1.redirects + c2.redirects).toBe(0); // served by the followers, not redirected
    expect(c1.address).toBe(f1.address);
    expect(f1.tasks.forwarding).toBe(0);

    const items = await c1.submitBatch(Array.from({ length: 30 }, (_, i) => ({ kind: 'echo', payload: `b-${i}` })));
    expect(items.every((i) => i.ok)).toBe(true);
    const s = c2.submitStream();
    const streamed = await Promise.all(
      Array.from({ length: 30 }, (_, i) => s.submit({ kind: 'echo', payload: `s-${i}` })),
    );
    await s.end();
    expect(streamed.every((i) => i.ok)).toBe(true);
    ids.push(...items.map((i) => i.taskId), ...streamed.map((i) => i.taskId));
    for (const id of [items[0]!.taskId, streamed[29]!.taskId]) expect((await c1.get(id)).id).toBe(id);

    // Watch on a follower follows the task to its end (the follower applies the leader's changes).
    const done = await c2.waitForResult(ids[0]!, { timeoutMs: 15_000 });
    expect(done.state).toBe(TaskState.TASK_STATE_COMPLETED);

    // Cancel through a follower reaches the leader (a finished task answers its record).
    const cancelled = await c1.cancel(ids[0]!, 'late');
    expect(cancelled.state).toBe(TaskState.TASK_STATE_COMPLETED);

    // Every task is the leader's, once.
    await waitFor(
      () => ids.every((id) => leader.cell.ledger.get(id)?.state === TaskState.TASK_STATE_COMPLETED) || undefined,
      { timeoutMs: 20_000, what: 'every task completed' },
    );
    expect(new Set(ids).size).toBe(80);
    expect(leader.cell.ledger.size).toBe(80);
  });

  it('the SDK given all three addresses keeps working through a leader close: N concurrent submits through a follower are exactly N tasks', async () => {
    const m = await start();
    const { leader, followers } = await roles(m);
    const [f1, f2] = followers as [Replica, Replica];
    const c = client(m, [f1.address, f2.address, leader.address], SEED + 3);

    const N = 300;
    const WORKERS = 24;
    const results: string[] = [];
    const failures: unknown[] = [];
    let next = 0;
    const work = async (): Promise<void> => {
      while (next < N) {
        const i = next++;
        try {
          results.push((await c.submit({ kind: 'echo', payload: `t-${i}` })).taskId);
        } catch (err) {
          failures.push(err);
        }
      }
    };
    const workers = Array.from({ length: WORKERS }, () => work());
    // Mid-way: some submits acknowledged, more in flight.
    await waitFor(() => results.length >= N / 4 || undefined, {
      timeoutMs: 20_000,
      intervalMs: 1,
      what: 'a quarter of the submits acknowledged',
    });
    expect(results.length).toBeLessThan(N);
    const oldId = leader.cell.replicaId;
    m.ops.roots.delete(m.ops.numberOf(leader));
    await leader.close(0);
    await Promise.all(workers);

    expect(failures).toEqual([]);
    expect(results).toHaveLength(N);
    expect(new Set(results).size).toBe(N);
    // Submits in flight at the close, or sent before the followers knew, were repeated.
    expect(c.submitRetries).toBeGreaterThan(0);

    const next2 = await waitFor(() => m.ops.leader(), { timeoutMs: 10_000, what: 'a new leader' });
    expect(next2.cell.replicaId).not.toBe(oldId);
    // Exactly N tasks: a submit repeated after a lost answer found its first attempt's task.
    expect(next2.cell.ledger.size).toBe(N);
    // Found by Get on every surviving replica (each read passes the barrier there).
    for (const r of roots(m)) {
      const rc = client(m, r.address, SEED + 4);
      for (const id of results) expect((await rc.get(id)).id).toBe(id);
    }
    await waitFor(
      () => results.every((id) => next2.cell.ledger.get(id)?.state === TaskState.TASK_STATE_COMPLETED) || undefined,
      { timeoutMs: 40_000, what: 'every task completed under the new leader' },
    );
  });
});
