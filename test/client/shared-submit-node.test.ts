// The shared SubmitStream over real gRPC on 127.0.0.1 against FakeNode
// (test/helpers/fake-node.ts), which serves SubmitStream as a cell does: the
// twins of the unary path's tests in client.test.ts and client-retry.test.ts
// (a hung replica, a replica that dies mid-call, a leader redirect, the
// saturation hint) and the fallbacks (a tenant refused, no SubmitStream).
import { status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { expectMeshError, useClientFixture } from '../helpers/client-fixture.js';
import { waitFor } from '../helpers/wait.js';

const { startNode, newClient } = useClientFixture(13);
const HEX128 = /^[0-9a-f]{32}$/;

describe('the shared SubmitStream against a fake node', () => {
  it('concurrent submits ride one stream: no unary call; with the coalescer, a pile-up goes in one stream message', async () => {
    const node = await startNode();
    const c = newClient({ address: node.address, submitCoalesce: false });
    const out = await Promise.all(Array.from({ length: 50 }, () => c.submit({ kind: 'echo' })));
    expect(new Set(out.map((r) => r.taskId)).size).toBe(50);
    expect(out.every((r) => r.stateName === 'queued' && !r.existing)).toBe(true);
    expect(node.calls).toEqual({ submitStream: 1, streamItem: 50 });
    expect(node.submitted.every((s) => HEX128.test(s.idempotencyKey))).toBe(true);
    // The defaults: three at once are singles on the stream; fifty at once, one batch message on it (no SubmitBatch).
    const d = newClient({ address: node.address });
    await Promise.all([0, 1, 2].map(() => d.submit({ kind: 'echo' })));
    expect(d.coalescer!.stats).toEqual({ batches: 0, batched: 0, singles: 3 });
    const many = await Promise.all(Array.from({ length: 50 }, () => d.submit({ kind: 'echo' })));
    expect(new Set(many.map((r) => r.taskId)).size).toBe(50);
    expect(d.coalescer!.stats.batches).toBe(1);
    expect(node.calls.streamBatch).toBe(1);
    expect(node.calls.submitBatch).toBeUndefined();
    // A cell that reads no batches on the stream answers it as a request without a task: SubmitBatch from then on.
    node.streamBatches = false;
    const e = newClient({ address: node.address });
    const old = await Promise.all(Array.from({ length: 50 }, () => e.submit({ kind: 'echo' })));
    expect(old.every((r) => r.stateName === 'queued')).toBe(true);
    expect(e.submits!.batchesOff).toBe(true);
    expect(node.calls.submitBatch).toBe(1);
  });

  it('a hung replica: the submit goes again, same key, at the next address within the deadline', async () => {
    const hung = await startNode();
    hung.hangSubmit = true;
    const good = await startNode();
    const c = newClient({ address: [hung.address, good.address], deadlineMs: 1000 });
    const t0 = Date.now();
    const r = await c.submit({ kind: 'echo' });
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(hung.calls.streamItem).toBe(1);
    expect(good.submitted).toHaveLength(1);
    expect(good.submitted[0]!.idempotencyKey).toBe(hung.submitted[0]!.idempotencyKey);
    expect(good.tasks.has(r.taskId)).toBe(true);
    expect(c.submits!.stats).toMatchObject({ broken: 1, resent: 1 });
  });

  it('a replica that dies under pending submits: they are answered at the other address, once each', async () => {
    const dying = await startNode();
    dying.hangSubmit = true;
    const good = await startNode();
    const c = newClient({ address: [dying.address, good.address], deadlineMs: 30_000 });
    const p = Promise.all([0, 1, 2].map((i) => c.submit({ kind: 'echo', payload: `d-${i}` })));
    await waitFor(() => dying.calls.streamItem === 3 || undefined, { what: 'the submits at the dying node' });
    await dying.stop();
    const rs = await p;
    expect(rs.every((r) => good.tasks.has(r.taskId))).toBe(true);
    expect(good.tasks.size).toBe(3);
    expect(good.submitted.map((s) => s.idempotencyKey).sort()).toEqual(
      dying.submitted.map((s) => s.idempotencyKey).sort(),
    );
  });

  it('an item refused for no leader at the replica goes down the unary path, which follows the redirect', async () => {
    const follower = await startNode();
    const leader = await startNode();
    follower.redirectTo = leader.address;
    const c = newClient({ address: follower.address });
    const r = await c.submit({ kind: 'echo' });
    expect(leader.tasks.has(r.taskId)).toBe(true);
    expect(c.redirects).toBe(1);
    expect(c.address).toBe(leader.address);
    expect(c.submits!.stats.fallbacks).toBe(1);
  });

  it('saturation: the item carries the retry hint; with retries on, it is submitted again after it', async () => {
    const node = await startNode();
    node.exhausted = { count: 1, retryAfterMs: 30 };
    const plain = newClient({ address: node.address });
    const err = await expectMeshError(plain.submit({ kind: 'x' }));
    expect(err.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(err.retryAfterMs).toBe(30);
    node.exhausted = { count: 2, retryAfterMs: 30 };
    const retrying = newClient({ address: node.address, retryResourceExhausted: true });
    const t0 = Date.now();
    const r = await retrying.submit({ kind: 'x' });
    expect(r.taskId).toMatch(/^t-/);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(55);
  });

  it('a stream refused for one tenant: the other submits are answered; a cell without SubmitStream gets unary calls', async () => {
    const node = await startNode();
    node.refuseTenant = 'evil';
    node.hangSubmit = true; // the good ones are in flight when the refusal ends the stream
    const c = newClient({ address: node.address });
    const good = c.submit({ kind: 'echo', tenant: 'good' });
    await waitFor(() => node.calls.streamItem === 1 || undefined, { what: 'the first submit on the stream' });
    node.hangSubmit = false;
    const evil = c.submit({ kind: 'echo', tenant: 'evil' });
    await Promise.all([good, evil]); // FakeNode's unary Submit takes every tenant
    expect(c.submits!.stats).toMatchObject({ broken: 1, fallbacks: 2 });
    // Sent again alone, coalesced as unary calls are (here both at once: one SubmitBatch).
    expect((node.calls.submit ?? 0) + 2 * (node.calls.submitBatch ?? 0)).toBe(2);

    const old = await startNode();
    old.noSubmitStream = true;
    const o = newClient({ address: old.address });
    await Promise.all([0, 1, 2].map(() => o.submit({ kind: 'echo' })));
    await o.submit({ kind: 'echo' });
    expect(o.submits!.off).toBe(true);
    expect(old.calls.submitStream).toBe(1);
    expect((old.calls.submit ?? 0) + (old.calls.submitBatch ?? 0)).toBeGreaterThanOrEqual(2);
    expect(old.tasks.size).toBe(4);
  });
});
