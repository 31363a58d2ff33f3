// AdminService over real gRPC on the four-tier test mesh (15 cells in one
// process, SimAgents): the mesh's status with live leader addresses from any
// replica; tasks listed by state, kind and tenant, page by page; get, cancel,
// retry; dead letters listed and replayed so they run; a node drained and an
// agent cordoned from the root (forwarded to the cell's leader), so work goes
// elsewhere, and lifted; a tier's policy set and reset; bad input answered
// with a clear status. Each step checks what the mesh does, not only answers.
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MeshClient } from '../../src/client/index.js';
import { CellHealth, type TaskBrief } from '../../src/gen/meshlb/v1/admin.js';
import { TaskState } from '../../src/gen/meshlb/v1/task.js';
import { adminAt, type Admin } from '../admin/admin-client.js';
import { waitFor } from '../helpers/wait.js';
import { SEED, startTestMesh, type TestMesh } from './mesh-helpers.js';

const NODE = '/eu/west-1a/n1';

describe(`AdminService across the mesh (seed ${SEED})`, () => {
  let t: TestMesh;
  let client: MeshClient;
  let root: Admin;
  let node: Admin;

  const state = (id: string): TaskState | undefined => t.mesh.replicas.get('/')!.cell.ledger.get(id)?.state;
  const waitState = (ids: readonly string[], s: TaskState, what: string) =>
    waitFor(() => ids.every((id) => state(id) === s), { timeoutMs: 15_000, what });

  beforeAll(async () => {
    t = await startTestMesh({ unplaceableTimeoutMs: 300 });
    for (const n of t.mesh.nodes) await t.addAgent(n, { agentId: `${n}-e` });
    await t.addAgent('/us/east-1a/n2', { agentId: 'flaky', kinds: ['flaky'], slots: 2, failureRate: 1 });
    await t.mesh.ready();
    client = new MeshClient({ address: t.mesh.address('/') });
    root = adminAt(t.mesh.address('/'));
    node = adminAt(t.mesh.address(NODE));
  });

  afterAll(async () => {
    root?.close();
    node?.close();
    client?.close();
    await t?.close();
  });

  it('GetMeshStatus: every cell with its live leader address, asked at the root or at a node', async () => {
    const ok = await waitFor(
      async () => {
        const s = await root.call('getMeshStatus');
        return s.cells.every((c) => c.health === CellHealth.CELL_HEALTH_HEALTHY) && s;
      },
      { timeoutMs: 10_000, what: 'every cell healthy' },
    );
    expect(ok.cells.map((c) => c.path)).toEqual(t.mesh.topology.cells.map((c) => c.path));
    for (const c of ok.cells) {
      expect(c.address).toBe(t.mesh.address(c.path)); // live (port 0 in the harness), not the file's 71xx
      expect(c.leaderAddress).toBe(t.mesh.address(c.path));
    }
    expect(ok.cells[0]).toMatchObject({ agents: 9, healthyAgents: 9, totalSlots: 18, childrenLinked: 2, children: 2 });
    expect(ok.cells.find((c) => c.path === '/us/east-1a/n2')).toMatchObject({ agents: 2, totalSlots: 4 });
    const fromNode = await node.call('getMeshStatus');
    expect(fromNode.answeredBy).toBe('/#1');
    expect(fromNode.partial).toBe('');
    expect(fromNode.cells).toHaveLength(15);

    const topo = await root.call('getTopology');
    const eu = topo.cells.find((c) => c.path === '/eu')!;
    expect(eu.leaderAddress).toBe(t.mesh.address('/eu'));
    expect(topo.cells.find((c) => c.path === '/')!.leaderAddress).toBe(t.mesh.address('/'));
  });

  it('ListTasks filters by state, kind and tenant and pages without repeats; GetTask says where a task is', async () => {
    const items = await client.submitBatch(
      Array.from({ length: 23 }, (_, i) => ({ kind: 'echo', tenant: i % 2 ? 'acme' : 'globex' })),
    );
    const ids = items.map((i) => i.taskId);
    await waitState(ids, TaskState.TASK_STATE_COMPLETED, '23 echo tasks completed');
    const seen: TaskBrief[] = [];
    let token = '';
    for (let pages = 0; pages < 10; pages++) {
      const page = await root.call('listTasks', { tenant: 'acme', kind: 'echo', pageSize: 4, pageToken: token });
      seen.push(...page.tasks);
      token = page.nextPageToken;
      if (!token) break;
    }
    const acme = ids.filter((_, i) => i % 2);
    expect(new Set(seen.map((b) => b.id))).toEqual(new Set(acme));
    expect(seen).toHaveLength(acme.length);
    for (let i = 1; i < seen.length; i++)
      expect(seen[i]!.createdUnixMs).toBeGreaterThanOrEqual(seen[i - 1]!.createdUnixMs);
    expect(seen[0]).toMatchObject({
      state: TaskState.TASK_STATE_COMPLETED,
      tenant: 'acme',
      homeCell: '/',
      failures: 0,
    });
    const newest = await root.call('listTasks', { kind: 'echo', pageSize: 1, newestFirst: true });
    expect(newest.tasks[0]!.createdUnixMs).toBeGreaterThanOrEqual(seen[seen.length - 1]!.createdUnixMs);
    const none = await root.call('listTasks', { states: [TaskState.TASK_STATE_RUNNING], kind: 'echo' });
    expect(none.tasks).toEqual([]);
    expect(none.nextPageToken).toBe('');

    const got = await root.call('getTask', { taskId: ids[0]! });
    expect(got).toMatchObject({ location: 'ended', failures: 0, replays: 0 });
    expect(got.task!.state).toBe(TaskState.TASK_STATE_COMPLETED);
  });

  it('dead letters are listed newest first, replayed as a new attempt series, and then run', async () => {
    const items = await client.submitBatch(Array.from({ length: 5 }, () => ({ kind: 'late' })));
    const ids = items.map((i) => i.taskId);
    await waitState(ids, TaskState.TASK_STATE_DEAD_LETTERED, 'tasks of a kind nobody serves dead-lettered');
    const dl = await root.call('listDeadLetters', { kind: 'late', pageSize: 3 });
    expect(dl.tasks).toHaveLength(3);
    expect(dl.tasks[0]!.reason).toMatch(/no agent of kind "?late/);
    expect(dl.tasks[0]!.createdUnixMs).toBeGreaterThanOrEqual(dl.tasks[2]!.createdUnixMs);
    const rest = await root.call('listDeadLetters', { kind: 'late', pageSize: 3, pageToken: dl.nextPageToken });
    expect(new Set([...dl.tasks, ...rest.tasks].map((b) => b.id))).toEqual(new Set(ids));
    expect(rest.nextPageToken).toBe('');

    expect((await root.refused('replayDeadLetters', {})).code).toBe(status.INVALID_ARGUMENT);
    await t.addAgent('/us/east-1b/n1', { agentId: 'late-1', kinds: ['late'], slots: 2 });
    const one = await root.call('replayDeadLetters', { taskIds: [ids[0]!, 'no-such-task'] });
    expect(one.replayed.map((b) => b.id)).toEqual([ids[0]]);
    expect(one.skipped).toEqual([{ taskId: 'no-such-task', why: 'not found' }]);
    const all = await root.call('replayDeadLetters', { all: true, kind: 'late', reason: 'agents are back' });
    expect(new Set(all.replayed.map((b) => b.id))).toEqual(new Set(ids.slice(1)));
    await waitState(ids, TaskState.TASK_STATE_COMPLETED, 'replayed dead letters completed');
    const got = await root.call('getTask', { taskId: ids[1]! });
    expect(got).toMatchObject({ replays: 1, failures: 0 });
    expect(got.task!.result!.agentId).toBe('late-1');
  });

  it('RetryTask replays a FAILED task; CancelTask cancels a waiting one; both refuse what they cannot do', async () => {
    const [f] = await client.submitBatch([{ kind: 'flaky', maxAttempts: 1 }]);
    await waitState([f!.taskId], TaskState.TASK_STATE_FAILED, 'the flaky task failed');
    const before = (await root.call('getTask', { taskId: f!.taskId })).task!.attempt;
    const r = await root.call('retryTask', { taskId: f!.taskId, reason: 'try again' });
    expect(r.action).toBe('replayed');
    await waitFor(async () => (await root.call('getTask', { taskId: f!.taskId })).task!.attempt > before, {
      what: 'a new attempt',
    });
    await waitState([f!.taskId], TaskState.TASK_STATE_FAILED, 'it failed again (the agent always fails)');
    expect((await root.call('getTask', { taskId: f!.taskId })).replays).toBe(1);

    const [w] = await client.submitBatch([{ kind: 'never' }]);
    expect((await root.call('getTask', { taskId: w!.taskId })).location).toMatch(/queued/);
    expect((await root.refused('retryTask', { taskId: w!.taskId })).code).toBe(status.FAILED_PRECONDITION);
    const c = await root.call('cancelTask', { taskId: w!.taskId, reason: 'operator' });
    expect(c.task!.state).toBe(TaskState.TASK_STATE_CANCELLED);
    const done = (await root.call('listTasks', { kind: 'echo', pageSize: 1 })).tasks[0]!;
    const completed = await root.refused('retryTask', { taskId: done.id });
    expect(completed.code).toBe(status.FAILED_PRECONDITION);
    expect(completed.details).toMatch(/completed/);
  });

  it('drains a node from the root (forwarded to it): no new work goes there until it is undrained', async () => {
    const d = await root.call('drainCell', { cell: NODE, reason: 'maintenance' });
    expect(d).toMatchObject({ cell: NODE, draining: true, reason: 'maintenance', replicated: false });
    const nodeCell = t.mesh.replicas.get(NODE)!.cell;
    expect(nodeCell.draining).toBe(true);
    const ran = nodeCell.stats.dispatched;
    const items = await client.submitBatch(Array.from({ length: 40 }, () => ({ kind: 'echo' })));
    await waitState(
      items.map((i) => i.taskId),
      TaskState.TASK_STATE_COMPLETED,
      '40 tasks done elsewhere',
    );
    expect(nodeCell.stats.dispatched).toBe(ran);
    const st = await root.call('getMeshStatus');
    expect(st.cells.find((c) => c.path === NODE)).toMatchObject({ draining: true, drainReason: 'maintenance' });
    expect((await root.call('undrainCell', { cell: NODE })).draining).toBe(false);
    expect(nodeCell.draining).toBe(false);
    expect((await root.refused('drainCell', { cell: '/' })).code).toBe(status.FAILED_PRECONDITION);
  });

  it('cordons an agent (it stays connected, gets nothing) and uncordons it', async () => {
    const agentId = `${NODE}-e`;
    const c = await root.call('cordonAgent', { cell: NODE, agentId, reason: 'suspect GPU' });
    expect(c.agent).toMatchObject({ agentId, cordoned: true, draining: true });
    const agent = t.agents.find((a) => a.opts.agentId === agentId)!;
    const before = agent.completed;
    const items = await client.submitBatch(Array.from({ length: 30 }, () => ({ kind: 'echo' })));
    await waitState(
      items.map((i) => i.taskId),
      TaskState.TASK_STATE_COMPLETED,
      '30 tasks done on other agents',
    );
    expect(agent.completed).toBe(before);
    const listed = await node.call('listAgents');
    expect(listed.agents.find((a) => a.agentId === agentId)?.cordoned).toBe(true);
    const u = await root.call('uncordonAgent', { cell: NODE, agentId });
    expect(u).toMatchObject({ wasCordoned: true, agent: { cordoned: false } });
    expect((await root.call('uncordonAgent', { cell: NODE, agentId })).wasCordoned).toBe(false);
    expect((await root.refused('cordonAgent', { cell: '/eu', agentId })).code).toBe(status.FAILED_PRECONDITION);
  });

  it("SetPolicy sets every zone's policy and config, and resets it to the topology's", async () => {
    const set = await root.call('setPolicy', { tier: 'zone', policy: 'p2c' });
    expect(set.cells.map((c) => [c.cell, c.policy, c.error])).toEqual(
      t.mesh.topology.cells.filter((c) => c.tier === 'zone').map((c) => [c.path, 'p2c', '']),
    );
    const zone = adminAt(t.mesh.address('/eu/west-1a'));
    try {
      expect(await zone.call('getCell')).toMatchObject({ policy: 'p2c', policyOverridden: true });
      const weights = await root.call('setPolicy', {
        cell: NODE,
        policy: 'node-score',
        configJson: '{"load": 2, "cpu": 0, "memory": 0}',
      });
      expect(weights.cells[0]).toMatchObject({ cell: NODE, policy: 'node-score', error: '' });
      // Tasks still flow under the new policies.
      const items = await client.submitBatch(Array.from({ length: 20 }, () => ({ kind: 'echo' })));
      await waitState(
        items.map((i) => i.taskId),
        TaskState.TASK_STATE_COMPLETED,
        'tasks done under the new policies',
      );
      await root.call('setPolicy', { tier: 'zone', reset: true });
      await root.call('setPolicy', { cell: NODE, reset: true });
      expect(await zone.call('getCell')).toMatchObject({ policy: 'zone-least-conn', policyOverridden: false });
    } finally {
      zone.close();
    }
  });

  it('answers bad input with a clear status naming what is wrong', async () => {
    const cases: [Promise<{ code: status; details: string }>, status, RegExp][] = [
      [
        root.refused('listTasks', { pageSize: 5000 }),
        status.INVALID_ARGUMENT,
        /page_size is 5000, over the limit of 1000/,
      ],
      [root.refused('listTasks', { pageToken: 'garbage' }), status.INVALID_ARGUMENT, /page_token/],
      [root.refused('listTasks', { cell: '/nowhere' }), status.NOT_FOUND, /not in topology/],
      [root.refused('listTasks', { cell: 'x'.repeat(300) }), status.INVALID_ARGUMENT, /cell is 300 characters/],
      [root.refused('getTask', { taskId: 'x'.repeat(200) }), status.INVALID_ARGUMENT, /task_id is 200 characters/],
      [root.refused('getTask', { taskId: 'nope' }), status.NOT_FOUND, /task "nope" not found/],
      [root.refused('getTask', {}), status.INVALID_ARGUMENT, /task_id is required/],
      [root.refused('setPolicy', { policy: 'fastest' }), status.INVALID_ARGUMENT, /unknown policy; known policies/],
      [
        root.refused('setPolicy', { policy: 'p2c', configJson: '{' }),
        status.INVALID_ARGUMENT,
        /config_json is not JSON/,
      ],
      [
        root.refused('setPolicy', { cell: NODE, policy: 'node-score', configJson: '{"weight":1}' }),
        status.INVALID_ARGUMENT,
        /unknown config key "weight"/,
      ],
      // V8's JSON.parse message names the UTF-16 unit it stopped at (half an emoji): a lone surrogate in a
      // status message made grpc-js's encodeURI throw, uncaught, and the replica died (found by the fuzz test).
      [
        root.refused('setPolicy', { policy: 'p2c', configJson: '\u{1F600}\u{1F600}' }),
        status.INVALID_ARGUMENT,
        /config_json is not JSON: Unexpected token '\uFFFD'/,
      ],
      [root.refused('setPolicy', { tier: 'planet', policy: 'p2c' }), status.INVALID_ARGUMENT, /tier "planet"/],
      [root.refused('setPolicy', {}), status.INVALID_ARGUMENT, /policy is required/],
      [
        root.refused('replayDeadLetters', { taskIds: Array.from({ length: 1001 }, (_, i) => `t${i}`) }),
        status.INVALID_ARGUMENT,
        /task_ids has 1001 items, over the limit of 1000/,
      ],
      [root.refused('cordonAgent', { cell: NODE }), status.INVALID_ARGUMENT, /agent_id is required/],
    ];
    for (const [p, code, re] of cases) {
      const r = await p;
      expect({ code: r.code, details: r.details }).toMatchObject({ code, details: expect.stringMatching(re) });
    }
  });
});
