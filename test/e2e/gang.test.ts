// Gangs (docs/gang.md) over real gRPC at one node cell of the 15-cell mesh,
// run by the real agent SDK: a gang of 3 waits while only 2 slots are free
// (no member starts, each says why), lands whole when a third slot frees, and
// ends whole when one member's agent is killed (that member lost, the others
// cancelled). A gang submitted at the root waits there while no node has room
// for all its members, then goes down the four tiers whole and runs on the
// agents of one node, beside plain tasks. A gang with members that disagree on
// its size, or part of a gang, is refused INVALID_ARGUMENT.
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

const NODE = '/eu/west-1a/n1';

/** An agent of one slot of kind train that runs each task until let go (or cancelled). */
class TrainAgent {
  readonly agent: Agent;
  readonly running = new Map<string, () => void>();
  readonly ran: string[] = [];

  constructor(address: string, id: string, seed: number, kind = 'train') {
    this.agent = new Agent({ address, agentId: id, slots: 1, kinds: [kind], random: seededRandom(seed) });
    this.agent.handle(kind, async (task) => {
      this.ran.push(task.id);
      try {
        await new Promise<void>((resolve) => {
          this.running.set(task.id, resolve);
          task.signal.addEventListener('abort', () => resolve(), { once: true });
        });
      } finally {
        this.running.delete(task.id);
      }
      return 'ok';
    });
  }

  finish(id: string): void {
    this.running.get(id)?.();
  }
}

describe(`gangs at one node (seed ${SEED})`, () => {
  let t: TestMesh;
  let client: MeshClient;
  let node: Admin;
  const agents: TrainAgent[] = [];

  beforeAll(async () => {
    t = await startTestMesh();
    for (const id of ['a1', 'a2', 'a3']) {
      const a = new TrainAgent(t.mesh.address(NODE), id, SEED + agents.length);
      agents.push(a);
      await a.agent.start();
    }
    await t.mesh.ready();
    client = new MeshClient({ address: t.mesh.address(NODE) });
    node = adminAt(t.mesh.address(NODE));
  }, 60_000);

  afterAll(async () => {
    client?.close();
    node?.close();
    for (const a of agents) a.agent.close();
    await t?.close();
  });

  const holders = (ids: readonly string[]): number => agents.filter((a) => ids.some((id) => a.running.has(id))).length;
  const gang = (id: string, n: number) =>
    Array.from({ length: n }, (_, i) => ({ kind: 'train', gang: { id, size: n }, payload: `member ${i}` }));

  it('waits while only 2 of 3 slots are free, lands whole when the third frees, ends whole when an agent dies', async () => {
    const blocker = (await client.submit({ kind: 'train' })).taskId;
    await waitFor(() => holders([blocker]) === 1, { timeoutMs: 15_000, what: 'the blocker running' });

    const members = (await client.submitBatch(gang('g1', 3))).map((s) => s.taskId);
    expect(members).toHaveLength(3);
    // Every member says why it waits; none starts while two slots alone are free.
    for (const id of members) {
      await waitFor(
        async () =>
          (await node.call('getTask', { taskId: id })).location === 'waiting: for its gang (2 of 3 members placeable)',
        { timeoutMs: 10_000, what: `member ${id} waiting for its gang` },
      );
    }
    // A plain task of the kind takes one of the free slots and ends: the node placed it
    // (pumped) while the gang waited, and still no member holds an agent.
    const plain = (await client.submit({ kind: 'train' })).taskId;
    await waitFor(() => holders([plain]) === 1, { timeoutMs: 15_000, what: 'the plain task running' });
    expect(holders(members)).toBe(0);
    agents.find((a) => a.running.has(plain))!.finish(plain);
    expect((await client.waitForResult(plain, { timeoutMs: 15_000 })).state).toBe(TaskState.TASK_STATE_COMPLETED);
    expect(holders(members)).toBe(0);
    for (const id of members)
      expect((await node.call('getTask', { taskId: id })).task?.state).toBe(TaskState.TASK_STATE_QUEUED);

    // The third slot frees: all three start, one on each agent.
    const blockerAgent = agents.find((a) => a.running.has(blocker))!;
    blockerAgent.finish(blocker);
    expect((await client.waitForResult(blocker, { timeoutMs: 15_000 })).state).toBe(TaskState.TASK_STATE_COMPLETED);
    await waitFor(() => holders(members) === 3, { timeoutMs: 15_000, what: 'every member running' });

    // One member's agent dies: that member ends (it runs once), and the others are cancelled.
    const victim = agents.find((a) => a.running.size > 0)!;
    const lost = [...victim.running.keys()][0]!;
    victim.agent.close();
    const ends = await Promise.all(members.map((id) => client.waitForResult(id, { timeoutMs: 20_000 })));
    for (const [i, rec] of ends.entries()) {
      if (members[i] === lost)
        expect([TaskState.TASK_STATE_FAILED, TaskState.TASK_STATE_DEAD_LETTERED]).toContain(rec.state);
      else {
        expect(rec.state).toBe(TaskState.TASK_STATE_CANCELLED);
        expect(rec.reason).toMatch(`gang g1: member ${lost}`);
      }
    }
    // Each member started once, on one agent.
    for (const id of members) expect(agents.filter((a) => a.ran.includes(id))).toHaveLength(1);
  }, 60_000);

  it('a gang at the root waits there while no node holds it all, then runs whole on one node', async () => {
    // Kind fit: 2 agents at /eu/west-1b/n1, 3 at /us/east-1a/n2. A gang of 3 fits the second node only.
    const at = new Map<TrainAgent, string>();
    for (const [node, n] of [
      ['/eu/west-1b/n1', 2],
      ['/us/east-1a/n2', 3],
    ] as const) {
      for (let i = 0; i < n; i++) {
        const a = new TrainAgent(t.mesh.address(node), `fit-${node}-${i}`, SEED + 100 + at.size, 'fit');
        at.set(a, node);
        agents.push(a);
        await a.agent.start();
      }
    }
    const fit = [...at.keys()];
    const top = new MeshClient({ address: t.mesh.address('/') });
    const root = adminAt(t.mesh.address('/'));
    try {
      const busy = (ids: readonly string[]) => fit.filter((a) => ids.some((id) => a.running.has(id)));
      // One plain task at a time until one runs at the node of 3 (it blocks an agent there); the others end.
      let blocker = '';
      for (let tries = 0; tries < 20 && !blocker; tries++) {
        const id = (await top.submit({ kind: 'fit' })).taskId;
        await waitFor(() => busy([id]).length === 1, { timeoutMs: 15_000, what: `plain task ${id} running` });
        if (at.get(busy([id])[0]!) === '/us/east-1a/n2') blocker = id;
        else {
          busy([id])[0]!.finish(id);
          expect((await top.waitForResult(id, { timeoutMs: 15_000 })).state).toBe(TaskState.TASK_STATE_COMPLETED);
        }
      }
      expect(blocker, 'a plain task ran at /us/east-1a/n2 within 20 tries').not.toBe('');
      // The root's latest summaries show it: no node below holds 3 free (node_free, docs/gang.md).
      const roomiest = async (): Promise<number> => {
        const cell = await root.call('getCell', {});
        const free = cell.children.flatMap((c) => c.summary?.kinds.filter((k) => k.kind === 'fit') ?? []);
        return Math.max(0, ...free.map((k) => k.nodeFree));
      };
      await waitFor(async () => (await roomiest()) === 2, {
        timeoutMs: 15_000,
        what: 'the root seeing 2 free at most',
      });

      const members = (await top.submitBatch(gang('top', 3).map((m) => ({ ...m, kind: 'fit' })))).map((s) => s.taskId);
      for (const id of members)
        await waitFor(
          async () =>
            (await root.call('getTask', { taskId: id })).location ===
            'waiting: for its gang (no child with room for all 3 members)',
          { timeoutMs: 15_000, what: `member ${id} waiting at the root for its gang` },
        );
      // Plain work runs beside it meanwhile, and no member holds an agent.
      const more = (await top.submitBatch([{ kind: 'fit' }, { kind: 'fit' }])).map((s) => s.taskId);
      await waitFor(() => busy(more).length === 2, { timeoutMs: 15_000, what: 'plain tasks running' });
      expect(busy(members)).toHaveLength(0);
      for (const id of more) busy([id])[0]!.finish(id);
      for (const id of more)
        expect((await top.waitForResult(id, { timeoutMs: 15_000 })).state).toBe(TaskState.TASK_STATE_COMPLETED);

      // The big node's blocker ends: the gang goes down whole and runs there, one member per agent.
      busy([blocker])[0]!.finish(blocker);
      await waitFor(() => busy(members).length === 3, { timeoutMs: 20_000, what: 'the gang running' });
      expect(new Set(busy(members).map((a) => at.get(a)))).toEqual(new Set(['/us/east-1a/n2']));
      for (const id of members) busy([id])[0]!.finish(id);
      for (const id of members) {
        const r = await top.waitForResult(id, { timeoutMs: 15_000 });
        expect(r.state).toBe(TaskState.TASK_STATE_COMPLETED);
        expect(fit.filter((a) => a.ran.includes(id))).toHaveLength(1); // ran once
      }
    } finally {
      top.close();
      root.close();
    }
  }, 60_000);

  it('refuses members that disagree on the size, or part of a gang', async () => {
    const refused = async (c: MeshClient, tasks: ReturnType<typeof gang>): Promise<number | undefined> => {
      try {
        await c.submitBatch(tasks);
        return undefined;
      } catch (err) {
        return err instanceof MeshClientError ? err.code : -1;
      }
    };
    const bad = gang('s', 3);
    bad[2] = { ...bad[2]!, gang: { id: 's', size: 4 } };
    expect(await refused(client, bad)).toBe(status.INVALID_ARGUMENT);
    expect(await refused(client, gang('p', 3).slice(0, 2))).toBe(status.INVALID_ARGUMENT);
    // Above a node too, with its reason.
    const zone = new MeshClient({ address: t.mesh.address('/eu/west-1a') });
    try {
      expect(await refused(zone, gang('z', 2).slice(0, 1))).toBe(status.INVALID_ARGUMENT);
    } finally {
      zone.close();
    }
  });
});
