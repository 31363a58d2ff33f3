// Flow control over real gRPC through the four tiers (docs/flow-control.md):
// a concurrency key with limit 3 never has more than 3 attempts running at
// the agents of 8 nodes, counted at every start, while unkeyed work flows
// past it and agents are killed mid-task; every permit comes back. Then
// cancel-newest, and the submits a keyed task is refused for.
import { status } from '@grpc/grpc-js';
import { afterAll, describe, expect, it } from 'vitest';
import { MeshClient } from '../../src/client/index.js';
import { MeshClientError } from '../../src/client/errors.js';
import { TaskState } from '../../src/gen/meshlb/v1/task.js';
import { seededRandom } from '../../src/policies/index.js';
import type { Topology } from '../../src/topology/types.js';
import { adminAt } from '../admin/admin-client.js';
import { waitFor } from '../helpers/wait.js';
import { SEED, startTestMesh, TEST_TOPOLOGY, type TestMesh } from './mesh-helpers.js';

const TOPOLOGY: Topology = {
  ...TEST_TOPOLOGY,
  flow: {
    lingerMs: 300,
    concurrency: new Map([
      ['cust', { limit: 3, strategy: 'queue' as const }],
      ['one', { limit: 1, strategy: 'cancel-newest' as const }],
      ['latest', { limit: 1, strategy: 'cancel-in-progress' as const }],
    ]),
    rateLimits: new Map([['llm', { units: 20, periodMs: 1000, burst: 2 }]]),
  },
};

describe(`flow control over gRPC (seed ${SEED})`, () => {
  let t: TestMesh | undefined;
  let client: MeshClient | undefined;
  afterAll(async () => {
    client?.close();
    await t?.close();
  });

  it('a key with limit 3 never has more than 3 running across 8 nodes while other work flows and agents die', async () => {
    t = await startTestMesh({ maxAttempts: 6, taskTimeoutMs: 2000, leaseSlackMs: 500 }, TOPOLOGY);
    const keyOf = new Map<string, string>(); // taskId -> key (unkeyed tasks: 'none')
    const running = (key: string): number => {
      let n = 0;
      for (const a of t!.agents)
        if (!a.closed)
          for (const ref of a.heldRefs()) if ((keyOf.get(ref.slice(0, ref.lastIndexOf('#'))) ?? 'none') === key) n++;
      return n;
    };
    const peak = new Map<string, number>();
    let next = 0;
    const spawn = (node: string) =>
      t!.addAgent(node, {
        agentId: `f${next++}`,
        slots: 2,
        serviceTimeMs: 20,
        random: seededRandom(SEED + next),
        // Counted at every start: the only moment a key's count at the agents grows (+1: this one).
        onStart: (d) => {
          const key = d.spec?.concurrencyKey || 'none';
          peak.set(key, Math.max(peak.get(key) ?? 0, running(key) + 1));
        },
      });
    for (const node of t.mesh.nodes) for (let i = 0; i < 2; i++) await spawn(node);
    await t.mesh.ready();
    const root = t.mesh.replicas.get('/')!.cell;
    client = new MeshClient({ address: t.mesh.address('/') });

    const N = 300;
    const tasks = Array.from({ length: 2 * N }, (_, i) =>
      i % 2 === 0 ? { kind: 'echo', concurrencyKey: 'cust', payload: `k${i}` } : { kind: 'echo', payload: `u${i}` },
    );
    const items = await client.submitBatch(tasks);
    items.forEach((it, i) => {
      expect(it.ok).toBe(true);
      if (i % 2 === 0) keyOf.set(it.taskId, 'cust');
    });

    // Kill agents running keyed attempts while it runs (their permits linger, then come back).
    const rnd = seededRandom(SEED);
    let killed = 0;
    while (root.ledger.liveCount > 0 && killed < 4) {
      await new Promise((r) => setTimeout(r, 60));
      const victims = t.agents.filter(
        (a) => !a.closed && [...a.heldRefs()].some((ref) => keyOf.has(ref.slice(0, ref.lastIndexOf('#')))),
      );
      if (victims.length === 0) continue;
      victims[Math.floor(rnd() * victims.length)]!.kill();
      killed++;
      await spawn(t.mesh.nodes[Math.floor(rnd() * t.mesh.nodes.length)]!);
    }
    await waitFor(() => root.ledger.liveCount === 0, { timeoutMs: 60_000, what: 'every task terminal' });
    expect(killed).toBeGreaterThan(0);
    for (const it of items) expect(root.ledger.get(it.taskId)!.state).toBe(TaskState.TASK_STATE_COMPLETED);
    expect(peak.get('cust')).toBe(3);
    // The other work was not held to the key's limit.
    expect(peak.get('none')!).toBeGreaterThan(3);
    // Every permit comes back (lingering ones once their agent answered or their linger ended).
    await waitFor(() => root.ledger.flow.permits.total === 0, { timeoutMs: 10_000, what: 'permits back to zero' });
    expect(root.home.flow.backlog().size).toBe(0);
  });

  it('cancel-newest: with the key at its limit, a task that would wait ends CANCELLED', async () => {
    const slow = await t!.addAgent(t!.mesh.nodes[0]!, {
      agentId: 'slow',
      slots: 1,
      serviceTimeMs: 400,
      kinds: ['slow'],
    });
    const items = await client!.submitBatch(
      Array.from({ length: 4 }, (_, i) => ({ kind: 'slow', concurrencyKey: 'one', payload: `${i}` })),
    );
    const root = t!.mesh.replicas.get('/')!.cell;
    await waitFor(
      () =>
        items.every((it) =>
          [TaskState.TASK_STATE_COMPLETED, TaskState.TASK_STATE_CANCELLED].includes(root.ledger.get(it.taskId)!.state),
        ),
      {
        timeoutMs: 10_000,
        what: 'all four ended',
      },
    );
    const states = items.map((it) => root.ledger.get(it.taskId)!);
    expect(states.filter((r) => r.state === TaskState.TASK_STATE_COMPLETED)).toHaveLength(1);
    const cancelled = states.filter((r) => r.state === TaskState.TASK_STATE_CANCELLED);
    expect(cancelled).toHaveLength(3);
    expect(cancelled[0]!.reason).toBe('concurrency key one at its limit of 1 (cancel-newest)');
    expect(slow.maxHeld).toBe(1);
  });

  it('cancel-in-progress: a newer task cancels the one in progress and runs once its agent stopped it', async () => {
    const agent = await t!.addAgent(t!.mesh.nodes[2]!, {
      agentId: 'long',
      slots: 2,
      // 0.6-1.8 s: within the lease (timeout 2 s + 0.5 s), long enough to be caught running.
      serviceTimeMs: 1200,
      kinds: ['long'],
    });
    await t!.mesh.ready();
    const root = t!.mesh.replicas.get('/')!.cell;
    const older = await client!.submit({ kind: 'long', concurrencyKey: 'latest', payload: 'older' });
    await waitFor(() => agent.inFlight === 1, { timeoutMs: 5000, what: 'the older task running' });
    const newer = await client!.submit({ kind: 'long', concurrencyKey: 'latest', payload: 'newer' });
    await waitFor(() => root.ledger.get(older.taskId)!.state === TaskState.TASK_STATE_CANCELLED, {
      timeoutMs: 5000,
      what: 'the older task cancelled',
    });
    expect(root.ledger.get(older.taskId)!.reason).toBe(
      'concurrency key latest at its limit of 1: cancelled for a newer task (cancel-in-progress)',
    );
    await waitFor(() => root.ledger.get(newer.taskId)!.state === TaskState.TASK_STATE_COMPLETED, {
      timeoutMs: 15_000,
      what: 'the newer task completed',
    });
    const seen = `cancelled ${agent.cancelled}, completed ${agent.completed}, failed ${agent.failed}, maxHeld ${agent.maxHeld}; newer ${JSON.stringify(root.ledger.get(newer.taskId))}`;
    expect(agent.cancelled, seen).toBe(1);
    expect(agent.maxHeld, seen).toBe(1);
  });

  it('a rate-limit key of 20/s (burst 2) over gRPC: in any second at most 22 starts (23 with the hop down), and the backlog drains at the rate', async () => {
    const startsAt: number[] = [];
    for (let i = 0; i < 4; i++)
      await t!.addAgent(t!.mesh.nodes[4 + i]!, {
        agentId: `r${i}`,
        slots: 4,
        serviceTimeMs: 5,
        kinds: ['rated'],
        onStart: () => startsAt.push(Date.now()),
      });
    await t!.mesh.ready();
    const t0 = Date.now();
    const items = await client!.submitBatch(
      Array.from({ length: 40 }, (_, i) => ({ kind: 'rated', rateLimitKey: 'llm', payload: `${i}` })),
    );
    const root = t!.mesh.replicas.get('/')!.cell;
    await waitFor(() => items.every((it) => root.ledger.get(it.taskId)!.state === TaskState.TASK_STATE_COMPLETED), {
      timeoutMs: 20_000,
      what: 'the rated tasks completed',
    });
    startsAt.sort((a, b) => a - b);
    // Starts happen at the agents after the root decided them (a hop down the tiers): a window
    // may catch one decided a moment earlier, hence the slack of one beyond rate plus burst.
    for (let i = 0, j = 0; i < startsAt.length; i++) {
      while (startsAt[i]! - startsAt[j]! >= 1000) j++;
      expect(i - j + 1, `starts in the second before ${startsAt[i]! - t0} ms`).toBeLessThanOrEqual(23);
    }
    // 40 at 20/s after a burst of 2: about 1.9 s, not much more.
    expect(startsAt[startsAt.length - 1]! - t0).toBeGreaterThanOrEqual(1800);
  });

  it('the admin API names why a queued task waits (its key at its limit)', async () => {
    const root = adminAt(t!.mesh.address('/'));
    try {
      for (let i = 0; i < 3; i++)
        await t!.addAgent(t!.mesh.nodes[1 + i]!, { agentId: `w${i}`, slots: 2, serviceTimeMs: 1500, kinds: ['wait'] });
      await t!.mesh.ready();
      const items = await client!.submitBatch(
        Array.from({ length: 5 }, (_, i) => ({ kind: 'wait', concurrencyKey: 'cust', payload: `${i}` })),
      );
      const cell = t!.mesh.replicas.get('/')!.cell;
      const waiting = await waitFor(() => items.find((it) => cell.home.flow.holds(it.taskId)), {
        timeoutMs: 5000,
        what: 'a task held for its key',
      });
      const got = await root.call('getTask', { taskId: waiting.taskId });
      expect(got.location).toBe('waiting: concurrency key cust at its limit of 3');
      expect(cell.ledger.flow.permits.held('cust')).toBe(3);
    } finally {
      root.close();
    }
  });

  it('GetFlow and SetConcurrencyLimit, asked at any cell, are answered by the root and the limit is in its log', async () => {
    const zone = adminAt(t!.mesh.address('/eu/west-1a'));
    const root = t!.mesh.replicas.get('/')!.cell;
    try {
      const flow = await zone.call('getFlow', {});
      const cust = flow.keys.find((k) => k.key === 'cust')!;
      expect(cust).toMatchObject({ limit: 3, strategy: 'queue', runtimeLimit: false });
      expect(cust.inFlight).toBe(root.ledger.flow.permits.held('cust'));
      expect(flow.keys.find((k) => k.key === 'one')).toMatchObject({ limit: 1, strategy: 'cancel-newest' });
      const set = await zone.call('setConcurrencyLimit', { key: 'cust', limit: 5 });
      expect(set.key).toMatchObject({ key: 'cust', limit: 5, runtimeLimit: true });
      expect(root.ledger.flow.limit('cust')).toBe(5);
      const back = await zone.call('setConcurrencyLimit', { key: 'cust', limit: 0 });
      expect(back.key).toMatchObject({ limit: 3, runtimeLimit: false });
      // A strategy with the limit, replicated like it; limit 0 returns both to the topology's.
      const cancel = await zone.call('setConcurrencyLimit', { key: 'cust', limit: 4, strategy: 'cancel-newest' });
      expect(cancel.key).toMatchObject({ limit: 4, strategy: 'cancel-newest', runtimeLimit: true });
      expect(root.ledger.flow.strategy('cust')).toBe('cancel-newest');
      const reset = await zone.call('setConcurrencyLimit', { key: 'cust', limit: 0 });
      expect(reset.key).toMatchObject({ limit: 3, strategy: 'queue', runtimeLimit: false });
      const rr = await zone.refused('setConcurrencyLimit', { key: 'cust', limit: 2, strategy: 'round-robin' });
      expect(rr.code).toBe(status.INVALID_ARGUMENT);
      expect(rr.details).toMatch(/round-robin groups are set in the topology/);
      const bad = await zone.refused('getFlow', { cell: '/eu' });
      expect(bad.code).toBe(status.INVALID_ARGUMENT);
      expect((await zone.refused('setConcurrencyLimit', { limit: 2 })).details).toMatch(/key is required/);
    } finally {
      zone.close();
    }
  });

  it('refuses a keyed task homed below the root, and a keyed task with durability NONE', async () => {
    const zone = new MeshClient({ address: t!.mesh.address('/eu/west-1a') });
    try {
      const below = await zone.submit({ kind: 'echo', concurrencyKey: 'cust' }).catch((e: unknown) => e);
      expect(below).toBeInstanceOf(MeshClientError);
      expect((below as MeshClientError).code).toBe(status.FAILED_PRECONDITION);
      expect((below as Error).message).toContain('root cell /');
      const none = await client!
        .submit({ kind: 'echo', concurrencyKey: 'cust', durability: 'none' })
        .catch((e: unknown) => e);
      expect((none as MeshClientError).code).toBe(status.INVALID_ARGUMENT);
      expect((none as Error).message).toContain('durability LOGGED');
    } finally {
      zone.close();
    }
  });
});
