// Debounce and singleton keys over real gRPC through the four tiers
// (docs/flow-control.md, "Debounce and singleton"): 20 submits of one
// debounce key within its period are one task, run once with the last
// payload, and the admin API says why it waits; singleton SKIP answers the
// running task's id; singleton CANCEL cancels the running task at its agent
// and runs the new one; keyed submits below the root are refused.
import { status } from '@grpc/grpc-js';
import { afterAll, describe, expect, it } from 'vitest';
import { MeshClient } from '../../src/client/index.js';
import { MeshClientError } from '../../src/client/errors.js';
import type { Dispatch } from '../../src/gen/meshlb/v1/task.js';
import { TaskState } from '../../src/gen/meshlb/v1/task.js';
import { adminAt } from '../admin/admin-client.js';
import { waitFor } from '../helpers/wait.js';
import { SEED, startTestMesh, type TestMesh } from './mesh-helpers.js';

const text = (d: Dispatch): string => Buffer.from(d.spec!.payload).toString();

describe(`debounce and singleton keys over gRPC (seed ${SEED})`, () => {
  let t: TestMesh | undefined;
  let client: MeshClient | undefined;
  afterAll(async () => {
    client?.close();
    await t?.close();
  });

  it('20 submits of one debounce key within its period run once, with the last payload', async () => {
    t = await startTestMesh();
    const starts: Dispatch[] = [];
    await t.addAgent(t.mesh.nodes[0]!, {
      agentId: 'deb',
      slots: 4,
      serviceTimeMs: 10,
      kinds: ['deb'],
      onStart: (d) => starts.push(d),
    });
    await t.mesh.ready();
    client = new MeshClient({ address: t.mesh.address('/') });
    const root = t.mesh.replicas.get('/')!.cell;
    const admin = adminAt(t.mesh.address('/eu/west-1a'));
    try {
      const answers = [];
      for (let i = 0; i < 20; i++) {
        // A wide window: under CI load a submit can take a while, and the window must outlast the gaps.
        const debounce = { key: 'user-7', periodMs: 3000, maxWaitMs: 60_000 };
        answers.push(await client.submit({ kind: 'deb', debounce, payload: `v${i}` }));
      }
      const id = answers[0]!.taskId;
      expect(answers.map((a) => a.taskId)).toEqual(Array<string>(20).fill(id));
      // Held in its window, and the admin API (asked at a zone, routed to the root) says so.
      const got = await admin.call('getTask', { taskId: id, cell: '/' });
      expect(got.location).toMatch(/^waiting: debounced until \d{4}-\d\d-\d\dT/);
      expect(answers.map((a) => a.existing)).toEqual([false, ...Array<boolean>(19).fill(true)]);
      await waitFor(() => root.ledger.get(id)!.state === TaskState.TASK_STATE_COMPLETED, {
        timeoutMs: 20_000,
        what: 'the debounced task completed',
      });
      expect(starts.map((d) => [d.taskId, text(d)])).toEqual([[id, 'v19']]);
      expect(root.ledger.keyed.size.debounces).toBe(0);
      // The window closed: the next submit is a new task.
      const next = await client.submit({ kind: 'deb', debounce: { key: 'user-7', periodMs: 50 }, payload: 'again' });
      expect(next.taskId).not.toBe(id);
      await waitFor(() => starts.length === 2, { timeoutMs: 10_000, what: 'the second run' });
      expect(text(starts[1]!)).toBe('again');
    } finally {
      admin.close();
    }
  });

  it('singleton SKIP: a submit while the key runs gets the running task id; CANCEL replaces it at its agent', async () => {
    const agent = await t!.addAgent(t!.mesh.nodes[1]!, {
      agentId: 'one',
      slots: 2,
      // 0.6-1.8 s: long enough to be caught running, well within the lease.
      serviceTimeMs: 1200,
      kinds: ['single'],
    });
    await t!.mesh.ready();
    const root = t!.mesh.replicas.get('/')!.cell;
    const running = (id: string) => () =>
      [TaskState.TASK_STATE_RUNNING, TaskState.TASK_STATE_DISPATCHED].includes(root.ledger.get(id)!.state) &&
      agent.inFlight === 1;

    const first = await client!.submit({ kind: 'single', singleton: { key: 'report' }, payload: 'a' });
    await waitFor(running(first.taskId), { timeoutMs: 5000, what: 'the first running' });
    const skipped = await client!.submit({ kind: 'single', singleton: { key: 'report', mode: 'skip' }, payload: 'b' });
    expect(skipped).toMatchObject({ taskId: first.taskId, existing: true });

    const newer = await client!.submit({ kind: 'single', singleton: { key: 'report', mode: 'cancel' }, payload: 'c' });
    expect(newer.existing).toBe(false);
    const old = root.ledger.get(first.taskId)!;
    expect(old.state).toBe(TaskState.TASK_STATE_CANCELLED);
    expect(old.reason).toBe(`singleton key report: replaced by task ${newer.taskId}`);
    await waitFor(() => root.ledger.get(newer.taskId)!.state === TaskState.TASK_STATE_COMPLETED, {
      timeoutMs: 15_000,
      what: 'the newer task completed',
    });
    const seen = `cancelled ${agent.cancelled}, completed ${agent.completed}, maxHeld ${agent.maxHeld}`;
    expect(agent.cancelled, seen).toBe(1);
    expect(agent.completed, seen).toBe(1);
    expect(root.ledger.keyed.size.singletons).toBe(0);
  });

  it('keyed submits below the root, and bad keyed specs, are refused', async () => {
    const zone = new MeshClient({ address: t!.mesh.address('/eu/west-1a') });
    try {
      const below = await zone.submit({ kind: 'deb', debounce: { key: 'k', periodMs: 10 } }).catch((e: unknown) => e);
      expect(below).toBeInstanceOf(MeshClientError);
      expect((below as MeshClientError).code).toBe(status.FAILED_PRECONDITION);
      const none = await client!
        .submit({ kind: 'single', singleton: { key: 'k' }, durability: 'none' })
        .catch((e: unknown) => e);
      expect((none as MeshClientError).code).toBe(status.INVALID_ARGUMENT);
      const noPeriod = await client!
        .submit({ kind: 'deb', debounce: { key: 'k', periodMs: 0 } })
        .catch((e: unknown) => e);
      expect((noPeriod as MeshClientError).code).toBe(status.INVALID_ARGUMENT);
    } finally {
      zone.close();
    }
  });
});
