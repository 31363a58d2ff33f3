import { status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import {
  Durability,
  Priority,
  TaskState,
  isTerminal,
  outputJson,
  taskStateName,
  toTaskSpec,
  type Task,
} from '../../src/client/index.js';
import { expectMeshError, useClientFixture } from '../helpers/client-fixture.js';
import { waitFor } from '../helpers/wait.js';

const { startNode, newClient } = useClientFixture(5);

describe('toTaskSpec', () => {
  it('converts friendly input: priority names, label records, JSON/text/bytes payloads, durability, deadline', () => {
    const d = new Date('2030-01-01T00:00:00Z');
    const s = toTaskSpec({
      kind: 'k',
      priority: 'critical',
      labels: { a: '1', b: '2' },
      payload: { x: 1 },
      durability: 'none',
      deadline: d,
      idempotencyKey: 'i',
    });
    expect(s.priority).toBe(Priority.PRIORITY_CRITICAL);
    expect(s.labels).toEqual([
      { key: 'a', value: '1' },
      { key: 'b', value: '2' },
    ]);
    expect(s.payload.toString()).toBe('{"x":1}');
    expect(s.durability).toBe(Durability.DURABILITY_NONE);
    expect(s.deadlineUnixMs).toBe(d.getTime());
    expect(toTaskSpec({ kind: 'k', payload: 'héllo' }).payload.toString()).toBe('héllo');
    expect([...toTaskSpec({ kind: 'k', payload: new Uint8Array([1, 2]) }).payload]).toEqual([1, 2]);
    expect(toTaskSpec({ kind: 'k' }).priority).toBe(Priority.PRIORITY_UNSPECIFIED);
    expect(toTaskSpec({ kind: 'k', priority: 'low' }).priority).toBe(Priority.PRIORITY_LOW);
    expect(() => toTaskSpec({ kind: 'k', priority: 'urgent' as never })).toThrow(/unknown priority/);
  });

  it('names states and knows which are terminal', () => {
    expect(taskStateName(TaskState.TASK_STATE_DEAD_LETTERED)).toBe('dead_lettered');
    expect(isTerminal(TaskState.TASK_STATE_COMPLETED)).toBe(true);
    expect(isTerminal(TaskState.TASK_STATE_RUNNING)).toBe(false);
  });
});

describe('MeshClient', () => {
  it('submits one and many, gets, cancels', async () => {
    const node = await startNode();
    const c = newClient({ address: node.address });
    const r = await c.submit({ kind: 'echo', payload: 'hi', priority: 'high', labels: { zone: 'a' } });
    expect(r).toMatchObject({ taskId: 't-1', existing: false, state: TaskState.TASK_STATE_QUEUED });
    expect(node.submitted[0]).toMatchObject({
      kind: 'echo',
      priority: Priority.PRIORITY_HIGH,
      labels: [{ key: 'zone', value: 'a' }],
    });
    const again = await c.submit({ kind: 'echo', idempotencyKey: 'k1' });
    const same = await c.submit({ kind: 'echo', idempotencyKey: 'k1' });
    expect(same).toMatchObject({ taskId: again.taskId, existing: true });

    const items = await c.submitBatch([{ kind: 'a' }, { kind: '' }, { kind: 'b' }]);
    expect(items.map((i) => i.ok)).toEqual([true, false, true]);
    expect(items[1]).toMatchObject({ code: status.INVALID_ARGUMENT, message: expect.stringMatching(/kind/) });

    const t = await c.get(r.taskId);
    expect(t.id).toBe(r.taskId);
    const cancelled = await c.cancel(r.taskId, 'no longer needed');
    expect(cancelled.state).toBe(TaskState.TASK_STATE_CANCELLED);
    expect(cancelled.reason).toBe('no longer needed');
  });

  it('maps statuses to MeshClientError with code and details', async () => {
    const node = await startNode();
    const c = newClient({ address: node.address });
    const nf = await expectMeshError(c.get('nope'));
    expect(nf.code).toBe(status.NOT_FOUND);
    expect(nf.codeName).toBe('NOT_FOUND');
    expect(nf.details).toMatch(/nope/);
    const bad = await expectMeshError(c.submit({ kind: '' }));
    expect(bad.code).toBe(status.INVALID_ARGUMENT);
  });

  it('honours a per-call deadline', async () => {
    const node = await startNode();
    node.hangSubmit = true;
    const c = newClient({ address: node.address, deadlineMs: 60_000 });
    const err = await expectMeshError(c.submit({ kind: 'x' }, { deadlineMs: 50 }));
    expect(err.code).toBe(status.DEADLINE_EXCEEDED);
  });

  it('follows a leader redirect (FAILED_PRECONDITION + meshlb-leader-address) and sticks to the leader', async () => {
    const follower = await startNode();
    const leader = await startNode();
    follower.redirectTo = leader.address;
    const c = newClient({ address: follower.address });
    const r = await c.submit({ kind: 'echo' });
    expect(leader.tasks.has(r.taskId)).toBe(true);
    expect(c.redirects).toBe(1);
    expect(c.address).toBe(leader.address);
    await c.get(r.taskId);
    expect(follower.calls.get).toBeUndefined();
    expect(c.redirects).toBe(1);
  });

  it('surfaces FAILED_PRECONDITION with the leader hint when redirects run out', async () => {
    const a = await startNode();
    a.redirectTo = a.address; // points at itself: a loop
    const c = newClient({ address: a.address, maxRedirects: 2 });
    const err = await expectMeshError(c.submit({ kind: 'x' }));
    expect(err.code).toBe(status.FAILED_PRECONDITION);
    expect(err.leaderAddress).toBe(a.address);
    expect(a.calls.submit).toBe(3);
  });

  it('RESOURCE_EXHAUSTED carries the retry hint; retry is opt-in and honours it', async () => {
    const node = await startNode();
    node.exhausted = { count: 1, retryAfterMs: 30 };
    // The unary path (the stream's twin: test/client/shared-submit-node.test.ts).
    const plain = newClient({ address: node.address, sharedSubmit: false });
    const err = await expectMeshError(plain.submit({ kind: 'x' }));
    expect(err.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(err.retryAfterMs).toBe(30);

    node.exhausted = { count: 2, retryAfterMs: 30 };
    const retrying = newClient({ address: node.address, retryResourceExhausted: true, sharedSubmit: false });
    const t0 = Date.now();
    const r = await retrying.submit({ kind: 'x' });
    expect(r.taskId).toMatch(/^t-/);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(55);
    expect(node.calls.submit).toBe(4);
  });

  it('fails over to the next address on UNAVAILABLE for safe calls', async () => {
    const dead = await startNode();
    const deadAddr = dead.address;
    await dead.stop();
    const node = await startNode();
    const c = newClient({ address: [deadAddr, node.address] });
    const r = await c.submit({ kind: 'x', idempotencyKey: 'safe-1' });
    expect(r.taskId).toBe('t-1');
    expect(c.address).toBe(node.address);
    // Without an idempotency key (auto keys turned off) a submit is not repeated elsewhere.
    const c2 = newClient({ address: [deadAddr, node.address], autoIdempotencyKey: false });
    const err = await expectMeshError(c2.submit({ kind: 'x' }));
    expect(err.code).toBe(status.UNAVAILABLE);
  });

  it('watch yields changes and ends at a terminal state', async () => {
    const node = await startNode();
    const c = newClient({ address: node.address });
    const { taskId } = await c.submit({ kind: 'echo' });
    const seen: Task[] = [];
    const done = (async () => {
      for await (const t of c.watch(taskId)) seen.push(t);
    })();
    await waitFor(() => node.watcherCount(taskId) === 1 && seen.length === 1, { what: 'watch open' });
    node.setState(taskId, TaskState.TASK_STATE_RUNNING);
    node.setState(taskId, TaskState.TASK_STATE_COMPLETED, { output: Buffer.from('{"ok":true}') });
    await done;
    expect(seen.map((t) => taskStateName(t.state))).toEqual(['queued', 'running', 'completed']);
    expect(outputJson(seen[2]!)).toEqual({ ok: true });
  });

  it('watch of an unknown task fails with NOT_FOUND; breaking out cancels the server stream', async () => {
    const node = await startNode();
    const c = newClient({ address: node.address });
    const err = await expectMeshError(
      (async () => {
        for await (const _ of c.watch('missing')) void _;
      })(),
    );
    expect(err.code).toBe(status.NOT_FOUND);
    const { taskId } = await c.submit({ kind: 'echo' });
    for await (const t of c.watch(taskId)) {
      expect(t.state).toBe(TaskState.TASK_STATE_QUEUED);
      break;
    }
    await waitFor(() => node.watcherCount(taskId) === 0, { what: 'watch cancelled at the server' });
  });

  it('waitForResult returns the terminal record, or DEADLINE_EXCEEDED after the timeout', async () => {
    const node = await startNode();
    const c = newClient({ address: node.address });
    const { taskId } = await c.submit({ kind: 'echo' });
    const p = c.waitForResult(taskId, { timeoutMs: 10_000 });
    await waitFor(() => node.watcherCount(taskId) === 1, { what: 'watching' });
    node.setState(taskId, TaskState.TASK_STATE_FAILED, { status: 2, error: 'bad' });
    const t = await p;
    expect(t.state).toBe(TaskState.TASK_STATE_FAILED);
    expect(t.result?.error).toBe('bad');

    const other = await c.submit({ kind: 'echo' });
    const err = await expectMeshError(c.waitForResult(other.taskId, { timeoutMs: 60 }));
    expect(err.code).toBe(status.DEADLINE_EXCEEDED);
  });

  it('thousands of watches ending at once do not take the connection down (no needless RST_STREAM flood)', async () => {
    const node = await startNode();
    const c = newClient({ address: node.address });
    const ids = (await c.submitBatch(Array.from({ length: 1500 }, () => ({ kind: 'x' })))).map((i) => i.taskId);
    const waits = ids.map(async (id) => {
      let last: Task | undefined;
      for await (const t of c.watch(id)) last = t; // plain watch: no retries to hide a dropped connection
      return last!;
    });
    await waitFor(() => ids.every((id) => node.watcherCount(id) === 1), {
      timeoutMs: 30_000,
      what: '1500 watches open',
    });
    for (const id of ids) node.setState(id, TaskState.TASK_STATE_COMPLETED, {});
    const done = await Promise.all(waits);
    expect(done.every((t) => t.state === TaskState.TASK_STATE_COMPLETED)).toBe(true);
    // The same connection still works.
    expect((await c.submit({ kind: 'x' })).taskId).toMatch(/^t-/);
  });

  it('submitStream pipelines many submissions on one stream', async () => {
    const node = await startNode();
    const c = newClient({ address: node.address });
    const s = c.submitStream();
    const ps = Array.from({ length: 200 }, (_, i) => s.submit({ kind: i === 7 ? '' : 'echo', payload: String(i) }));
    const items = await Promise.all(ps);
    await s.end();
    expect(items.filter((i) => i.ok)).toHaveLength(199);
    expect(items[7]).toMatchObject({ ok: false, code: status.INVALID_ARGUMENT });
    expect(node.calls.submitStream).toBe(1);
    expect(node.submitted).toHaveLength(199);
  });
});
