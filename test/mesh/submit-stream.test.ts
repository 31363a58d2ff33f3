// SubmitStream at the leader answers one response per request, in request
// order (task.proto), whatever mix of valid and rejected specs arrives in one
// turn of the event loop (issue 8: rejected requests were answered at once,
// valid ones only after their batch was flushed, so a bad spec overtook the
// good ones sent before it).
import { credentials, Server, ServerCredentials, status, type StatusObject } from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import {
  TaskServiceClient,
  TaskServiceService,
  TaskSpec,
  type SubmitStreamResponse,
} from '../../src/gen/meshlb/v1/task.js';
import { Cell } from '../../src/mesh/cell.js';
import { tolerantService } from '../../src/mesh/grpc-util.js';
import { TaskService } from '../../src/mesh/task-service.js';
import { parseTopology } from '../../src/topology/parse.js';

const TOPOLOGY = parseTopology(`
name: stream
addressing: { host: 127.0.0.1, basePort: 7000 }
cells: { name: / }
`);

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function leader(): Promise<{ cell: Cell; client: TaskServiceClient }> {
  const cell = new Cell(TOPOLOGY, TOPOLOGY.byPath.get('/')!, 1, { seed: 11 });
  cleanups.push(() => cell.close());
  const server = new Server();
  server.addService(tolerantService(TaskServiceService), new TaskService(cell).implementation());
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
  );
  cleanups.push(() => server.forceShutdown());
  const client = new TaskServiceClient(`127.0.0.1:${port}`, credentials.createInsecure());
  cleanups.push(() => client.close());
  return { cell, client };
}

describe('SubmitStream at the leader', () => {
  it('answers every request once, in request order, rejected ones in their place', async () => {
    const { cell, client } = await leader();
    const call = client.submitStream();
    const got: SubmitStreamResponse[] = [];
    call.on('data', (r: SubmitStreamResponse) => got.push(r));
    const ended = new Promise<StatusObject>((resolve) => call.on('status', resolve));
    // Bad specs (no kind) first, last, alone and in runs, mostly in the same turn as good ones.
    const bad = new Set([0, 3, 4, 5, 50, 51, 99, 149]);
    for (let i = 0; i < 150; i++) {
      call.write({
        requestId: i,
        task: TaskSpec.fromPartial({ kind: bad.has(i) ? '' : 'echo', idempotencyKey: `s${i}` }),
      });
      if (i % 40 === 39) await new Promise((r) => setImmediate(r));
    }
    call.end();
    expect((await ended).code).toBe(status.OK);
    expect(got.map((r) => Number(r.requestId))).toEqual(Array.from({ length: 150 }, (_, i) => i));
    for (const r of got) {
      const i = Number(r.requestId);
      if (bad.has(i)) expect(r.item).toMatchObject({ code: status.INVALID_ARGUMENT, taskId: '' });
      else expect(cell.ledger.get(r.item!.taskId)?.spec.idempotencyKey).toBe(`s${i}`);
    }
  });
});
