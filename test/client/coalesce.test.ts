// Submits coalesced into SubmitBatch calls only where the caller cannot tell
// (src/client/submit-coalescer.ts), and the waiting path falling back to one
// Watch per task at a cell without WatchMany: against FakeNode, a real gRPC
// server on 127.0.0.1 that serves TaskService without WatchMany.
import { status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { TaskState } from '../../src/client/index.js';
import { expectMeshError, useClientFixture } from '../helpers/client-fixture.js';
import { waitFor } from '../helpers/wait.js';

// The coalescer is the path of cells without SubmitStream (and of `sharedSubmit: false`):
// its clients here turn the shared SubmitStream off.
const { startNode, newClient } = useClientFixture(12);

describe('submit coalescing', () => {
  it('submits made together go as one SubmitBatch; each answers as its own Submit would', async () => {
    const node = await startNode();
    const c = newClient({ address: node.address, sharedSubmit: false });
    const first = await c.submit({ kind: 'echo', idempotencyKey: 'k1' });
    // Alone (nothing in flight): a plain Submit.
    expect(node.calls).toEqual({ submit: 1 });
    node.setState(first.taskId, TaskState.TASK_STATE_RUNNING);

    const calls = [
      c.submit({ kind: 'echo' }),
      c.submit({ kind: '' }), // refused alone
      c.submit({ kind: 'echo', idempotencyKey: 'k1' }), // names the task above
      c.submit({ kind: 'echo', idempotencyKey: 'k2' }),
    ];
    const [a, bad, again, k2] = await Promise.allSettled(calls);
    expect(node.calls.submitBatch).toBe(1);
    expect(a).toMatchObject({ status: 'fulfilled', value: { existing: false, stateName: 'queued' } });
    expect(bad!.status).toBe('rejected');
    expect(((bad as PromiseRejectedResult).reason as { code: number }).code).toBe(status.INVALID_ARGUMENT);
    // The existing task is asked again alone: its state is the cell's, and it is the caller's own key.
    expect(again).toMatchObject({
      status: 'fulfilled',
      value: { taskId: first.taskId, existing: true, stateName: 'running' },
    });
    expect(k2).toMatchObject({ status: 'fulfilled', value: { existing: false } });
    expect(node.calls.submit).toBe(2);
    expect(c.coalescer!.stats).toEqual({ batches: 1, batched: 4, singles: 1 });
  });

  it('a refusal of one item rejects only its submit; off, every submit is its own call', async () => {
    const node = await startNode();
    const c = newClient({ address: node.address, retryResourceExhausted: false, sharedSubmit: false });
    node.exhausted = { count: 1, retryAfterMs: 5 };
    // FakeNode refuses per spec; the first spec of the batch takes the one refusal.
    const out = await Promise.allSettled([c.submit({ kind: 'echo' }), c.submit({ kind: 'echo' })]);
    expect(out.map((o) => o.status)).toEqual(['rejected', 'fulfilled']);
    expect(((out[0] as PromiseRejectedResult).reason as { code: number }).code).toBe(status.RESOURCE_EXHAUSTED);

    const off = newClient({ address: node.address, submitCoalesce: false, sharedSubmit: false });
    const before = node.calls.submit ?? 0;
    await Promise.all([0, 1, 2].map(() => off.submit({ kind: 'echo' })));
    expect(node.calls.submit).toBe(before + 3);
    expect(off.coalescer).toBeUndefined();
  });

  it('submits with different deadlines never share a batch', async () => {
    const node = await startNode();
    const c = newClient({ address: node.address, sharedSubmit: false });
    await Promise.all([
      c.submit({ kind: 'echo' }, { deadlineMs: 5000 }),
      c.submit({ kind: 'echo' }, { deadlineMs: 5000 }),
      c.submit({ kind: 'echo' }, { deadlineMs: 6000 }),
    ]);
    expect(node.calls).toEqual({ submitBatch: 1, submit: 1 });
  });
});

describe('waiting at a cell without WatchMany', () => {
  it('falls back to one Watch per task (UNIMPLEMENTED), and later waits go there directly', async () => {
    const node = await startNode();
    const c = newClient({ address: node.address, sharedSubmit: false });
    const ids = (await c.submitBatch([{ kind: 'echo' }, { kind: 'echo' }])).map((i) => i.taskId);
    const waits = ids.map((id) => c.waitForResult(id, { timeoutMs: 10_000 }));
    // Each wait moved to its own Watch stream.
    await waitFor(() => ids.every((id) => node.watcherCount(id) === 1) || undefined, { what: 'a Watch per task' });
    for (const id of ids) node.setState(id, TaskState.TASK_STATE_COMPLETED);
    expect((await Promise.all(waits)).map((t) => t.stateName)).toEqual(['completed', 'completed']);
    expect(c.results!.stats.broken).toBe(1);
    const streams = c.results!.stats.streams;
    const id3 = (await c.submit({ kind: 'echo' })).taskId;
    node.setState(id3, TaskState.TASK_STATE_FAILED);
    expect((await c.waitForResult(id3)).stateName).toBe('failed');
    expect(c.results!.stats.streams).toBe(streams);
    // A timeout still holds on the per-task path.
    const id4 = (await c.submit({ kind: 'echo' })).taskId;
    expect((await expectMeshError(c.waitForResult(id4, { timeoutMs: 50 }))).code).toBe(status.DEADLINE_EXCEEDED);
  });
});
