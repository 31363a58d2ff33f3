// The client's idempotency keys and its retries of submits whose outcome is
// unknown: every task gets a key, and a repeat carries the same key, so a lost
// answer never becomes a second task.
import { createServer, Socket, type Server } from 'node:net';
import { status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { expectMeshError, useClientFixture } from '../helpers/client-fixture.js';
import { waitFor } from '../helpers/wait.js';

// Submits here take the unary path (`sharedSubmit: false`): the shared
// SubmitStream's retries are tested in test/client/shared-submit-node.test.ts.
const fixture = useClientFixture(11);
const { startNode, cleanup } = fixture;
const newClient: typeof fixture.newClient = (o) => fixture.newClient({ sharedSubmit: false, ...o });

/**
 * A TCP proxy to `target` that passes the client's bytes on and, once the
 * first call is on its way, drops every byte coming back: the request reaches
 * the node, the answer never reaches the client (a reply lost with a dying
 * replica or a cut network).
 */
async function oneWayProxy(target: number): Promise<{ address: string; server: Server }> {
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = new Socket();
    sockets.add(client).add(upstream);
    upstream.connect(target, '127.0.0.1');
    // The HTTP/2 handshake goes both ways (grpc-js sends no call before the
    // server's SETTINGS); from the first call on, nothing comes back.
    let chunks = 0;
    let cut = false;
    client.on('data', (b: Buffer) => {
      if (++chunks > 1 && b.length >= 40) cut = true;
      upstream.write(b);
    });
    upstream.on('data', (b: Buffer) => {
      if (!cut) client.write(b);
    });
    const close = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', close).on('close', close);
    upstream.on('error', close).on('close', close);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanup(
    () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  );
  const addr = server.address();
  if (addr === null || typeof addr === 'string') throw new Error('proxy has no port');
  return { address: `127.0.0.1:${addr.port}`, server };
}

const HEX128 = /^[0-9a-f]{32}$/;

describe('MeshClient idempotency keys', () => {
  it('gives every task without a key a random 128-bit one, keeps a key the caller set, and can be turned off', async () => {
    const node = await startNode();
    const c = newClient({ address: node.address });
    await c.submit({ kind: 'echo' });
    await c.submit({ kind: 'echo', idempotencyKey: 'mine' });
    await c.submitBatch([{ kind: 'echo' }, { kind: 'echo' }, { kind: 'echo', idempotencyKey: 'mine-2' }]);
    const s = c.submitStream();
    await s.submit({ kind: 'echo' });
    await s.end();
    const keys = node.submitted.map((t) => t.idempotencyKey);
    expect(keys).toHaveLength(6);
    expect(keys[1]).toBe('mine');
    expect(keys[4]).toBe('mine-2');
    const auto = [keys[0], keys[2], keys[3], keys[5]];
    for (const k of auto) expect(k).toMatch(HEX128);
    expect(new Set(auto).size).toBe(4);

    const plain = newClient({ address: node.address, autoIdempotencyKey: false });
    await plain.submit({ kind: 'echo' });
    expect(node.submitted.at(-1)!.idempotencyKey).toBe('');
  });
});

describe('MeshClient retries a submit whose outcome is unknown, with the same key', () => {
  it('an answer lost on the way back: the retry finds the task the first attempt made (one task, not two)', async () => {
    const node = await startNode();
    const proxy = await oneWayProxy(node.port);
    const c = newClient({
      address: [proxy.address, node.address],
      deadlineMs: 5000,
      submitRetry: { attemptTimeoutMs: 300 },
    });
    const r = await c.submit({ kind: 'echo', payload: 'once' });
    // Both attempts reached the node, with one key; the node holds one task.
    expect(node.calls.submit).toBe(2);
    expect(node.submitted).toHaveLength(2);
    expect(node.submitted[0]!.idempotencyKey).toMatch(HEX128);
    expect(node.submitted[1]!.idempotencyKey).toBe(node.submitted[0]!.idempotencyKey);
    expect(node.tasks.size).toBe(1);
    expect(r.taskId).toBe([...node.tasks.keys()][0]);
    // The key was the client's own: the task is this call's, not an "existing" one.
    expect(r.existing).toBe(false);
    expect(c.submitRetries).toBe(1);
    expect(c.address).toBe(node.address);

    // A caller's own key is repeated the same way, and a batch keeps every key.
    const items = await c.submitBatch([{ kind: 'echo', idempotencyKey: 'b-1' }, { kind: 'echo' }]);
    expect(items.every((i) => i.ok && !i.existing)).toBe(true);
  });

  it('a hung replica: the submit goes to the next address within the deadline; a drop mid-call is retried too', async () => {
    const hung = await startNode();
    hung.hangSubmit = true;
    const good = await startNode();
    const c = newClient({ address: [hung.address, good.address], deadlineMs: 1000 });
    const t0 = Date.now();
    const r = await c.submit({ kind: 'echo' });
    // The default attempt deadline is half the call's: the second attempt fits.
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(hung.calls.submit).toBe(1);
    expect(good.submitted).toHaveLength(1);
    expect(good.submitted[0]!.idempotencyKey).toMatch(HEX128);
    expect(good.tasks.has(r.taskId)).toBe(true);

    // The connection drops under a pending submit (the replica stops): retried at the other address.
    const dying = await startNode();
    dying.hangSubmit = true;
    const c2 = newClient({ address: [dying.address, good.address], deadlineMs: 30_000 });
    const p = c2.submit({ kind: 'echo', payload: 'drop' });
    await waitFor(() => dying.calls.submit === 1, { what: 'the submit at the dying node' });
    await dying.stop();
    const r2 = await p;
    expect(good.tasks.has(r2.taskId)).toBe(true);
    expect(c2.submitRetries).toBe(1);
  });

  it('stays within the caller deadline and bounded attempts; statuses the server chose are not retried', async () => {
    const node = await startNode();
    const c = newClient({ address: node.address, submitRetry: { maxAttempts: 3, attemptTimeoutMs: 40 } });
    // Connected first: on a loaded machine a 40 ms attempt can end while the channel still
    // connects, never reaching the server (the count below would then be short).
    expect((await expectMeshError(c.get('warm-up'))).code).toBe(status.NOT_FOUND);
    node.hangSubmit = true;
    // Bounded by attempts: three tries of 40 ms each, well inside the 2 s deadline.
    const err = await expectMeshError(c.submit({ kind: 'x' }, { deadlineMs: 2000 }));
    expect(err.code).toBe(status.DEADLINE_EXCEEDED);
    expect(node.calls.submit).toBe(3);

    // Bounded by the deadline: each try gets half of the 150 ms, so the
    // default 10 attempts never all happen (counted, not timed: the machine may be slow).
    const short = newClient({ address: node.address });
    const beforeShort = node.calls.submit ?? 0;
    expect((await expectMeshError(short.submit({ kind: 'x' }, { deadlineMs: 150 }))).code).toBe(
      status.DEADLINE_EXCEEDED,
    );
    expect((node.calls.submit ?? 0) - beforeShort).toBeLessThan(10);

    // A status the server chose is the outcome: one call, never repeated. On a node of its
    // own, with the default attempt timeout: a late attempt of the clients above, or a 40 ms
    // attempt that a loaded machine answers late (an unknown outcome, rightly repeated), would
    // blur the count.
    const fresh = await startNode();
    const cf = newClient({ address: fresh.address });
    expect((await expectMeshError(cf.submit({ kind: '' }))).code).toBe(status.INVALID_ARGUMENT);
    expect(fresh.calls.submit).toBe(1);
    expect(cf.submitRetries).toBe(0);

    const off = newClient({ address: node.address, submitRetry: false });
    node.hangSubmit = true;
    await expectMeshError(off.submit({ kind: 'x' }, { deadlineMs: 100 }));
    expect(off.submitRetries).toBe(0);
  });
});
