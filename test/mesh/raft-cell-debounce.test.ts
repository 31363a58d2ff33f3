// A debounce window survives a leader failover of the root cell (a Raft group
// of three replicas over real gRPC and lmdb, test/helpers/raft-cell-mesh.ts):
// submits folded under the old leader and under the new one are one task,
// which runs once, after the window, with the last payload. The key lives in
// the replicated ledger (src/flow/keyed.ts); the new leader holds the task
// out of its queue until the window ends (src/mesh/debounce-hold.ts).
import { afterEach, describe, expect, it } from 'vitest';
import { SimAgent } from '../../src/dev/sim-agent.js';
import { TaskSpec, TaskState, type Dispatch } from '../../src/gen/meshlb/v1/task.js';
import { OpsMesh, SEED } from '../helpers/raft-cell-mesh.js';
import { waitFor } from '../helpers/wait.js';

let mesh: OpsMesh | undefined;

afterEach(async () => {
  await mesh?.close();
  mesh = undefined;
});

// 5 s windows: a new leader is elected well within one (about a second with the defaults).
const deb = (payload: string): TaskSpec =>
  TaskSpec.fromPartial({ kind: 'deb', payload: Buffer.from(payload), debounceKey: 'd', debouncePeriodMs: 5000 });

describe(`a debounce window through a root leader failover (seed ${SEED})`, () => {
  it('submits before and after the leader closes fold into one task that runs once with the last payload', async () => {
    const m = (mesh = await OpsMesh.start());
    const starts: Dispatch[] = [];
    const node = m.others[2]!;
    const agent = new SimAgent({
      address: node.address,
      agentId: 'deb',
      kinds: ['deb'],
      slots: 2,
      serviceTimeMs: 10,
      onStart: (d) => starts.push(d),
    });
    m.agents.push(agent);
    await agent.start();
    const leader = await waitFor(() => m.leader(), { timeoutMs: 10_000, what: 'a root leader' });

    const before = [];
    for (let i = 0; i < 5; i++) before.push(...(await leader.cell.submit([deb(`v${i}`)])));
    const id = before[0]!.id;
    expect(before.map((o) => o.id)).toEqual(Array<string>(5).fill(id));
    // Every replica holds the folded payload and the window (applied from the log).
    for (const r of m.roots.values())
      await waitFor(() => Buffer.from(r.cell.ledger.get(id)?.spec.payload ?? []).toString() === 'v4' || undefined, {
        timeoutMs: 5000,
        what: `replica ${r.cell.replicaId} applied the folds`,
      });

    m.roots.delete(m.numberOf(leader));
    await leader.close(0);
    const next = await waitFor(() => m.leader(), { timeoutMs: 10_000, what: 'a new root leader' });
    expect(starts).toHaveLength(0);
    const rec = next.cell.ledger.get(id)!;
    expect(rec.state).toBe(TaskState.TASK_STATE_QUEUED);
    expect(next.cell.ledger.keyed.holdUntil(rec)).toBeGreaterThan(Date.now());

    const after = [];
    for (let i = 5; i < 10; i++) after.push(...(await next.cell.submit([deb(`v${i}`)])));
    expect(after.map((o) => [o.id, o.existing])).toEqual(Array(5).fill([id, true]));
    await waitFor(() => next.cell.ledger.get(id)!.state === TaskState.TASK_STATE_COMPLETED || undefined, {
      timeoutMs: 20_000,
      what: 'the debounced task completed under the new leader',
    });
    expect(starts.map((d) => [d.taskId, Buffer.from(d.spec!.payload).toString()])).toEqual([[id, 'v9']]);
  });
});
