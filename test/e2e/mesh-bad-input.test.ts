// Bad input against a running mesh: each case gets a clear gRPC status and a
// log line, the process keeps serving, and no accepted task is lost (checked
// at the end: every ledger in the mesh drains to zero live tasks).
import { Writable } from 'node:stream';
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MeshClient, MeshClientError } from '../../src/client/index.js';
import { AgentServiceClient, type ConnectResponse } from '../../src/gen/meshlb/v1/agent.js';
import { LinkServiceClient } from '../../src/gen/meshlb/v1/link.js';
import { Priority, TaskServiceClient, TaskSpec } from '../../src/gen/meshlb/v1/task.js';
import { Replica } from '../../src/mesh/replica.js';
import { parseTopology } from '../../src/topology/parse.js';
import { setRootLogger } from '../../src/util/log.js';
import { waitFor } from '../helpers/wait.js';
import { startTestMesh, type TestMesh } from './mesh-helpers.js';

const lines: string[] = [];
setRootLogger(
  pino(
    { level: 'warn' },
    new Writable({
      write(chunk, _enc, cb) {
        lines.push(String(chunk));
        cb();
      },
    }),
  ),
);
const logged = (re: RegExp) =>
  waitFor(() => lines.some((l) => re.test(l)), { timeoutMs: 3000, what: `a log line ${re}` });

const codeOf = async (p: Promise<unknown>): Promise<number> => {
  try {
    await p;
  } catch (e) {
    return MeshClientError.from(e).code;
  }
  return 0;
};

/** A raw stream to `path` that sends bytes as they are. */
function rawStream(address: string, path: string) {
  const id = (b: Buffer) => b;
  const Ctor = grpc.makeGenericClientConstructor(
    {
      open: {
        path,
        requestStream: true,
        responseStream: true,
        requestSerialize: id,
        requestDeserialize: id,
        responseSerialize: id,
        responseDeserialize: id,
      },
    },
    'raw',
  );
  const client = new Ctor(address, grpc.credentials.createInsecure()) as unknown as grpc.Client & {
    open(): grpc.ClientDuplexStream<Buffer, Buffer>;
  };
  return { client, call: client.open() };
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
function streamStatus(call: grpc.ClientDuplexStream<any, any>): Promise<grpc.StatusObject> {
  return new Promise((resolve) => {
    call.on('data', () => {});
    call.on('error', () => {});
    call.on('status', resolve);
  });
}

describe('bad input', () => {
  let t: TestMesh;
  let client: MeshClient;
  const node = '/eu/west-1a/n1';

  beforeAll(async () => {
    t = await startTestMesh({ maxPayloadBytes: 64 * 1024, batcher: { maxBufferedBytes: 1 << 20 } });
    for (const n of t.mesh.nodes) await t.addAgent(n, { agentId: `good-${n}`, slots: 4 });
    await t.mesh.ready();
    client = new MeshClient({ address: t.mesh.address('/'), maxMessageBytes: 16 << 20 });
  });

  afterAll(async () => {
    client?.close();
    await t?.close();
  });

  it('missing fields → INVALID_ARGUMENT', async () => {
    const raw = new TaskServiceClient(t.mesh.address('/'), grpc.credentials.createInsecure());
    try {
      const code = await new Promise<number>((res) => raw.submit({ task: undefined }, (err) => res(err?.code ?? 0)));
      expect(code).toBe(grpc.status.INVALID_ARGUMENT);
    } finally {
      raw.close();
    }
    expect(await codeOf(client.submit({ kind: '' }))).toBe(grpc.status.INVALID_ARGUMENT);
    await logged(/submit refused/);
  });

  it('malformed fields → INVALID_ARGUMENT (unknown priority, deadline in the past), per item in a batch', async () => {
    const raw = new TaskServiceClient(t.mesh.address('/'), grpc.credentials.createInsecure());
    try {
      const res = await new Promise<{ items: { code: number; message: string }[] }>((resolve, reject) =>
        raw.submitBatch(
          {
            tasks: [
              TaskSpec.fromPartial({ kind: 'echo', priority: 99 as Priority }),
              TaskSpec.fromPartial({ kind: 'echo', deadlineUnixMs: 1000 }),
              TaskSpec.fromPartial({ kind: 'echo' }),
            ],
          },
          (err, r) => (err ? reject(err) : resolve(r!)),
        ),
      );
      expect(res.items.map((i) => i.code)).toEqual([grpc.status.INVALID_ARGUMENT, grpc.status.INVALID_ARGUMENT, 0]);
      expect(res.items[0]!.message).toMatch(/priority/);
      expect(res.items[1]!.message).toMatch(/deadline/);
    } finally {
      raw.close();
    }
  });

  it('unknown task ids → NOT_FOUND (Get, Cancel, Watch); empty id → INVALID_ARGUMENT', async () => {
    expect(await codeOf(client.get('no-such-task'))).toBe(grpc.status.NOT_FOUND);
    expect(await codeOf(client.cancel('no-such-task'))).toBe(grpc.status.NOT_FOUND);
    expect(
      await codeOf(
        (async () => {
          for await (const _ of client.watch('no-such-task')) void _;
        })(),
      ),
    ).toBe(grpc.status.NOT_FOUND);
    expect(await codeOf(client.get(''))).toBe(grpc.status.INVALID_ARGUMENT);
    await logged(/get refused/);
  });

  it('oversize payload → INVALID_ARGUMENT over the payload cap, RESOURCE_EXHAUSTED over the message cap', async () => {
    expect(await codeOf(client.submit({ kind: 'echo', payload: Buffer.alloc(100 * 1024) }))).toBe(
      grpc.status.INVALID_ARGUMENT,
    );
    expect(await codeOf(client.submit({ kind: 'echo', payload: Buffer.alloc(5 * 1024 * 1024) }))).toBe(
      grpc.status.RESOURCE_EXHAUSTED,
    );
    // Still serving.
    expect((await client.submit({ kind: 'echo' })).taskId).toBeTruthy();
  });

  it('duplicate agent id → ALREADY_EXISTS on the new stream; the first keeps working', async () => {
    await t.addAgent(node, { agentId: 'dup' });
    const second = t.addAgent(node, { agentId: 'dup' });
    await expect(second).rejects.toThrow(/ALREADY_EXISTS|6 /);
    expect(t.agents.at(-1)!.status!.code).toBe(grpc.status.ALREADY_EXISTS);
    expect(t.mesh.replicas.get(node)!.cell.agents!.byId.get('dup')!.dead).toBe(false);
    await logged(/already connected/);
  });

  it('agent hello without kinds or slots → INVALID_ARGUMENT', async () => {
    await expect(t.addAgent(node, { agentId: 'nokinds', kinds: [] })).rejects.toThrow();
    expect(t.agents.at(-1)!.status!.code).toBe(grpc.status.INVALID_ARGUMENT);
    await expect(t.addAgent(node, { agentId: 'noslots', slots: 0 })).rejects.toThrow();
    expect(t.agents.at(-1)!.status!.code).toBe(grpc.status.INVALID_ARGUMENT);
  });

  it('a stream whose first message is not hello → INVALID_ARGUMENT', async () => {
    const c = new AgentServiceClient(t.mesh.address(node), grpc.credentials.createInsecure());
    try {
      const call = c.connect();
      const st = streamStatus(call);
      call.write({ msg: { $case: 'load', value: { inFlight: 0, cpu: 0, memory: 0, gpu: 0, draining: false } } });
      expect((await st).code).toBe(grpc.status.INVALID_ARGUMENT);
      await logged(/agent: no hello/);
    } finally {
      c.close();
    }
  });

  it('a stream sending garbage bytes → INVALID_ARGUMENT (agent and link streams)', async () => {
    for (const path of ['/meshlb.v1.AgentService/Connect', '/meshlb.v1.LinkService/Open']) {
      const cellPath = path.includes('Agent') ? node : '/eu';
      const { client: c, call } = rawStream(t.mesh.address(cellPath), path);
      try {
        const st = streamStatus(call);
        call.write(Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01]));
        const s = await st;
        expect(s.code, path).toBe(grpc.status.INVALID_ARGUMENT);
        expect(s.details).toMatch(/undecodable/);
      } finally {
        c.close();
      }
    }
    await logged(/garbage/);
  });

  it('a link hello naming a cell that is not a child → NOT_FOUND', async () => {
    const c = new LinkServiceClient(t.mesh.address('/eu'), grpc.credentials.createInsecure());
    try {
      const call = c.open();
      const st = streamStatus(call);
      call.write({
        msg: {
          $case: 'hello',
          value: {
            cell: '/us/east-1a',
            replicaId: 'x',
            term: 0,
            holding: [],
            mesh: '',
            meshId: '',
            parentCell: '',
            sendNumbers: false,
          },
        },
      });
      expect((await st).code).toBe(grpc.status.NOT_FOUND);
    } finally {
      c.close();
    }
  });

  it('an agent that stops reading is closed with RESOURCE_EXHAUSTED and its tasks run elsewhere', async () => {
    const home = '/us/east-1b/n1';
    const stuck = await t.addAgent(home, { agentId: 'stuck', kinds: ['big'], slots: 64 });
    stuck.pause();
    const nodeClient = new MeshClient({ address: t.mesh.address(home) });
    try {
      const items = await nodeClient.submitBatch(
        Array.from({ length: 40 }, () => ({ kind: 'big', payload: Buffer.alloc(60 * 1024) })),
      );
      const cell = t.mesh.replicas.get(home)!.cell;
      await waitFor(() => cell.agents!.byId.get('stuck') === undefined, {
        timeoutMs: 10_000,
        what: 'stuck agent dropped',
      });
      await logged(/agent overflow/);
      await t.addAgent(home, { agentId: 'unstuck', kinds: ['big'], slots: 8 });
      await waitFor(() => items.every((i) => cell.ledger.get(i.taskId)!.state === 4), {
        timeoutMs: 15_000,
        what: 'big tasks completed elsewhere',
      });
      stuck.resume();
      await waitFor(() => stuck.status !== undefined, { timeoutMs: 10_000, what: 'stuck agent status' });
      expect(stuck.status!.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    } finally {
      nodeClient.close();
    }
  });

  it('a client disconnecting mid-call loses nothing (watch, stream, unary)', async () => {
    const root = t.mesh.replicas.get('/')!;
    // Watch: the client goes away; the server forgets the watcher.
    const { taskId } = await client.submit({ kind: 'echo' });
    const ac = new AbortController();
    const w = (async () => {
      for await (const _ of client.watch(taskId, { signal: ac.signal })) ac.abort();
    })();
    await w.catch(() => {});
    await waitFor(() => root.tasks.watcherCount === 0, { timeoutMs: 3000, what: 'watcher dropped' });
    // SubmitStream: the client cancels after writing.
    const raw = new TaskServiceClient(t.mesh.address('/'), grpc.credentials.createInsecure());
    const call = raw.submitStream();
    call.on('error', () => {});
    for (let i = 0; i < 50; i++)
      call.write({ requestId: i, task: TaskSpec.fromPartial({ kind: 'echo', idempotencyKey: `mid-${i}` }), tasks: [] });
    await new Promise((r) => setTimeout(r, 20));
    call.cancel();
    // Unary: the client's deadline passes before the answer.
    await new Promise<void>((res) =>
      raw.submitBatch(
        {
          tasks: Array.from({ length: 200 }, (_, i) =>
            TaskSpec.fromPartial({ kind: 'echo', idempotencyKey: `dl-${i}` }),
          ),
        },
        new grpc.Metadata(),
        { deadline: Date.now() + 1 },
        () => res(),
      ),
    );
    raw.close();
    // Whatever was accepted ends.
    await waitFor(() => root.cell.ledger.liveCount === 0, { timeoutMs: 10_000, what: 'accepted tasks ended' });
  });

  it('saturation → RESOURCE_EXHAUSTED with a retry hint trailer', async () => {
    const topo = parseTopology(`
name: tiny
tiers: { global: { policy: least-loaded } }
addressing: { host: 127.0.0.1, basePort: 7000 }
cells: { name: / }
`);
    const r = await new Replica({ topology: topo, cell: '/', port: 0, queueCapacity: 10 }).start();
    const c = new MeshClient({ address: r.address });
    try {
      await c.submitBatch(Array.from({ length: 10 }, () => ({ kind: 'x' })));
      const err = await c.submit({ kind: 'x' }).then(
        () => undefined,
        (e: unknown) => MeshClientError.from(e),
      );
      expect(err?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
      expect(Number(err?.retryAfterMs)).toBeGreaterThan(0);
      await logged(/saturated/);
    } finally {
      c.close();
      await r.close(0);
    }
  });

  it('the mesh is still alive and every accepted task ended', async () => {
    const { taskId } = await client.submit({ kind: 'echo' });
    await client.waitForResult(taskId, { timeoutMs: 10_000 });
    for (const [path, r] of t.mesh.replicas) {
      await waitFor(() => r.cell.ledger.liveCount === 0, { timeoutMs: 10_000, what: `no live tasks at ${path}` });
    }
  });
});

export type { ConnectResponse };
