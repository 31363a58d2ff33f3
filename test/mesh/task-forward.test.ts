// TaskService on a follower, over real gRPC on 127.0.0.1: writes are forwarded
// to the leader (one hop, marked, bounded), SubmitStream answers in request
// order whatever order the leader answers its batches in, and reads wait for
// the read barrier. The "follower" is a TaskService whose cell says it does
// not lead and names the leader; the leader is a one-replica cell.
import {
  credentials,
  Metadata,
  Server,
  ServerCredentials,
  status,
  type ServiceError,
  type StatusObject,
} from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import {
  TaskServiceClient,
  TaskServiceService,
  TaskSpec,
  TaskState,
  type SubmitBatchResponse,
  type SubmitStreamResponse,
  type TaskServiceServer,
} from '../../src/gen/meshlb/v1/task.js';
import { Cell } from '../../src/mesh/cell.js';
import { tolerantService } from '../../src/mesh/grpc-util.js';
import { ReadBarrier } from '../../src/mesh/read-barrier.js';
import { FORWARDED_HEADER } from '../../src/mesh/task-forward.js';
import { TaskService, type TaskCell } from '../../src/mesh/task-service.js';
import { parseTopology } from '../../src/topology/parse.js';
import { FakeNode } from '../helpers/fake-node.js';
import { waitFor } from '../helpers/wait.js';

const SEED = Number(process.env.MESHLB_TEST_SEED ?? 20261207);
const TOPOLOGY = parseTopology(`
name: fwd
addressing: { host: 127.0.0.1, basePort: 7000 }
cells: { name: / }
`);

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Hint {
  leading: boolean;
  leader: string;
  leaderAddress: string;
}

/** What a replica's TaskService received: method and whether it came forwarded. */
type Seen = { method: string; forwarded: boolean }[];

function newCell(n: number): Cell {
  const cell = new Cell(TOPOLOGY, TOPOLOGY.byPath.get('/')!, 1, { seed: SEED + n });
  cleanups.push(() => cell.close());
  return cell;
}

/** Serve `impl` on 127.0.0.1 (a port the OS picks), recording every call. */
async function serve(impl: TaskServiceServer, seen: Seen = []): Promise<string> {
  const mark = (method: string, md: Metadata) =>
    seen.push({ method, forwarded: md.get(FORWARDED_HEADER).some((v) => String(v) === '1') });
  const server = new Server();
  server.addService(tolerantService(TaskServiceService), {
    ...impl,
    submit: (call, cb) => (mark('submit', call.metadata), impl.submit(call, cb)),
    submitBatch: (call, cb) => (mark('submitBatch', call.metadata), impl.submitBatch(call, cb)),
    submitStream: (call) => (mark('submitStream', call.metadata), impl.submitStream(call)),
    get: (call, cb) => (mark('get', call.metadata), impl.get(call, cb)),
    cancel: (call, cb) => (mark('cancel', call.metadata), impl.cancel(call, cb)),
  } satisfies TaskServiceServer);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
  );
  cleanups.push(() => server.forceShutdown());
  return `127.0.0.1:${port}`;
}

/** A TaskService that is a follower as far as `hint` says, over its own (unreplicated) ledger. */
function follower(
  n: number,
  hint: Hint,
  opts: { maxForwarding?: number; readIndex?: () => Promise<void> } = {},
): TaskService {
  const cell = newCell(n);
  const port: TaskCell = {
    home: cell.home,
    replicaId: `/#f${n}`,
    leaderHint: () => hint,
    ledgerLog: { readIndex: opts.readIndex ?? (() => Promise.resolve()) },
  };
  const svc = new TaskService(port, { maxForwarding: opts.maxForwarding });
  cleanups.push(() => svc.closeAll());
  return svc;
}

function clientOf(address: string): TaskServiceClient {
  const c = new TaskServiceClient(address, credentials.createInsecure());
  cleanups.push(() => c.close());
  return c;
}

interface Answer<T> {
  err: ServiceError | null;
  res: T | undefined;
  trailers: Record<string, string>;
}

/** A unary call with its status and trailers. */
function unary<T>(
  start: (
    md: Metadata,
    cb: (err: ServiceError | null, res?: T) => void,
  ) => {
    on(ev: 'status', fn: (s: StatusObject) => void): unknown;
  },
): Promise<Answer<T>> {
  return new Promise((resolve) => {
    let done: { err: ServiceError | null; res: T | undefined } | undefined;
    let st: StatusObject | undefined;
    const finish = () => {
      if (!done || !st) return;
      const trailers: Record<string, string> = {};
      for (const [k, v] of Object.entries(st.metadata.getMap())) trailers[k] = String(v);
      resolve({ ...done, trailers });
    };
    start(new Metadata(), (err, res) => {
      done = { err, res };
      finish();
    }).on('status', (s) => {
      st = s;
      finish();
    });
  });
}

const spec = (i: number, kind = 'echo'): TaskSpec => TaskSpec.fromPartial({ kind, idempotencyKey: `k${i}` });

describe('TaskService on a follower forwards writes to the leader (seed ' + SEED + ')', () => {
  it('Submit, SubmitBatch and Cancel are served by the leader, marked forwarded, answered with the leader hint', async () => {
    const leaderCell = newCell(0);
    const leaderSeen: Seen = [];
    const leaderAddr = await serve(new TaskService(leaderCell).implementation(), leaderSeen);
    const f = follower(1, { leading: false, leader: '/#1', leaderAddress: leaderAddr });
    const c = clientOf(await serve(f.implementation()));

    const one = await unary<{ taskId: string; existing: boolean }>((md, cb) =>
      c.submit({ task: spec(1) }, md, { deadline: Date.now() + 5000 }, cb),
    );
    expect(one.err).toBeNull();
    expect(leaderCell.ledger.get(one.res!.taskId)?.state).toBe(TaskState.TASK_STATE_QUEUED);
    expect(one.trailers['meshlb-leader']).toBe('/#1');
    expect(one.trailers['meshlb-leader-address']).toBe(leaderAddr);

    const batch = await unary<SubmitBatchResponse>((md, cb) =>
      c.submitBatch({ tasks: [spec(2), spec(3, ''), spec(1)] }, md, { deadline: Date.now() + 5000 }, cb),
    );
    expect(batch.res!.items.map((i) => i.code)).toEqual([status.OK, status.INVALID_ARGUMENT, status.OK]);
    expect(batch.res!.items[2]).toMatchObject({ taskId: one.res!.taskId, existing: true });
    expect(batch.trailers['meshlb-leader-address']).toBe(leaderAddr);

    const cancelled = await unary<{ task?: { state: TaskState } }>((md, cb) =>
      c.cancel({ taskId: one.res!.taskId, reason: 'test' }, md, { deadline: Date.now() + 5000 }, cb),
    );
    expect(cancelled.res!.task!.state).toBe(TaskState.TASK_STATE_CANCELLED);
    expect(leaderCell.ledger.get(one.res!.taskId)?.state).toBe(TaskState.TASK_STATE_CANCELLED);
    expect(leaderSeen).toEqual([
      { method: 'submit', forwarded: true },
      { method: 'submitBatch', forwarded: true },
      { method: 'cancel', forwarded: true },
    ]);
    expect(f.forwarding).toBe(0);
  });

  it('never forwards twice: crossed hints end in FAILED_PRECONDITION naming the leader; no leader is UNAVAILABLE with a retry hint', async () => {
    const hintA: Hint = { leading: false, leader: '', leaderAddress: '' };
    const hintB: Hint = { leading: false, leader: '', leaderAddress: '' };
    const seenA: Seen = [];
    const seenB: Seen = [];
    const a = await serve(follower(1, hintA).implementation(), seenA);
    const b = await serve(follower(2, hintB).implementation(), seenB);
    const c = clientOf(a);

    // No leader known anywhere: nothing is forwarded.
    const none = await unary((md, cb) => c.submit({ task: spec(1) }, md, { deadline: Date.now() + 5000 }, cb));
    expect(none.err?.code).toBe(status.UNAVAILABLE);
    expect(Number(none.trailers['meshlb-retry-after-ms'])).toBeGreaterThan(0);
    expect(seenB).toEqual([]);

    // A thinks B leads, B thinks A leads (a stale view during an election).
    Object.assign(hintA, { leader: '/#b', leaderAddress: b });
    Object.assign(hintB, { leader: '/#a', leaderAddress: a });
    const crossed = await unary((md, cb) => c.submit({ task: spec(2) }, md, { deadline: Date.now() + 5000 }, cb));
    expect(crossed.err?.code).toBe(status.FAILED_PRECONDITION);
    expect(crossed.trailers['meshlb-leader-address']).toBe(a);
    expect(seenA.filter((s) => s.method === 'submit')).toEqual([
      { method: 'submit', forwarded: false },
      { method: 'submit', forwarded: false },
    ]);
    expect(seenB).toEqual([{ method: 'submit', forwarded: true }]);

    const cancel = await unary((md, cb) =>
      c.cancel({ taskId: 'x', reason: '' }, md, { deadline: Date.now() + 5000 }, cb),
    );
    expect(cancel.err?.code).toBe(status.FAILED_PRECONDITION);
    expect(seenB.at(-1)).toEqual({ method: 'cancel', forwarded: true });
    expect(seenB).toHaveLength(2);
  });

  it('holds at most maxForwarding calls in flight: beyond, RESOURCE_EXHAUSTED with a retry hint; a caller that leaves frees its slot', async () => {
    const leader = await FakeNode.start();
    cleanups.push(() => leader.stop());
    leader.hangSubmit = true;
    const f = follower(1, { leading: false, leader: '/#1', leaderAddress: leader.address }, { maxForwarding: 2 });
    const c = clientOf(await serve(f.implementation()));
    const hung = [1, 2].map(() => c.submit({ task: spec(0) }, new Metadata(), () => undefined));
    await waitFor(() => leader.calls.submit === 2, { what: 'two forwarded submits at the leader' });
    expect(f.forwarding).toBe(2);
    const over = await unary((md, cb) => c.submit({ task: spec(3) }, md, { deadline: Date.now() + 5000 }, cb));
    expect(over.err?.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(Number(over.trailers['meshlb-retry-after-ms'])).toBeGreaterThan(0);
    expect(leader.calls.submit).toBe(2);

    // The callers give up: their forwarded calls are cancelled and the slots come back.
    for (const h of hung) h.cancel();
    await waitFor(() => f.forwarding === 0, { what: 'forwarded calls cancelled' });
    leader.hangSubmit = false;
    const ok = await unary<{ taskId: string }>((md, cb) =>
      c.submit({ task: spec(4) }, md, { deadline: Date.now() + 5000 }, cb),
    );
    expect(ok.err).toBeNull();
    expect(leader.tasks.has(ok.res!.taskId)).toBe(true);
  });

  it('SubmitStream: one response per request, in request order, even when the leader answers batches out of order', async () => {
    const leaderCell = newCell(0);
    const real = new TaskService(leaderCell).implementation();
    // The leader holds the answer to the first batch until a later batch has been answered.
    let firstHeld: (() => void) | undefined;
    let batches = 0;
    const leaderSeen: Seen = [];
    const leaderAddr = await serve(
      {
        ...real,
        submitBatch: (call, cb) => {
          const n = ++batches;
          real.submitBatch(call, (err, res, trailer) => {
            if (n === 1) firstHeld = () => cb(err, res, trailer);
            else {
              cb(err, res, trailer);
              firstHeld?.();
              firstHeld = undefined;
            }
          });
        },
      },
      leaderSeen,
    );
    const f = follower(1, { leading: false, leader: '/#1', leaderAddress: leaderAddr });
    const c = clientOf(await serve(f.implementation()));
    const call = c.submitStream();
    const got: SubmitStreamResponse[] = [];
    call.on('data', (r: SubmitStreamResponse) => got.push(r));
    const ended = new Promise<StatusObject>((resolve) => call.on('status', resolve));
    const bad = new Set([0, 17, 18, 149, 299]);
    for (let i = 0; i < 300; i++) {
      call.write({ requestId: i, task: spec(1000 + i, bad.has(i) ? '' : 'echo'), tasks: [] });
      // Several turns of the event loop, so the follower cuts several batches.
      if (i % 60 === 59) await new Promise((r) => setImmediate(r));
    }
    call.end();
    const st = await ended;
    expect(st.code).toBe(status.OK);
    expect(st.metadata.get('meshlb-leader-address')).toEqual([leaderAddr]);
    expect(got.map((r) => Number(r.requestId))).toEqual(Array.from({ length: 300 }, (_, i) => i));
    for (const r of got) {
      const i = Number(r.requestId);
      if (bad.has(i)) expect(r.item?.code).toBe(status.INVALID_ARGUMENT);
      else expect(leaderCell.ledger.get(r.item!.taskId)?.spec.idempotencyKey).toBe(`k${1000 + i}`);
    }
    expect(batches).toBeGreaterThanOrEqual(2);
    expect(leaderSeen.every((s) => s.method === 'submitBatch' && s.forwarded)).toBe(true);
  });
});

describe('reads pass the read barrier first', () => {
  it('Get waits for the barrier, then reads the local ledger; a barrier that fails is UNAVAILABLE with a retry hint', async () => {
    let release: (() => void) | undefined;
    let fail: ((e: Error) => void) | undefined;
    let reads = 0;
    const f = follower(
      1,
      { leading: false, leader: '', leaderAddress: '' },
      {
        readIndex: () => {
          reads++;
          return new Promise<void>((res, rej) => {
            release = res;
            fail = rej;
          });
        },
      },
    );
    const c = clientOf(await serve(f.implementation()));
    let answered = false;
    const p = unary<{ task?: { id: string } }>((md, cb) =>
      c.get({ taskId: 'nope' }, md, { deadline: Date.now() + 5000 }, cb),
    ).then((a) => {
      answered = true;
      return a;
    });
    await waitFor(() => reads === 1, { what: 'a barrier started' });
    expect(answered).toBe(false);
    release!();
    expect((await p).err?.code).toBe(status.NOT_FOUND);

    const q = unary((md, cb) => c.get({ taskId: 'nope' }, md, { deadline: Date.now() + 5000 }, cb));
    await waitFor(() => reads === 2, { what: 'a second barrier' });
    fail!(new Error('raft read timed out'));
    const a = await q;
    expect(a.err?.code).toBe(status.UNAVAILABLE);
    expect(Number(a.trailers['meshlb-retry-after-ms'])).toBeGreaterThan(0);
  });

  it('concurrent reads share barriers: one in flight, the next covers every read that came meanwhile', async () => {
    const pending: (() => void)[] = [];
    const barrier = new ReadBarrier(() => new Promise<void>((r) => pending.push(r)));
    const first = barrier.wait();
    const later = Array.from({ length: 50 }, () => barrier.wait());
    expect(pending).toHaveLength(1);
    pending[0]!();
    await first;
    // The barrier that covered `first` began before `later`: a second one runs for them.
    await waitFor(() => pending.length === 2, { what: 'the next barrier' });
    let done = 0;
    for (const p of later) void p.then(() => done++);
    await Promise.resolve();
    expect(done).toBe(0);
    pending[1]!();
    await Promise.all(later);
    expect(pending).toHaveLength(2);
  });
});
