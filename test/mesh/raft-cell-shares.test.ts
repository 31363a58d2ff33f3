// A tenant's share survives a leader failover of the root cell (a Raft group
// of three replicas over real gRPC and lmdb, test/helpers/raft-cell-mesh.ts):
// a ceiling of 2 set at the old leader (a `tenantShareSet` in the log), two
// attempts started under it (their handlers wait until the test lets them
// end); after the leader closes, the new leader holds the share and the two
// slots (the replicated ledger, src/flow/tenant-shares.ts) and starts no third
// until one ends; at the agent no more than 2 ever run.
import { afterEach, describe, expect, it } from 'vitest';
import { setTenantShare } from '../../src/admin/admin-flow.js';
import { Agent, seededRandom } from '../../src/agent/index.js';
import { TaskSpec, TaskState } from '../../src/gen/meshlb/v1/task.js';
import { OpsMesh, SEED } from '../helpers/raft-cell-mesh.js';
import { waitFor } from '../helpers/wait.js';

let mesh: OpsMesh | undefined;
let closeAgent: (() => void) | undefined;

afterEach(async () => {
  closeAgent?.();
  closeAgent = undefined;
  await mesh?.close();
  mesh = undefined;
});

describe(`a tenant's ceiling through a root leader failover (seed ${SEED})`, () => {
  it('the new leader holds the share and the slots out, and never lets a third run', async () => {
    const m = (mesh = await OpsMesh.start());
    // The first two attempts run until the new leader has been checked (a wait on the test, not on time:
    // a failover slower than a fixed service time would see them end first); the rest end at once.
    let running = 0;
    let peak = 0;
    const gates: (() => void)[] = [];
    let holding = true;
    const agent = new Agent({ address: m.others[2]!.address, agentId: 'cap', slots: 4, random: seededRandom(SEED) });
    agent.handle('cap', async () => {
      peak = Math.max(peak, ++running);
      try {
        if (holding) await new Promise<void>((resolve) => gates.push(resolve));
        return 'ok';
      } finally {
        running--;
      }
    });
    closeAgent = () => agent.close();
    await agent.start();
    const leader = await waitFor(() => m.leader(), { timeoutMs: 10_000, what: 'a root leader' });
    const set = await setTenantShare(leader.cell, { tenant: 'capped', minSlots: 0, maxSlots: 2, cell: '' });
    expect(set.replicated).toBe(true);

    const outs = await leader.cell.submit(
      [0, 1, 2, 3, 4].map((i) => TaskSpec.fromPartial({ kind: 'cap', tenant: 'capped', payload: Buffer.from(`${i}`) })),
    );
    const ids = outs.map((o) => o.id);
    // Every replica applied the share and the two starts.
    for (const r of m.roots.values())
      await waitFor(() => r.cell.ledger.flow.shares.permits.held('capped') === 2 || undefined, {
        timeoutMs: 5000,
        what: `replica ${r.cell.replicaId} holds 2 slots of capped`,
      });

    await waitFor(() => gates.length === 2, { timeoutMs: 10_000, what: 'two attempts running at the agent' });

    m.roots.delete(m.numberOf(leader));
    await leader.close(0);
    const next = await waitFor(() => m.leader(), { timeoutMs: 10_000, what: 'a new root leader' });
    expect(next.cell.ledger.flow.shares.share('capped')).toEqual({ min: 0, max: 2 });
    expect(next.cell.ledger.flow.shares.permits.held('capped')).toBe(2);
    expect(gates.length).toBe(2);
    holding = false;
    for (const open of gates) open();

    await waitFor(
      () => ids.every((id) => next.cell.ledger.get(id)?.state === TaskState.TASK_STATE_COMPLETED) || undefined,
      { timeoutMs: 30_000, what: 'all five completed under the new leader' },
    );
    expect(peak).toBe(2);
    expect(next.cell.ledger.flow.shares.permits.held('capped')).toBe(0);
  }, 60_000);
});
