// Tasks of several slots (TaskSpec.slots, docs/gang.md) over real gRPC through
// the four tiers of the 15-cell mesh, run by the real agent SDK: a 4-slot task
// lands only on the one agent with 4 free slots (never on two agents of 2 free
// slots elsewhere), waits with its reason while that agent is busy, a task
// bigger than any agent waits "no agent with N slots" until one connects, and
// no agent ever holds more slots than it has.
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from '../../src/agent/index.js';
import { MeshClient } from '../../src/client/index.js';
import { MeshClientError } from '../../src/client/errors.js';
import { TaskState } from '../../src/gen/meshlb/v1/task.js';
import { seededRandom } from '../../src/policies/index.js';
import { adminAt, type Admin } from '../admin/admin-client.js';
import { waitFor } from '../helpers/wait.js';
import { SEED, startTestMesh, type TestMesh } from './mesh-helpers.js';

/** An agent of kind gpu that counts the slots it holds at every start, and runs until let go. */
class GpuAgent {
  readonly agent: Agent;
  used = 0;
  maxUsed = 0;
  readonly ran: string[] = [];
  private readonly gates: (() => void)[] = [];

  constructor(
    address: string,
    id: string,
    readonly slots: number,
    seed: number,
  ) {
    this.agent = new Agent({ address, agentId: id, slots, kinds: ['gpu'], random: seededRandom(seed) });
    this.agent.handle('gpu', async (task) => {
      this.used += task.slots;
      this.maxUsed = Math.max(this.maxUsed, this.used);
      this.ran.push(task.id);
      try {
        if (Buffer.from(task.payload).toString() === 'hold') await new Promise<void>((r) => this.gates.push(r));
      } finally {
        this.used -= task.slots;
      }
      return 'ok';
    });
  }

  get holding(): number {
    return this.gates.length;
  }

  release(): void {
    for (const g of this.gates.splice(0)) g();
  }
}

describe(`tasks of several slots across four tiers (seed ${SEED})`, () => {
  let t: TestMesh;
  let client: MeshClient;
  let root: Admin;
  const agents: GpuAgent[] = [];
  const add = async (node: string, id: string, slots: number): Promise<GpuAgent> => {
    const a = new GpuAgent(t.mesh.address(node), id, slots, SEED + agents.length);
    agents.push(a);
    await a.agent.start();
    return a;
  };

  beforeAll(async () => {
    t = await startTestMesh();
    // 8 slots of kind gpu in all: 4 on one agent in the US, 2 + 2 on two agents in Europe.
    await add('/us/east-1b/n2', 'big', 4);
    await add('/eu/west-1a/n1', 'small-1', 2);
    await add('/eu/west-1b/n2', 'small-2', 2);
    await t.mesh.ready();
    client = new MeshClient({ address: t.mesh.address('/') });
    root = adminAt(t.mesh.address('/'));
  }, 60_000);

  afterAll(async () => {
    for (const a of agents) a.release();
    client?.close();
    root?.close();
    for (const a of agents) a.agent.close();
    await t?.close();
  });

  const done = async (taskId: string): Promise<string> => {
    const rec = await client.waitForResult(taskId, { timeoutMs: 20_000 });
    expect(rec.state).toBe(TaskState.TASK_STATE_COMPLETED);
    return rec.result!.agentId;
  };

  it('a 4-slot task lands only on the agent with 4 free slots, among a stream of 1-slot tasks', async () => {
    const big = await client.submitBatch(Array.from({ length: 6 }, () => ({ kind: 'gpu', slots: 4 })));
    const small = await client.submitBatch(Array.from({ length: 12 }, () => ({ kind: 'gpu' })));
    for (const s of [...big, ...small]) expect(s.ok).toBe(true);
    for (const b of big) expect(await done(b.taskId)).toBe('big');
    for (const s of small) await done(s.taskId);
    for (const a of agents) expect(a.maxUsed, a.agent.agentId).toBeLessThanOrEqual(a.slots);
    for (const a of agents) expect(a.agent.stats.refusedOverSlots).toBe(0);
  });

  it('while the 4-slot agent is busy a 4-slot task waits, saying why, and runs when it frees', async () => {
    const first = await client.submit({ kind: 'gpu', slots: 4, payload: 'hold' });
    await waitFor(() => agents[0]!.holding === 1, { timeoutMs: 15_000, what: 'the first 4-slot task running on big' });
    const second = await client.submit({ kind: 'gpu', slots: 4 });
    const got = await waitFor(
      async () => {
        const r = await root.call('getTask', { taskId: second.taskId });
        return r.location.startsWith('waiting') && r;
      },
      { timeoutMs: 10_000, what: 'the second 4-slot task waiting at the root' },
    );
    expect(got.location).toBe('waiting: no agent with 4 free slots');
    // Two agents of 2 free slots do not make a block of 4: it still waits after a few summaries.
    const small = await client.submit({ kind: 'gpu' });
    await done(small.taskId);
    expect((await root.call('getTask', { taskId: second.taskId })).task?.state).toBe(TaskState.TASK_STATE_QUEUED);
    agents[0]!.release();
    expect(await done(first.taskId)).toBe('big');
    expect(await done(second.taskId)).toBe('big');
  });

  it('a task bigger than any agent waits "no agent with 6 slots" until one connects', async () => {
    const huge = await client.submit({ kind: 'gpu', slots: 6 });
    const got = await waitFor(
      async () => {
        const r = await root.call('getTask', { taskId: huge.taskId });
        return r.location.startsWith('waiting') && r;
      },
      { timeoutMs: 10_000, what: 'the 6-slot task waiting at the root' },
    );
    expect(got.location).toBe('waiting: no agent with 6 slots');
    await add('/eu/west-1b/n1', 'huge', 8);
    expect(await done(huge.taskId)).toBe('huge');
    for (const a of agents) expect(a.maxUsed, a.agent.agentId).toBeLessThanOrEqual(a.slots);
  });

  it('refuses more slots than any agent may have, and several slots with a flow key (not yet), INVALID_ARGUMENT', async () => {
    const err = await client.submit({ kind: 'gpu', slots: 20_000 }).then(
      () => undefined,
      (e: unknown) => e as MeshClientError,
    );
    expect(err).toBeInstanceOf(MeshClientError);
    expect(err!.code).toBe(status.INVALID_ARGUMENT);
    expect(err!.message).toContain('task.slots 20000 is over 10000');
    const keyed = await client.submit({ kind: 'gpu', slots: 2, concurrencyKey: 'customer-42' }).then(
      () => undefined,
      (e: unknown) => e as MeshClientError,
    );
    expect(keyed?.code).toBe(status.INVALID_ARGUMENT);
    expect(keyed!.message).toContain('a task of several slots cannot name a concurrency');
  });
});
