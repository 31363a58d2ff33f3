// The shared SubmitStream over real gRPC on 127.0.0.1 against a real mesh: a
// 3-replica root cell on Raft (lmdb) with a region, a zone and a node of
// simulated agents (test/helpers/raft-cell-mesh.ts). Submits made one at a
// time ride one stream per client, answer as a unary Submit would, and go
// through a kill of the root's leader with every task made once: the stream
// breaks, its unanswered submits are sent again with their keys elsewhere.
import { status } from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { MeshClient, TaskState } from '../../src/client/index.js';
import type { Replica } from '../../src/mesh/replica.js';
import { seededRandom } from '../../src/util/rng.js';
import { OpsMesh, SEED } from '../helpers/raft-cell-mesh.js';
import { waitFor } from '../helpers/wait.js';

let mesh: OpsMesh | undefined;
const closers: (() => void)[] = [];

afterEach(async () => {
  for (const c of closers.splice(0)) c();
  await mesh?.close();
  mesh = undefined;
});

// Every submit on the stream (submitCoalesce: false): with the defaults, submits that pile up
// past 8 in flight go as SubmitBatch calls instead (docs/sdk.md, "Waiting per task").
function client(address: string | string[], seed: number): MeshClient {
  const c = new MeshClient({ address, deadlineMs: 15_000, random: seededRandom(seed), submitCoalesce: false });
  closers.push(() => c.close());
  return c;
}

async function roles(m: OpsMesh): Promise<{ leader: Replica; followers: Replica[] }> {
  const leader = await waitFor(() => m.leader(), { timeoutMs: 10_000, what: 'a root leader' });
  const followers = [...m.roots.values()].filter((r) => r !== leader);
  await waitFor(() => followers.every((f) => f.cell.leaderHint().leader === leader.cell.replicaId) || undefined, {
    timeoutMs: 10_000,
    what: 'followers that know the leader',
  });
  return { leader, followers };
}

describe('submits on the shared SubmitStream, against a real cell (seed ' + SEED + ')', () => {
  it('submits made one at a time ride one stream and answer as Submit would, on the leader and through a follower', async () => {
    mesh = await OpsMesh.start({ slots: 32, serviceTimeMs: 1 });
    const { leader, followers } = await roles(mesh);
    const onLeader = client(leader.address, SEED + 31);
    const onFollower = client(followers[0]!.address, SEED + 32);
    const N = 600;
    const ids: string[] = [];
    let next = 0;
    const work = async (c: MeshClient): Promise<void> => {
      while (next < N) {
        const i = next++;
        const t = await c.submitAndWait({ kind: 'echo', payload: `s-${i}` }, { timeoutMs: 30_000 });
        expect(t.state).toBe(TaskState.TASK_STATE_COMPLETED);
        ids.push(t.id);
      }
    };
    await Promise.all(Array.from({ length: 100 }, (_, i) => work(i % 2 ? onLeader : onFollower)));
    expect(new Set(ids).size).toBe(N);
    expect(leader.cell.ledger.size).toBe(N);
    for (const c of [onLeader, onFollower]) {
      // One stream carried the submits (another only if it idled out); nothing went the unary way.
      expect(c.submits!.stats.streams).toBeLessThanOrEqual(3);
      expect(c.submits!.stats).toMatchObject({ broken: 0, fallbacks: 0 });
    }
    // A refused spec fails alone; a key that named a task answers it, existing, in its state.
    const [bad, first] = await Promise.allSettled([
      onFollower.submit({ kind: '' }),
      onFollower.submit({ kind: 'echo', idempotencyKey: 'mine-1' }),
    ]);
    expect(bad.status).toBe('rejected');
    expect(((bad as PromiseRejectedResult).reason as { code: number }).code).toBe(status.INVALID_ARGUMENT);
    const firstId = (first as PromiseFulfilledResult<{ taskId: string }>).value.taskId;
    await onFollower.waitForResult(firstId, { timeoutMs: 30_000 });
    const again = await onFollower.submit({ kind: 'echo', idempotencyKey: 'mine-1' });
    expect(again).toMatchObject({ taskId: firstId, existing: true, stateName: 'completed' });
  });

  it('a leader killed under a flow of submits: every submit answers, every task exactly once', async () => {
    mesh = await OpsMesh.start({ slots: 32, serviceTimeMs: 1 });
    const { leader, followers } = await roles(mesh);
    const all = [leader.address, ...followers.map((f) => f.address)];
    // Its stream is on the leader: the kill breaks it.
    const c = client(all, SEED + 33);
    const N = 400;
    const answered: string[] = [];
    let i = 0;
    let killed = false;
    const work = async (): Promise<void> => {
      while (i < N) {
        const k = i++;
        const r = await c.submit({ kind: 'echo', payload: `l-${k}` }, { deadlineMs: 20_000 });
        answered.push(r.taskId);
        expect(r.existing).toBe(false);
        if (!killed && answered.length >= 100) {
          killed = true;
          mesh!.roots.delete(mesh!.numberOf(leader));
          void leader.close(0);
        }
      }
    };
    await Promise.all(Array.from({ length: 20 }, () => work()));
    expect(answered).toHaveLength(N);
    expect(new Set(answered).size).toBe(N);
    expect(c.submits!.stats.broken).toBeGreaterThanOrEqual(1);
    const next = await waitFor(() => mesh!.leader(), { timeoutMs: 10_000, what: 'a new leader' });
    // Never lost, never doubled: the new leader holds exactly the N tasks answered.
    await waitFor(() => next.cell.ledger.size >= N || undefined, { timeoutMs: 10_000, what: 'N tasks at the leader' });
    expect(next.cell.ledger.size).toBe(N);
    for (const id of answered) expect(next.cell.ledger.get(id)).toBeDefined();
  });
});
