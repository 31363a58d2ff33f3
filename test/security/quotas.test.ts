// Per-tenant quotas: a token bucket per tenant (submits/s, burst) and a cap
// on a tenant's unfinished tasks at its home cell, answered RESOURCE_EXHAUSTED
// with the meshlb-retry-after-ms hint; on a plaintext mesh (quotas need no
// TLS), over real gRPC.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { status } from '@grpc/grpc-js';
import { MeshClient, MeshClientError } from '../../src/client/index.js';
import { startMesh, type MeshHarness } from '../../src/dev/harness.js';
import { TaskState } from '../../src/gen/meshlb/v1/task.js';
import type { TaskRecord } from '../../src/mesh/ledger-record.js';
import { TenantQuotas } from '../../src/security/quotas.js';
import { replicaSecurity } from '../../src/security/replica-security.js';
import { parseTopology } from '../../src/topology/parse.js';

describe('TenantQuotas', () => {
  it('a token bucket per tenant: burst at once, then the rate; the hint says when', () => {
    let now = 0;
    const q = new TenantQuotas({ tenants: { a: { submitsPerSecond: 10, burst: 5 } } }, () => now);
    for (let i = 0; i < 5; i++) expect(q.admit('a', 1)).toBeUndefined();
    expect(q.admit('a', 1)).toEqual({
      message: expect.stringContaining('over its rate of 10 submits/s (burst 5)'),
      retryAfterMs: 100,
    });
    expect(q.admit('b', 100)).toBeUndefined(); // no limits for b
    now = 100;
    expect(q.admit('a', 1)).toBeUndefined();
    expect(q.admit('a', 6)?.message).toContain('send at most 5 per call');
    now = 10_000;
    expect(q.admit('a', 5)).toBeUndefined(); // refilled to the burst, not beyond
    expect(q.admit('a', 1)).toBeDefined();
  });

  it('counts unfinished tasks per tenant from ledger changes', () => {
    const q = new TenantQuotas({ default: { queuedTasks: 2 } });
    const rec = (id: string, tenant: string, state: TaskState) =>
      ({ id, spec: { tenant }, state }) as unknown as TaskRecord;
    q.changed(rec('1', 't', TaskState.TASK_STATE_QUEUED));
    q.changed(rec('1', 't', TaskState.TASK_STATE_RUNNING));
    q.changed(rec('2', 't', TaskState.TASK_STATE_QUEUED));
    expect(q.openCount('t')).toBe(2);
    expect(q.admit('t', 1)?.message).toBe('tenant "t" has 2 unfinished tasks here; its limit is 2');
    q.changed(rec('1', 't', TaskState.TASK_STATE_COMPLETED));
    q.changed(rec('1', 't', TaskState.TASK_STATE_COMPLETED));
    expect(q.openCount('t')).toBe(1);
    expect(q.admit('t', 1)).toBeUndefined();
    q.rebuild([rec('9', 'u', TaskState.TASK_STATE_QUEUED)]);
    expect([q.openCount('t'), q.openCount('u')]).toEqual([0, 1]);
  });
});

describe('quotas on a mesh', () => {
  const topology = parseTopology(`
name: quotas
security:
  quotas:
    default: { queuedTasks: 3 }
    tenants:
      fast: { submitsPerSecond: 2, burst: 2 }
cells:
  name: /
  replicas: [{ address: "127.0.0.1:7999" }] # startMesh binds port 0
`);
  let mesh: MeshHarness;
  const clients: MeshClient[] = [];
  const client = (o: { retry?: boolean } = {}) => {
    const c = new MeshClient({
      address: mesh.address('/'),
      retryResourceExhausted: o.retry ?? false,
      submitRetry: false,
    });
    clients.push(c);
    return c;
  };
  beforeAll(async () => {
    mesh = await startMesh(topology, {
      perCell: (cell) => ({ security: replicaSecurity({ topology, cell, replica: 1 })! }),
    });
  });
  afterAll(async () => {
    for (const c of clients) c.close();
    await mesh?.close();
  });

  it('a tenant over its rate gets RESOURCE_EXHAUSTED with the retry hint; the SDK waits it out', async () => {
    const c = client();
    await c.submitBatch([
      { kind: 'k', tenant: 'fast' },
      { kind: 'k', tenant: 'fast' },
    ]);
    const e = await c.submit({ kind: 'k', tenant: 'fast' }).catch((err: unknown) => err as MeshClientError);
    expect(e).toBeInstanceOf(MeshClientError);
    expect((e as MeshClientError).code).toBe(status.RESOURCE_EXHAUSTED);
    expect((e as MeshClientError).message).toContain('tenant "fast" is over its rate of 2 submits/s');
    expect((e as MeshClientError).retryAfterMs).toBeGreaterThan(0);
    expect((e as MeshClientError).retryAfterMs).toBeLessThanOrEqual(500);
    // retryResourceExhausted: the client sleeps the hint and succeeds.
    expect((await client({ retry: true }).submit({ kind: 'k', tenant: 'fast' })).taskId).not.toBe('');
  });

  it('a tenant at its cap of unfinished tasks is refused until one ends; other tenants are not', async () => {
    const c = client();
    const ids = [];
    for (let i = 0; i < 3; i++) ids.push((await c.submit({ kind: 'nobody', tenant: 'acme' })).taskId);
    const e = await c.submit({ kind: 'nobody', tenant: 'acme' }).catch((err: unknown) => err as MeshClientError);
    expect((e as MeshClientError).code).toBe(status.RESOURCE_EXHAUSTED);
    expect((e as MeshClientError).message).toBe(
      'RESOURCE_EXHAUSTED: tenant "acme" has 3 unfinished tasks here; its limit is 3',
    );
    expect((e as MeshClientError).retryAfterMs).toBe(1000);
    expect((await c.submit({ kind: 'nobody', tenant: 'other' })).taskId).not.toBe('');
    await c.cancel(ids[0]!);
    expect((await c.submit({ kind: 'nobody', tenant: 'acme' })).taskId).not.toBe('');
  });
});
