// Chaos: agents die mid-task (streams cancelled abruptly, or heartbeats stop)
// while a workload runs through all four tiers. Every accepted task must end
// with exactly one terminal record, and no agent may ever hold more attempts
// than its slots (checked by the agents themselves and by the node cells).
import { afterAll, describe, expect, it } from 'vitest';
import { MeshClient } from '../../src/client/index.js';
import { TaskState } from '../../src/gen/meshlb/v1/task.js';
import { seededRandom } from '../../src/policies/index.js';
import { waitFor } from '../helpers/wait.js';
import { SEED, startTestMesh, type TestMesh } from './mesh-helpers.js';

describe(`mesh chaos: agents killed mid-task (seed ${SEED})`, () => {
  let t: TestMesh | undefined;
  let client: MeshClient | undefined;
  afterAll(async () => {
    client?.close();
    await t?.close();
  });

  it('every task ends exactly once and no agent exceeds its slots', async () => {
    t = await startTestMesh({ maxAttempts: 6, taskTimeoutMs: 3000, leaseSlackMs: 500 });
    const rnd = seededRandom(SEED);
    let next = 0;
    const spawn = async (node: string) =>
      t!.addAgent(node, { agentId: `c${next++}`, slots: 3, serviceTimeMs: 15, random: seededRandom(SEED + next) });
    for (const node of t.mesh.nodes) for (let i = 0; i < 3; i++) await spawn(node);
    await t.mesh.ready();

    const root = t.mesh.replicas.get('/')!.cell;
    const terminal = new Map<string, number>();
    root.ledger.onTerminal((rec) => terminal.set(rec.id, (terminal.get(rec.id) ?? 0) + 1));
    client = new MeshClient({ address: t.mesh.address('/') });
    const N = 1500;
    const ids: string[] = [];
    for (let b = 0; b < N / 250; b++) {
      const items = await client.submitBatch(
        Array.from({ length: 250 }, (_, i) => ({ kind: 'echo', payload: `c${b}-${i}` })),
      );
      for (const it of items) {
        expect(it.ok).toBe(true);
        ids.push(it.taskId);
      }
    }

    // While it runs: kill or mute a random live agent every few ms, and start a
    // replacement on a random node, until the work is done or 12 kills happened.
    let killed = 0;
    let muted = 0;
    while (root.ledger.liveCount > 0 && killed + muted < 12) {
      await new Promise((r) => setTimeout(r, 40));
      const live = t.agents.filter((a) => !a.closed && a.inFlight > 0);
      if (live.length === 0) continue;
      const victim = live[Math.floor(rnd() * live.length)]!;
      if (rnd() < 0.5) {
        victim.kill();
        killed++;
      } else {
        victim.mute();
        muted++;
      }
      await spawn(t.mesh.nodes[Math.floor(rnd() * t.mesh.nodes.length)]!);
    }

    await waitFor(() => root.ledger.liveCount === 0, { timeoutMs: 30_000, what: 'every task terminal' });
    expect(killed + muted).toBeGreaterThan(0);
    let completed = 0;
    for (const id of ids) {
      expect(terminal.get(id), `terminal records of ${id}`).toBe(1);
      const st = root.ledger.get(id)!.state;
      if (st === TaskState.TASK_STATE_COMPLETED) completed++;
      else expect([TaskState.TASK_STATE_FAILED, TaskState.TASK_STATE_DEAD_LETTERED]).toContain(st);
    }
    // Lost attempts were retried elsewhere: with 6 attempts almost all complete.
    expect(completed).toBeGreaterThan(N * 0.95);
    for (const a of t.agents) expect(a.maxHeld, `agent ${a.opts.agentId} held`).toBeLessThanOrEqual(a.opts.slots);
    for (const node of t.mesh.nodes)
      expect(t.mesh.replicas.get(node)!.cell.agents!.maxOverSlots).toBeLessThanOrEqual(0);
    // Muted agents were declared dead by missed heartbeats.
    if (muted > 0) {
      await waitFor(() => t!.agents.filter((a) => a.status?.code === 4).length > 0, {
        timeoutMs: 5_000,
        what: 'a muted agent ended with DEADLINE_EXCEEDED',
      });
    }
  });
});
