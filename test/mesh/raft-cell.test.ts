// A cell as a Raft group, in one process over real gRPC and lmdb: the root
// cell has three replicas (each with its own data directory), one region, one
// zone and one node cell with simulated agents (test/helpers/raft-cell-mesh.ts).
// Tasks submitted at the leader run; the leader's replica is closed with
// attempts out and a new leader takes over from the replicated ledger; every
// acknowledged task ends COMPLETED exactly once; the whole cell stopped and
// started again keeps every task.
import { afterEach, describe, expect, it } from 'vitest';
import { TaskState } from '../../src/gen/meshlb/v1/task.js';
import { SimAgent } from '../../src/dev/sim-agent.js';
import { OpsMesh, SEED, spec } from '../helpers/raft-cell-mesh.js';
import { waitFor } from '../helpers/wait.js';

let mesh: OpsMesh | undefined;

afterEach(async () => {
  await mesh?.close();
  mesh = undefined;
});

describe(`a 3-replica root cell on Raft (seed ${SEED})`, () => {
  it('elects one leader, runs tasks, and a new leader finishes every acknowledged task after the old one closes', async () => {
    const m = (mesh = await OpsMesh.start({ serviceTimeMs: 40 }));
    const leader = await waitFor(() => m.leader(), { timeoutMs: 10_000, what: 'a root leader' });
    expect([...m.roots.values()].filter((r) => r.cell.leading)).toHaveLength(1);
    await waitFor(() => leader.cell.children?.links.size === 1 || undefined, {
      timeoutMs: 10_000,
      what: 'the region linked to the root leader',
    });

    const ids: string[] = [];
    const first = await leader.cell.submit(Array.from({ length: 50 }, (_, i) => spec(`k${i}`)));
    ids.push(...first.map((o) => o.id));
    await waitFor(() => m.allCompleted(leader, ids) || undefined, {
      timeoutMs: 15_000,
      what: 'the first 50 tasks completed',
    });
    // Followers hold the same outcomes (applied from the log).
    for (const r of m.roots.values()) {
      await waitFor(() => m.allCompleted(r, ids) || undefined, {
        timeoutMs: 10_000,
        what: `replica ${r.cell.replicaId} applied every outcome`,
      });
    }

    // More tasks, then the leader goes away with some attempts out at agents.
    const second = await leader.cell.submit(Array.from({ length: 200 }, (_, i) => spec(`k${100 + i}`)));
    ids.push(...second.map((o) => o.id));
    await waitFor(
      () =>
        ids.filter((id) => {
          const st = leader.cell.ledger.get(id)?.state;
          return st === TaskState.TASK_STATE_DISPATCHED || st === TaskState.TASK_STATE_RUNNING;
        }).length >= 4 || undefined,
      { timeoutMs: 10_000, intervalMs: 1, what: 'attempts out at agents' },
    );
    const oldId = leader.cell.replicaId;
    m.roots.delete(m.numberOf(leader));
    await leader.close(0);

    const next = await waitFor(() => m.leader(), { timeoutMs: 10_000, what: 'a new root leader' });
    expect(next.cell.replicaId).not.toBe(oldId);
    await waitFor(() => m.allCompleted(next, ids) || undefined, {
      timeoutMs: 40_000,
      what: 'every acknowledged task completed under the new leader',
    });
    // The same idempotency key is the same task, never a second one.
    const again = await next.cell.submit([spec('k0'), spec('k150')]);
    expect(again.map((o) => o.id)).toEqual([ids[0], ids[100]]);
    expect(again.every((o) => o.existing)).toBe(true);
  });

  it('a whole cell stopped and started again on its data dirs resumes every accepted unfinished task', async () => {
    const m = (mesh = await OpsMesh.start());
    // No agents: everything accepted stays unfinished.
    for (const a of m.agents.splice(0)) a.end();
    const leader = await waitFor(() => m.leader(), { timeoutMs: 10_000, what: 'a root leader' });
    const ids = (await leader.cell.submit(Array.from({ length: 40 }, (_, i) => spec(`w${i}`)))).map((o) => o.id);
    await Promise.all([...m.roots.values()].map((r) => r.close(0)));
    m.roots.clear();
    for (const n of [1, 2, 3]) await m.startRoot(n);
    const next = await waitFor(() => m.leader(), { timeoutMs: 15_000, what: 'a leader after the restart' });
    for (const id of ids) expect(next.cell.ledger.get(id)?.state, id).toBe(TaskState.TASK_STATE_QUEUED);
    // Agents come back: every task runs to completion under the restarted cell.
    const node = m.others[2]!;
    const agent = new SimAgent({ address: node.address, agentId: 'late', kinds: ['echo'], slots: 8, serviceTimeMs: 5 });
    m.agents.push(agent);
    await agent.start();
    await waitFor(() => m.allCompleted(next, ids) || undefined, {
      timeoutMs: 30_000,
      what: 'every task completed after the whole cell restarted',
    });
  });
});
