// SubmitStream at the leader answers one response per request, in request
// order (task.proto), whatever mix of valid and rejected specs arrives in one
// turn of the event loop (issue 8: rejected requests were answered at once,
// valid ones only after their batch was flushed, so a bad spec overtook the
// good ones sent before it). A request may carry a batch of specs (`tasks`),
// answered in `items`.
import { credentials, Server, ServerCredentials, status, type StatusObject } from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import {
  TaskServiceClient,
  TaskServiceService,
  TaskSpec,
  type SubmitStreamResponse,
} from '../../src/gen/meshlb/v1/task.js';
import { Cell } from '../../src/mesh/cell.js';
import { MAX_BATCH } from '../../src/mesh/task-validate.js';
import { tolerantService } from '../../src/mesh/grpc-util.js';
import { TaskService } from '../../src/mesh/task-service.js';
import { serveSubmitStream } from '../../src/mesh/task-stream.js';
import { LOCAL } from '../../src/mesh/task-forward.js';
import { SubmitStreamRequest, type SubmitBatchItem } from '../../src/gen/meshlb/v1/task.js';
import { EventEmitter } from 'node:events';
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
        tasks: [],
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
  it('answers a batch request in `items`, one per spec in order, singles and batches interleaved', async () => {
    const { cell, client } = await leader();
    const call = client.submitStream();
    const got: SubmitStreamResponse[] = [];
    call.on('data', (r: SubmitStreamResponse) => got.push(r));
    const ended = new Promise<StatusObject>((resolve) => call.on('status', resolve));
    const spec = (key: string, kind = 'echo') => TaskSpec.fromPartial({ kind, idempotencyKey: key });
    // Request 0 a single, 1 a batch of 5 with bad specs at 0 and 3, 2 a single, 3 both fields, 4 over the limit,
    // 5 a batch of one; 6 a batch whose specs repeat keys of request 1 (the tasks it made answer existing).
    call.write({ requestId: 0, task: spec('a'), tasks: [] });
    call.write({
      requestId: 1,
      task: undefined,
      tasks: ['', 'b1', 'b2', '', 'b4'].map((k) => spec(k || 'bad', k ? 'echo' : '')),
    });
    call.write({ requestId: 2, task: spec('c'), tasks: [] });
    call.write({ requestId: 3, task: spec('d'), tasks: [spec('d1')] });
    call.write({
      requestId: 4,
      task: undefined,
      tasks: Array.from({ length: MAX_BATCH + 1 }, (_, i) => spec(`o${i}`)),
    });
    await new Promise((r) => setImmediate(r)); // the next requests in another turn: another batch
    call.write({ requestId: 5, task: undefined, tasks: [spec('e')] });
    call.write({ requestId: 6, task: undefined, tasks: [spec('b1'), spec('b2')] });
    call.end();
    expect((await ended).code).toBe(status.OK);
    expect(got.map((r) => Number(r.requestId))).toEqual([0, 1, 2, 3, 4, 5, 6]);
    const key = (id: string) => cell.ledger.get(id)?.spec.idempotencyKey;
    expect(key(got[0]!.item!.taskId)).toBe('a');
    expect(got[0]!.items).toEqual([]);
    expect(got[1]!.item).toBeUndefined();
    expect(got[1]!.items.map((i) => i.code)).toEqual([3, 0, 0, 3, 0].map((c) => c as status));
    expect(got[1]!.items.map((i) => (i.code === 0 ? key(i.taskId) : i.taskId))).toEqual(['', 'b1', 'b2', '', 'b4']);
    expect(key(got[2]!.item!.taskId)).toBe('c');
    expect(got[3]!.item).toMatchObject({ code: status.INVALID_ARGUMENT, message: 'set task or tasks, not both' });
    expect(got[4]!.item).toMatchObject({ code: status.INVALID_ARGUMENT });
    expect(got[4]!.item!.message).toMatch(/over the limit of \d+ per batch/);
    expect(got[4]!.items).toEqual([]);
    expect(key(got[5]!.items[0]!.taskId)).toBe('e');
    expect(got[6]!.items.map((i) => [i.taskId, i.existing])).toEqual([
      [got[1]!.items[1]!.taskId, true],
      [got[1]!.items[2]!.taskId, true],
    ]);
    // Nothing of the refused requests 3 and 4 was submitted.
    expect(cell.ledger.size).toBe(6);
  });
});

describe('SubmitStream: batches answered at once and later', () => {
  // A batch the home answers at once (NONE tasks, submitNow) is written at once only when no earlier
  // batch's answer is still waiting (a LOGGED one, a forward): otherwise it waits its turn.
  it('keeps request order when a batch answered at once follows one still waiting', async () => {
    const cell = new Cell(TOPOLOGY, TOPOLOGY.byPath.get('/')!, 1, { seed: 11 });
    cleanups.push(() => cell.close());
    const written: number[] = [];
    const call = Object.assign(new EventEmitter(), {
      writableLength: 0,
      write: (r: SubmitStreamResponse) => void written.push(Number(r.requestId)),
      pause: () => undefined,
      resume: () => undefined,
      end: () => undefined,
    });
    let release: () => void = () => undefined;
    const held = new Promise<void>((r) => (release = r));
    const item = (n: number): SubmitBatchItem => ({
      taskId: `t${n}`,
      existing: false,
      code: 0,
      message: '',
      retryAfterMs: 0,
    });
    let batches = 0;
    serveSubmitStream(call as never, {
      home: cell.home,
      route: () => LOCAL,
      // The first batch waits (as a LOGGED one waits for its commit); the others are answered at once.
      submitMany: (specs) => {
        const n = batches++;
        const items = specs.map((_, i) => item(10 * n + i));
        return n === 0 ? held.then(() => items) : items;
      },
      rejected: () => undefined,
      upstreamOf: () => new Set(),
    });
    const turn = (): Promise<void> => new Promise((r) => setImmediate(r));
    const send = (id: number): boolean =>
      call.emit(
        'data',
        SubmitStreamRequest.fromPartial({ requestId: id, task: TaskSpec.fromPartial({ kind: 'echo' }) }),
      );
    send(0);
    await turn();
    send(1);
    send(2);
    await turn();
    expect(batches).toBe(2);
    expect(written).toEqual([]); // the second batch waits for the first
    release();
    await turn();
    expect(written).toEqual([0, 1, 2]);
    send(3);
    await turn();
    expect(written).toEqual([0, 1, 2, 3]); // nothing waiting: answered in the turn it was flushed
  });
});
