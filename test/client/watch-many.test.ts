// The shared waiting path over real gRPC on 127.0.0.1 against a real mesh: a
// 3-replica root cell on Raft (lmdb), a region, a zone and a node cell with
// simulated agents (test/helpers/raft-cell-mesh.ts). Clients that wait per
// task get every result over one WatchMany stream, through a replica kill
// (the stream breaks, the client re-subscribes its pending ids elsewhere);
// the protocol's edges (unknown ids, tasks already ended, all_changes,
// unwatch, the per-stream limit, half-close) on a raw stream. watch() shares
// one WatchMany stream with all_changes the same way.
import { credentials, Metadata, status, type ClientDuplexStream } from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { MeshClient, type TaskRecord } from '../../src/client/index.js';
import {
  TaskServiceClient,
  TaskState,
  type WatchManyRequest,
  type WatchManyResponse,
} from '../../src/gen/meshlb/v1/task.js';
import type { Replica } from '../../src/mesh/replica.js';
import { seededRandom } from '../../src/util/rng.js';
import { OpsMesh, SEED } from '../helpers/raft-cell-mesh.js';
import { expectMeshError } from '../helpers/client-fixture.js';
import { waitFor } from '../helpers/wait.js';

let mesh: OpsMesh | undefined;
const closers: (() => void)[] = [];

afterEach(async () => {
  for (const c of closers.splice(0)) c();
  await mesh?.close();
  mesh = undefined;
});

function client(
  address: string | string[],
  seed: number,
  more: Partial<ConstructorParameters<typeof MeshClient>[0]> = {},
) {
  const c = new MeshClient({ address, deadlineMs: 15_000, random: seededRandom(seed), ...more });
  closers.push(() => c.close());
  return c;
}

async function roles(m: OpsMesh): Promise<{ leader: Replica; followers: Replica[] }> {
  const leader = await waitFor(() => m.leader(), { timeoutMs: 10_000, what: 'a root leader' });
  const followers = [...m.roots.values()].filter((r) => r !== leader);
  await waitFor(() => followers.every((f) => f.cell.leaderHint().leader === leader.cell.replicaId) || undefined, {
    timeoutMs: 10_000,
    what: 'followers that know the leader',
  });
  await waitFor(() => leader.cell.children?.links.size === 1 || undefined, {
    timeoutMs: 10_000,
    what: 'the region linked to the root leader',
  });
  return { leader, followers };
}

/** A raw WatchMany stream: every response kept. */
function rawStream(address: string) {
  const c = new TaskServiceClient(address, credentials.createInsecure());
  closers.push(() => c.close());
  const call: ClientDuplexStream<WatchManyRequest, WatchManyResponse> = c.watchMany(new Metadata());
  const got: WatchManyResponse[] = [];
  let ended: { code: number } | undefined;
  call.on('data', (r: WatchManyResponse) => got.push(r));
  call.on('error', () => {});
  call.on('status', (s: { code: number }) => (ended = s));
  return {
    call,
    got,
    ended: () => ended,
    tasks: () => got.flatMap((r) => r.tasks),
    errors: () => got.flatMap((r) => r.errors),
    send: (taskIds: string[], allChanges = false, unwatchTaskIds: string[] = []) =>
      call.write({ taskIds, allChanges, unwatchTaskIds }),
  };
}

async function collect(it: AsyncIterable<TaskRecord>): Promise<TaskRecord[]> {
  const out: TaskRecord[] = [];
  for await (const r of it) out.push(r);
  return out;
}

/** Changes in order, none repeated, then the task's completion as the last record. */
function expectChangesThenEnd(recs: TaskRecord[]): void {
  expect(recs.at(-1)!.state).toBe(TaskState.TASK_STATE_COMPLETED);
  for (let i = 1; i < recs.length; i++) {
    const [a, b] = [recs[i - 1]!, recs[i]!];
    expect(b.updatedUnixMs).toBeGreaterThanOrEqual(a.updatedUnixMs);
    expect([a.state, a.attempt, a.updatedUnixMs]).not.toEqual([b.state, b.attempt, b.updatedUnixMs]);
    expect(a.state).not.toBe(TaskState.TASK_STATE_COMPLETED);
  }
}

describe('the shared waiting path (seed ' + SEED + ')', () => {
  it('N tasks submitted and waited one at a time all complete over one stream, submits coalesced', async () => {
    mesh = await OpsMesh.start({ slots: 32, serviceTimeMs: 1 });
    const { leader } = await roles(mesh);
    // The coalesced unary path (SubmitStream's twin: test/client/shared-submit*.test.ts).
    const c = client(leader.address, SEED + 1, { sharedSubmit: false });
    const N = 1500;
    const WORKERS = 200;
    const done: string[] = [];
    let next = 0;
    const work = async (): Promise<void> => {
      while (next < N) {
        const i = next++;
        const t = await c.submitAndWait({ kind: 'echo', payload: `t-${i}` }, { timeoutMs: 30_000 });
        expect(t.state).toBe(TaskState.TASK_STATE_COMPLETED);
        done.push(t.id);
      }
    };
    await Promise.all(Array.from({ length: WORKERS }, () => work()));
    expect(done).toHaveLength(N);
    expect(new Set(done).size).toBe(N);
    expect(leader.cell.ledger.size).toBe(N);
    // One stream carried the waits (another only if the first idled out between tasks).
    expect(c.results!.stats.streams).toBeLessThanOrEqual(3);
    expect(c.results!.stats.broken).toBe(0);
    expect(c.results!.pending).toBe(0);
    // Submits made while others were in flight went in batches.
    expect(c.coalescer!.stats.batches).toBeGreaterThan(0);
    expect(c.coalescer!.stats.batched).toBeGreaterThan(N / 4);
    // The replica forgot every id it watched for the stream.
    await waitFor(() => leader.tasks.watchers.streams === 0 || undefined, { what: 'no watchers left' });

    // Waits that give up (a timeout, an abort shared by many) leave the stream: the cell unwatches their ids.
    const stuck = await Promise.all([0, 1, 2].map(() => c.submit({ kind: 'nobody-runs-this' })));
    const ac = new AbortController();
    const waits = stuck.map((t) => expectMeshError(c.waitForResult(t.taskId, { signal: ac.signal })));
    const timed = await expectMeshError(c.waitForResult(stuck[0]!.taskId, { timeoutMs: 50 }));
    expect(timed.code).toBe(status.DEADLINE_EXCEEDED);
    await waitFor(() => leader.tasks.watchers.streams === 3 || undefined, { what: 'three ids watched' });
    ac.abort();
    expect((await Promise.all(waits)).map((e) => e.code)).toEqual([0, 1, 2].map(() => status.CANCELLED));
    await waitFor(() => leader.tasks.watchers.streams === 0 || undefined, { what: 'the ids unwatched' });
    expect(c.results!.pending).toBe(0);
  });

  it('a replica kill breaks the stream: pending ids are re-subscribed elsewhere, no result is lost', async () => {
    mesh = await OpsMesh.start({ slots: 4, serviceTimeMs: 60 });
    const { leader, followers } = await roles(mesh);
    const [f1, f2] = followers as [Replica, Replica];
    // onLeader's stream is on the leader, onFollower's on a follower: the leader dies under the first,
    // and the second's follower keeps applying the new leader's changes.
    const onLeader = client([leader.address, f1.address, f2.address], SEED + 2);
    const onFollower = client(f1.address, SEED + 3);
    const N = 240;
    const items = await onLeader.submitBatch(
      Array.from({ length: N }, (_, i) => ({ kind: 'echo', payload: `k-${i}` })),
    );
    expect(items.every((i) => i.ok)).toBe(true);
    const ids = items.map((i) => i.taskId);
    const seen = new Map<string, number>();
    const waits = ids.flatMap((id) =>
      [onLeader, onFollower].map((c) =>
        c.waitForResult(id, { timeoutMs: 30_000 }).then((t) => {
          expect(t.state).toBe(TaskState.TASK_STATE_COMPLETED);
          seen.set(id, (seen.get(id) ?? 0) + 1);
        }),
      ),
    );
    // Some results in, most still running (8 slots, 60 ms each: about 2 s of work).
    await waitFor(() => seen.size >= 20 || undefined, { timeoutMs: 20_000, intervalMs: 2, what: 'the first results' });
    expect(seen.size).toBeLessThan(N);
    mesh.roots.delete(mesh.numberOf(leader));
    await leader.close(0);
    await Promise.all(waits);
    expect(seen.size).toBe(N);
    expect([...seen.values()].every((n) => n === 2)).toBe(true);
    expect(onLeader.results!.stats.broken).toBeGreaterThanOrEqual(1);
    expect(onLeader.results!.stats.resubscribed).toBeGreaterThan(0);
    expect(onFollower.results!.stats.broken).toBe(0);
    const next = await waitFor(() => mesh!.leader(), { timeoutMs: 10_000, what: 'a new leader' });
    expect(next.cell.ledger.size).toBe(N);
  });

  it('watch() of many tasks shares one all_changes stream; a late second watcher hears the latest change at once', async () => {
    mesh = await OpsMesh.start({ slots: 4, serviceTimeMs: 200 });
    const { leader } = await roles(mesh);
    const c = client(leader.address, SEED + 5);
    const N = 40;
    const items = await c.submitBatch(Array.from({ length: N }, (_, i) => ({ kind: 'echo', payload: `w-${i}` })));
    expect(items.every((i) => i.ok)).toBe(true);
    const watched = await Promise.all(items.map((i) => collect(c.watch(i.taskId, { deadlineMs: 30_000 }))));
    for (const recs of watched) expectChangesThenEnd(recs);
    // The first watches were registered while most tasks waited for a slot: they saw more than the end.
    expect(watched.filter((r) => r.length > 1).length).toBeGreaterThan(N / 2);
    expect(c.changes!.stats.streams).toBe(1);
    expect(c.changes!.pending).toBe(0);
    expect(c.results!.stats.streams).toBe(0);

    // Two watchers of one running task: the second, joining later, starts from the latest change.
    const t = await c.submit({ kind: 'echo', payload: 'late' });
    const first: TaskRecord[] = [];
    const done = (async () => {
      for await (const r of c.watch(t.taskId)) first.push(r);
    })();
    await waitFor(() => first.length >= 1 || undefined, { what: "the first watcher's first change" });
    const second = await collect(c.watch(t.taskId));
    await done;
    expectChangesThenEnd(first);
    expectChangesThenEnd(second);
    expect(second[0]!.updatedUnixMs).toBeGreaterThanOrEqual(first[0]!.updatedUnixMs);
    expect(second.at(-1)).toEqual(first.at(-1));
    // Breaking out early drops the id from the stream: the cell watches nothing.
    const u = await c.submit({ kind: 'nobody-runs-this' });
    for await (const r of c.watch(u.taskId)) {
      expect(r.state).not.toBe(TaskState.TASK_STATE_COMPLETED);
      break;
    }
    await waitFor(() => leader.tasks.watchers.streams === 0 || undefined, { what: 'the id unwatched' });
    expect(c.changes!.pending).toBe(0);
  });

  it('watch() through a replica kill: the stream is re-subscribed elsewhere, every watch ends, no change repeats', async () => {
    mesh = await OpsMesh.start({ slots: 4, serviceTimeMs: 60 });
    const { leader, followers } = await roles(mesh);
    const c = client([leader.address, ...followers.map((f) => f.address)], SEED + 6);
    const N = 120;
    const items = await c.submitBatch(Array.from({ length: N }, (_, i) => ({ kind: 'echo', payload: `x-${i}` })));
    const ended = new Set<string>();
    const watches = items.map((i) =>
      collect(c.watch(i.taskId, { deadlineMs: 30_000 })).then((recs) => (ended.add(i.taskId), recs)),
    );
    await waitFor(() => ended.size >= 10 || undefined, { timeoutMs: 20_000, intervalMs: 2, what: 'the first ends' });
    expect(ended.size).toBeLessThan(N);
    mesh.roots.delete(mesh.numberOf(leader));
    await leader.close(0);
    for (const recs of await Promise.all(watches)) expectChangesThenEnd(recs);
    expect(c.changes!.stats.broken).toBeGreaterThanOrEqual(1);
    expect(c.changes!.stats.resubscribed).toBeGreaterThan(0);
  });

  it('on a raw stream: unknown ids, tasks already ended, all_changes, unwatch, the limit per stream, half-close', async () => {
    mesh = await OpsMesh.start({ slots: 4, serviceTimeMs: 1500 });
    const { leader, followers } = await roles(mesh);
    const f1 = followers[0]!;
    const c = client(leader.address, SEED + 4, { sharedWatch: false });
    const a = await c.submit({ kind: 'echo', payload: 'r-a' });
    expect((await c.waitForResult(a.taskId, { timeoutMs: 20_000 })).state).toBe(TaskState.TASK_STATE_COMPLETED);
    // b and d run for 1.5 s: long enough to be watched before they end.
    const [b, d] = await Promise.all(['r-b', 'r-d'].map((p) => c.submit({ kind: 'echo', payload: p })));

    f1.tasks.watchManyLimits.idsPerStream = 3;
    const s = rawStream(f1.address);
    // Each request is answered before the next goes, so what the limit counts is known.
    s.send([a.taskId, 'no-such-task', '']);
    await waitFor(() => (s.errors().length === 2 && s.tasks().length === 1) || undefined, { what: 'a answered' });
    expect(s.tasks()[0]!).toMatchObject({ id: a.taskId, state: TaskState.TASK_STATE_COMPLETED });
    s.send([b!.taskId], true);
    await waitFor(() => s.tasks().some((t) => t.id === b!.taskId) || undefined, { what: "b's first record" });
    // b and d watched, x1 the third: x2 and x3 are over the limit of 3; x1 is unknown.
    s.send([d!.taskId, 'x1', 'x2', 'x3']);
    await waitFor(() => s.errors().length === 5 || undefined, { what: 'the error entries' });
    const codes = Object.fromEntries(s.errors().map((e) => [e.taskId, e.code]));
    expect(codes).toEqual({
      'no-such-task': status.NOT_FOUND,
      '': status.INVALID_ARGUMENT,
      x1: status.NOT_FOUND,
      x2: status.RESOURCE_EXHAUSTED,
      x3: status.RESOURCE_EXHAUSTED,
    });
    expect(s.errors().find((e) => e.taskId === 'x2')!.message).toMatch(/3 tasks, the limit per stream/);
    // d is dropped before it ends: nothing comes for it.
    s.send([], false, [d!.taskId]);
    s.call.end();
    await waitFor(() => s.ended(), { timeoutMs: 20_000, what: 'the stream ended after b ended' });
    expect(s.ended()!.code).toBe(status.OK);
    const forB = s.tasks().filter((t) => t.id === b!.taskId);
    expect(forB.at(-1)!.state).toBe(TaskState.TASK_STATE_COMPLETED);
    expect(forB.length).toBeGreaterThan(1);
    expect(s.tasks().some((t) => t.id === d!.taskId)).toBe(false);
    expect(f1.tasks.watchers.streams).toBe(0);
  });
});
