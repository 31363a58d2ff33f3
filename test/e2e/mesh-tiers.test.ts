// Integration over real gRPC on loopback across all four tiers: tasks
// submitted at "/" run on agents under node cells and their results come back
// to the home ledger; Get, Watch and Cancel work; a task submitted at a node
// whose subtree lacks its kind spills up and runs elsewhere.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MeshClient } from '../../src/client/index.js';
import { AdminServiceClient } from '../../src/gen/meshlb/v1/admin.js';
import { TaskState } from '../../src/gen/meshlb/v1/task.js';
import { credentials } from '@grpc/grpc-js';
import { waitFor } from '../helpers/wait.js';
import { SEED, startTestMesh, type TestMesh } from './mesh-helpers.js';

describe(`mesh across four tiers (seed ${SEED})`, () => {
  let t: TestMesh;
  let client: MeshClient;

  beforeAll(async () => {
    t = await startTestMesh();
    // Two echo agents on every node; one 'rare' agent only under /us/east-1b/n2;
    // one slow agent for cancel under /eu/west-1b/n2.
    for (const node of t.mesh.nodes) {
      for (let i = 0; i < 2; i++) await t.addAgent(node, { agentId: `${node}-e${i}` });
    }
    await t.addAgent('/us/east-1b/n2', { agentId: 'rare-1', kinds: ['rare'], slots: 1 });
    await t.addAgent('/eu/west-1b/n2', { agentId: 'slow-1', kinds: ['slow'], slots: 1, serviceTimeMs: 60_000 });
    await t.mesh.ready();
    client = new MeshClient({ address: t.mesh.address('/') });
  });

  afterAll(async () => {
    client?.close();
    await t?.close();
  });

  it('runs tasks submitted at "/" on agents under node cells and records every result once', async () => {
    const items = await client.submitBatch(Array.from({ length: 300 }, (_, i) => ({ kind: 'echo', payload: `p${i}` })));
    expect(items.every((i) => i.ok)).toBe(true);
    const root = t.mesh.replicas.get('/')!.cell;
    await waitFor(() => items.every((i) => root.ledger.get(i.taskId)?.state === TaskState.TASK_STATE_COMPLETED), {
      timeoutMs: 15_000,
      what: '300 tasks completed',
    });
    const task = await client.get(items[0]!.taskId);
    expect(task.state).toBe(TaskState.TASK_STATE_COMPLETED);
    expect(task.homeCell).toBe('/');
    expect(task.result!.nodeCell).toMatch(/^\/(eu|us)\/[a-z0-9-]+\/n[12]$/);
    expect(task.result!.agentId).toMatch(/-e[01]$/);
    // Work spread over both regions.
    const nodes = new Set(items.map((i) => root.ledger.get(i.taskId)!.result!.nodeCell.split('/')[1]));
    expect(nodes).toEqual(new Set(['eu', 'us']));
    expect(root.ledger.counters.completed).toBeGreaterThanOrEqual(300);
    for (const a of t.agents) expect(a.maxHeld).toBeLessThanOrEqual(a.opts.slots);
  });

  it('idempotency keys name one task', async () => {
    const a = await client.submit({ kind: 'echo', idempotencyKey: 'same-key' });
    const b = await client.submit({ kind: 'echo', idempotencyKey: 'same-key' });
    expect(b.taskId).toBe(a.taskId);
    expect(b.existing).toBe(true);
  });

  it('Watch streams the record until it ends', async () => {
    const { taskId } = await client.submit({ kind: 'echo', payload: 'watch-me' });
    const states: TaskState[] = [];
    for await (const task of client.watch(taskId, { deadlineMs: 10_000 })) states.push(task.state);
    expect(states.at(-1)).toBe(TaskState.TASK_STATE_COMPLETED);
  });

  it('Cancel ends a running task and the cancel reaches the agent', async () => {
    const { taskId } = await client.submit({ kind: 'slow' });
    const slow = t.agents.find((a) => a.opts.agentId === 'slow-1')!;
    await waitFor(() => slow.inFlight === 1, { timeoutMs: 10_000, what: 'slow task running' });
    const task = await client.cancel(taskId, 'test');
    expect(task.state).toBe(TaskState.TASK_STATE_CANCELLED);
    await waitFor(() => slow.cancelled === 1 && slow.inFlight === 0, {
      timeoutMs: 5_000,
      what: 'agent saw the cancel',
    });
    const again = await client.get(taskId);
    expect(again.state).toBe(TaskState.TASK_STATE_CANCELLED);
  });

  it('spills a task up from a node whose subtree lacks its kind, and it runs elsewhere', async () => {
    const home = '/eu/west-1a/n1';
    const nodeClient = new MeshClient({ address: t.mesh.address(home) });
    try {
      const { taskId } = await nodeClient.submit({ kind: 'rare', payload: 'x' });
      const done = await nodeClient.waitForResult(taskId, { timeoutMs: 15_000 });
      expect(done.state).toBe(TaskState.TASK_STATE_COMPLETED);
      expect(done.homeCell).toBe(home);
      expect(done.result!.nodeCell).toBe('/us/east-1b/n2');
      expect(done.result!.agentId).toBe('rare-1');
      expect(t.mesh.replicas.get(home)!.cell.stats.spilled).toBeGreaterThanOrEqual(1);
    } finally {
      nodeClient.close();
    }
  });

  it('AdminService answers GetTopology, GetCell and ListAgents', async () => {
    const admin = new AdminServiceClient(t.mesh.address('/eu/west-1a/n1'), credentials.createInsecure());
    const call = <T>(fn: (cb: (err: Error | null, res: T) => void) => void) =>
      new Promise<T>((res, rej) => fn((err, r) => (err ? rej(err) : res(r))));
    try {
      const topo = await call<{ cells: unknown[] }>((cb) => admin.getTopology({}, cb as never));
      expect(topo.cells).toHaveLength(15);
      const cell = await call<{ cell: { tier: string }; parentConnected: boolean; summary: { kinds: unknown[] } }>(
        (cb) => admin.getCell({ path: '' }, cb as never),
      );
      expect(cell.cell.tier).toBe('node');
      expect(cell.parentConnected).toBe(true);
      const agents = await call<{ agents: { agentId: string }[] }>((cb) => admin.listAgents({}, cb as never));
      expect(agents.agents.map((a) => a.agentId).sort()).toEqual(['/eu/west-1a/n1-e0', '/eu/west-1a/n1-e1']);
    } finally {
      admin.close();
    }
  });
});
