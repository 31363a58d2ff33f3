// The SDKs against the real mesh (src/mesh), not the fake node: a four-tier
// chain on loopback, SDK agents on its node cell, a MeshClient at "/".
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent, seededRandom, type AgentTask } from '../../src/agent/index.js';
import { MeshClient, TaskState, outputJson } from '../../src/client/index.js';
import { startMesh, type MeshHarness } from '../../src/dev/harness.js';
import { parseTopology } from '../../src/topology/parse.js';
import { chainTopologyYaml } from '../../src/topology/chain.js';
import { waitFor } from '../helpers/wait.js';

const SEED = Number(process.env.MESHLB_TEST_SEED ?? 424242);

const TOPOLOGY = parseTopology(chainTopologyYaml({ name: 'sdk-chain', basePort: 7300 }));
const NODE = '/r/z/n1';

describe(`SDK agents and client on the real mesh (seed ${SEED})`, () => {
  let mesh: MeshHarness;
  let client: MeshClient;
  const agents: Agent[] = [];

  function agent(id: string, slots = 2): Agent {
    const a = new Agent({
      address: mesh.address(NODE),
      agentId: id,
      slots,
      random: seededRandom(SEED + agents.length),
      backoff: { initialMs: 10, maxMs: 100 },
    });
    agents.push(a);
    return a;
  }

  beforeAll(async () => {
    mesh = await startMesh(TOPOLOGY, {
      seed: SEED,
      heartbeatIntervalMs: 100,
      heartbeatTimeoutMs: 600,
      summaryIntervalMs: 100,
    });
    client = new MeshClient({ address: mesh.address('/'), deadlineMs: 10_000 });
  });

  afterAll(async () => {
    for (const a of agents) a.close();
    client?.close();
    await mesh?.close();
  });

  it('runs submitted tasks on SDK agents and returns their output, within slots', async () => {
    const a = agent('sdk-a', 3).handle('sum', (t) => ({
      sum: t.json<number[]>().reduce((x, y) => x + y, 0),
      attempt: t.attempt,
    }));
    await a.start();
    await mesh.ready();
    const items = await client.submitBatch(Array.from({ length: 60 }, (_, i) => ({ kind: 'sum', payload: [i, 1] })));
    expect(items.every((i) => i.ok)).toBe(true);
    const done = await Promise.all(items.map((i) => client.waitForResult(i.taskId, { timeoutMs: 15_000 })));
    expect(done.every((t) => t.state === TaskState.TASK_STATE_COMPLETED)).toBe(true);
    expect(outputJson(done[7]!)).toEqual({ sum: 8, attempt: 1 });
    expect(done[0]!.result!.agentId).toBe('sdk-a');
    expect(a.stats.refusedOverSlots).toBe(0);
    expect(a.stats.maxInFlight).toBeLessThanOrEqual(3);
    await a.drain();
  });

  it('a task whose agent vanishes mid-run runs again (attempt 2) on another agent', async () => {
    const seen: AgentTask[] = [];
    const first = agent('sdk-doomed', 1).handle('job', (t) => {
      seen.push(t);
      return new Promise(() => {}); // never finishes
    });
    await first.start();
    await mesh.ready();
    const { taskId } = await client.submit({ kind: 'job', payload: 'x', maxAttempts: 3 });
    await waitFor(() => seen.length === 1, { timeoutMs: 10_000, what: 'first attempt running' });
    first.close();
    const second = agent('sdk-rescuer', 1).handle('job', (t) => `done on attempt ${t.attempt}`);
    await second.start();
    const t = await client.waitForResult(taskId, { timeoutMs: 15_000 });
    expect(t.state).toBe(TaskState.TASK_STATE_COMPLETED);
    expect(t.result!.agentId).toBe('sdk-rescuer');
    expect(Buffer.from(t.result!.output).toString()).toBe('done on attempt 2');
    await second.drain();
  });

  it('a client cancel reaches the running handler as an aborted signal', async () => {
    let running: AgentTask | undefined;
    const a = agent('sdk-cancellee', 1).handle(
      'long',
      (t) =>
        new Promise((_, reject) => {
          running = t;
          t.signal.addEventListener('abort', () => reject(t.signal.reason));
        }),
    );
    await a.start();
    await mesh.ready();
    const { taskId } = await client.submit({ kind: 'long' });
    await waitFor(() => running, { timeoutMs: 10_000, what: 'running' });
    const t = await client.cancel(taskId, 'changed my mind');
    expect(t.state).toBe(TaskState.TASK_STATE_CANCELLED);
    await waitFor(() => running!.signal.aborted, { timeoutMs: 10_000, what: 'handler signal aborted' });
    await waitFor(() => a.inFlight === 0, { what: 'slot freed' });
    expect(a.stats.tasksCancelled).toBe(1);
    await a.drain();
  });

  it('drain finishes the in-flight task, its result is recorded, and the agent leaves', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const a = agent('sdk-drainer', 1).handle('slowish', async () => {
      await gate;
      return 'finished while draining';
    });
    await a.start();
    await mesh.ready();
    const { taskId } = await client.submit({ kind: 'slowish' });
    await waitFor(() => a.inFlight === 1, { timeoutMs: 10_000, what: 'running' });
    const drained = a.drain({ timeoutMs: 10_000 });
    await waitFor(() => a.draining, { what: 'draining' });
    release();
    await drained;
    expect(a.state).toBe('closed');
    const t = await client.waitForResult(taskId, { timeoutMs: 10_000 });
    expect(t.state).toBe(TaskState.TASK_STATE_COMPLETED);
    expect(Buffer.from(t.result!.output).toString()).toBe('finished while draining');
  });
});
