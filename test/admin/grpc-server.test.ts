import { afterEach, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import { service as healthService } from 'grpc-health-check';
import { startReplicaServer, serverOptions, type ReplicaServer } from '../../src/admin/grpc-server.js';
import { serviceNameOf } from '../../src/admin/health.js';
import { TaskServiceService } from '../../src/gen/meshlb/v1/task.js';
import { waitFor } from '../helpers/wait.js';

type Any = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const HealthClient = grpc.makeGenericClientConstructor(healthService as grpc.ServiceDefinition, 'Health');

const task = { definition: TaskServiceService as unknown as grpc.ServiceDefinition, implementation: {} };

function check(client: grpc.Client & Any, service: string): Promise<string> {
  return new Promise((resolve, reject) =>
    client.check({ service }, { deadline: Date.now() + 5000 }, (err: grpc.ServiceError | null, res: Any) =>
      err ? reject(err) : resolve(res.status as string),
    ),
  );
}

const servers: ReplicaServer[] = [];
const clients: grpc.Client[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await Promise.all(servers.splice(0).map((s) => s.close(100)));
});

async function start(extra: Partial<Parameters<typeof startReplicaServer>[0]> = {}) {
  const s = await startReplicaServer({ host: '127.0.0.1', port: 0, services: [task], ...extra });
  servers.push(s);
  const c = new HealthClient(s.address, grpc.credentials.createInsecure()) as grpc.Client & Any;
  clients.push(c);
  return { s, c };
}

describe('startReplicaServer', () => {
  it('listens on a free loopback port and answers health for "" and each service', async () => {
    const { s, c } = await start();
    expect(s.port).toBeGreaterThan(0);
    expect(s.address).toBe(`127.0.0.1:${s.port}`);
    expect(await check(c, '')).toBe('SERVING');
    expect(await check(c, 'meshlb.v1.TaskService')).toBe('SERVING');
    await expect(check(c, 'meshlb.v1.Nope')).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
  });

  it('setServing flips one service, and Watch sees it', async () => {
    const { s, c } = await start();
    const seen: string[] = [];
    const watch = c.watch({ service: 'meshlb.v1.TaskService' });
    watch.on('data', (m: Any) => seen.push(m.status));
    watch.on('error', () => undefined);
    await waitFor(() => seen.includes('SERVING'), { what: 'initial SERVING on watch' });
    s.health.setServing('meshlb.v1.TaskService', false);
    expect(await check(c, 'meshlb.v1.TaskService')).toBe('NOT_SERVING');
    expect(await check(c, '')).toBe('SERVING');
    await waitFor(() => seen.includes('NOT_SERVING'), { what: 'NOT_SERVING on watch' });
    watch.cancel();
  });

  it('can start NOT_SERVING until told otherwise', async () => {
    const { s, c } = await start({ initiallyServing: false });
    expect(await check(c, '')).toBe('NOT_SERVING');
    s.health.setServing('', true);
    expect(await check(c, '')).toBe('SERVING');
  });

  it('rejects messages above maxMessageBytes with RESOURCE_EXHAUSTED and keeps serving', async () => {
    const { c } = await start({ maxMessageBytes: 1024 });
    await expect(check(c, 'x'.repeat(4096))).rejects.toMatchObject({ code: grpc.status.RESOURCE_EXHAUSTED });
    expect(await check(c, '')).toBe('SERVING');
  });

  it('holds 5,000 concurrent streams from one client connection', async () => {
    const { c } = await start();
    let first = 0;
    const calls = Array.from({ length: 5000 }, () => {
      const w = c.watch({ service: '' });
      w.once('data', () => first++);
      w.on('error', () => undefined);
      return w;
    });
    await waitFor(() => first === 5000, { timeoutMs: 30_000, what: '5,000 streams answered' });
    expect(first).toBe(5000);
    for (const w of calls) w.cancel();
  });

  it('close() reports NOT_SERVING and stops accepting', async () => {
    const { s, c } = await start();
    const closing = s.close(500);
    await closing;
    await expect(check(c, '')).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
    expect(s.close()).toBe(closing); // idempotent
  });

  it('fails clearly when the port is taken', async () => {
    const { s } = await start();
    await expect(startReplicaServer({ host: '127.0.0.1', port: s.port, services: [] })).rejects.toThrow(
      /cannot listen on 127.0.0.1:\d+/,
    );
  });

  it('sets message size, stream cap and keepalive options', () => {
    const o = serverOptions({ maxMessageBytes: 1000, maxConcurrentStreams: 7, maxConnectionAgeMs: 60_000 });
    expect(o['grpc.max_receive_message_length']).toBe(1000);
    expect(o['grpc.max_send_message_length']).toBe(1000);
    expect(o['grpc.max_concurrent_streams']).toBe(7);
    expect(o['grpc.keepalive_time_ms']).toBeGreaterThan(0);
    expect(o['grpc.max_connection_age_ms']).toBe(60_000);
    expect(serverOptions({})['grpc.max_concurrent_streams']).toBeGreaterThanOrEqual(5000);
    expect(serverOptions({})['grpc.max_connection_age_ms']).toBeUndefined();
    expect(serviceNameOf(task.definition)).toBe('meshlb.v1.TaskService');
  });
});
