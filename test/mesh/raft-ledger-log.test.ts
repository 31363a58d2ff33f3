// The ledger replicated by Raft (RaftLedgerLog): every replica applies the same
// batches with the same results; only the leader proposes; an acknowledged
// command survives the leader's death, restarts and a whole-group restart;
// snapshots bound the log and bring lagging or new replicas up to date.
// Over the in-memory network (real lmdb), and once over real gRPC.
import { afterEach, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ResultStatus, TaskResult, TaskState } from '../../src/gen/meshlb/v1/task.js';
import { NotLeaderError, ShuttingDownError, TimeoutError, type NodeId } from '../../src/raft/index.js';
import { isTerminal, type ApplyResult, type LedgerCommand } from '../../src/mesh/ledger.js';
import type { LeaderChange, RaftLedgerLog } from '../../src/mesh/raft-ledger-log.js';
import { seededRandom } from '../../src/util/rng.js';
import { waitFor } from '../helpers/wait.js';
import { commandFor, script, SEED, spec } from './ledger-gen.js';
import { LedgerCluster, type ClusterOptions } from './ledger-cluster.js';

let cluster: LedgerCluster | undefined;
afterEach(async () => {
  await cluster?.close();
  cluster = undefined;
});

async function started(opts: Partial<ClusterOptions> = {}): Promise<{ c: LedgerCluster; leader: RaftLedgerLog }> {
  const c = new LedgerCluster({ seed: SEED, ...opts });
  cluster = c;
  await c.start();
  return { c, leader: c.log(await c.leader()) };
}

const accept = (id: string, key = ''): LedgerCommand => ({
  type: 'accepted',
  tasks: [
    { id, spec: spec({ idempotencyKey: key, payload: Buffer.from(`payload of ${id}`) }), homeCell: '/', atMs: 1 },
  ],
});
const dispatch = (ids: readonly string[], attempt = 1): LedgerCommand => ({
  type: 'dispatched',
  refs: ids.map((id) => ({ id, attempt })),
  atMs: 2,
});
/** Several tasks in one command, each with an idempotency key. */
const acceptMany = (ids: readonly string[], atMs: number): LedgerCommand => ({
  type: 'accepted',
  tasks: ids.map((id) => ({ id, spec: spec({ idempotencyKey: `k-${id}` }), homeCell: '/', atMs })),
});
const okAll = (rs: ApplyResult[][]) => rs.every((r) => r.every((x) => x.ok));
const range = (n: number, prefix: string) => Array.from({ length: n }, (_, i) => `${prefix}${i}`);
const followers = (c: LedgerCluster, leader: RaftLedgerLog) => c.running().filter((l) => l !== leader);

describe('RaftLedgerLog on the memory network', () => {
  it('applies a seeded script on every replica with the same results per entry and converges', async () => {
    const { c, leader } = await started();
    const rnd = seededRandom(SEED);
    const [steps] = fc.sample(script(240), { seed: SEED, numRuns: 1 });
    const answers: ApplyResult[][][] = [];
    for (let i = 0; i < steps!.length;) {
      const n = 1 + Math.floor(rnd() * 3);
      const batch = steps!.slice(i, i + n).map((s) => commandFor(s, leader.ledger));
      i += n;
      answers.push(await leader.propose(batch));
    }
    // A burst from one event-loop turn: one Raft entry per call, answered per call.
    const burst = await Promise.all(range(40, 'burst').map((id) => leader.propose([accept(id), dispatch([id])])));
    expect(burst.every(okAll)).toBe(true);
    await c.converged();
    const events = c.member(leader.replica.id).applied.flatMap((e) => (e.kind === 'commands' ? [e] : []));
    expect(events.slice(0, answers.length).map((e) => e.results)).toStrictEqual(answers);
    for (const id of c.ids) expect(c.member(id).applied).toStrictEqual(c.member(leader.replica.id).applied);
    const st = leader.status();
    expect(st).toMatchObject({ role: 'leader', tasks: leader.ledger.size, liveTasks: leader.ledger.liveCount });
    expect(st.term).toBeGreaterThan(0);
    expect(st.applied).toBe(st.commit);
    expect(st.logEntries).toBe(st.lastIndex - st.firstIndex + 1);
  });

  it('a follower refuses to propose with the leader as hint; its ledger is readable and reads are linearizable', async () => {
    const { c, leader } = await started();
    const lid = leader.replica.id;
    const f = followers(c, leader)[0]!;
    const before = f.status().lastIndex;
    const refused = f.propose([accept('x')]);
    await expect(refused).rejects.toBeInstanceOf(NotLeaderError);
    await expect(refused).rejects.toMatchObject({ leader: lid, leaderAddress: `mem:${lid}` });
    expect(f.isLeader()).toBe(false);
    expect(f.leader()).toEqual({ id: lid, address: `mem:${lid}` });
    expect(await f.propose([])).toEqual([]);
    expect(await leader.propose([accept('y', 'key-y')])).toMatchObject([[{ ok: true, id: 'y' }]]);
    expect(await f.read((l) => l.get('y')?.state)).toBe(TaskState.TASK_STATE_QUEUED);
    expect(f.ledger.get('x')).toBeUndefined();
    expect(f.ledger.idForKey('key-y')).toBe('y');
    expect(f.status().lastIndex).toBeGreaterThan(before); // it holds the leader's entry, not one of its own
    await c.converged();
  });

  it("passes the runtime's errors through: a cut-off leader times out, a closed log shuts down", async () => {
    const { c, leader } = await started();
    c.net.cut(leader.replica.id);
    await expect(leader.propose([accept('stranded')], { timeoutMs: 400 })).rejects.toBeInstanceOf(TimeoutError);
    c.net.heal(leader.replica.id);
    const f = followers(c, leader)[0]!;
    await c.stop(f.replica.id);
    await expect(f.propose([accept('late')])).rejects.toBeInstanceOf(ShuttingDownError);
  });

  it('a new leader is elected when the leader dies and its ledger holds every acknowledged command', async () => {
    const { c, leader: old } = await started();
    const oldTerm = old.status().term;
    const acked = new Set<string>();
    const changes: LeaderChange[] = [];
    const leading: { id: NodeId; term: number; missing: string[] }[] = [];
    for (const l of followers(c, old)) {
      l.onLeaderChange((ev) => changes.push(ev));
      l.onLeading((term) =>
        leading.push({ id: l.replica.id, term, missing: [...acked].filter((id) => !l.ledger.get(id)) }),
      );
    }
    // Four writers, each accepting then dispatching its tasks one batch at a time.
    await Promise.all(
      [0, 1, 2, 3].map(async (w) => {
        for (const id of range(15, `w${w}-`)) {
          await old.propose([accept(id)]);
          await old.propose([dispatch([id])]);
          acked.add(id);
        }
      }),
    );
    // Proposals in flight when the leader dies: their outcome is unknown, only answered ones count.
    const inflight = range(30, 'late').map((id) =>
      old.propose([accept(id)]).then(
        () => acked.add(id),
        () => undefined,
      ),
    );
    await c.stop(old.replica.id);
    await Promise.all(inflight);
    const nextId = await c.leader();
    expect(nextId).not.toBe(old.replica.id);
    const next = c.log(nextId);
    await waitFor(() => leading.find((e) => e.id === nextId), {
      timeoutMs: 15_000,
      what: 'onLeading on the new leader',
    });
    const ev = leading.find((e) => e.id === nextId)!;
    expect(ev.term).toBeGreaterThan(oldTerm);
    expect(ev.missing).toEqual([]);
    expect(changes).toContainEqual({ leader: nextId, leaderAddress: `mem:${nextId}`, term: ev.term, self: true });
    for (const id of acked) expect(next.ledger.get(id), id).toBeDefined();
    for (const id of range(15, 'w0-')) expect(next.ledger.get(id)).toMatchObject({ attempt: 1 });
    expect(okAll(await next.propose([accept('after')]))).toBe(true);
    await c.converged();
  });

  it('installs a snapshot on a lagging replica and on a new member the log no longer covers', async () => {
    const { c, leader } = await started({ limits: { snapshotEvery: 100, snapshotKeep: 20 } });
    const lag = followers(c, leader)[0]!;
    const lagId = lag.replica.id;
    c.net.cut(lagId);
    for (let round = 0; round < 30; round++) {
      const ids = range(10, `r${round}-`);
      await Promise.all(ids.map((id) => leader.propose([accept(id), dispatch([id])])));
    }
    await waitFor(() => leader.status().firstIndex > lag.status().applied + 1, { what: 'the leader to compact' });
    const seen = c.member(lagId).applied.length;
    c.net.heal(lagId);
    await c.converged();
    expect(
      c
        .member(lagId)
        .applied.slice(seen)
        .some((e) => e.kind === 'restored'),
    ).toBe(true);
    expect(lag.ledger.get('r29-9')?.state).toBe(TaskState.TASK_STATE_DISPATCHED);
    // A fourth replica with an empty log joins: it can only start from the snapshot.
    const joiner = await c.join('n4');
    await leader.replica.addVoter('n4', 'mem:n4');
    await c.converged();
    expect(c.member('n4').applied[0]).toEqual({ kind: 'restored' });
    expect(joiner.ledger.size).toBe(leader.ledger.size);
  });

  it('keeps the stored log bounded by snapshots under 20,000 commands', async () => {
    const limits = { snapshotEvery: 2_000, snapshotKeep: 500 };
    const wave = 500;
    const { c, leader } = await started({ limits, retention: 1_000 });
    // A snapshot is taken after the Ready that crosses snapshotEvery (up to one wave
    // past it) and saved and compacted asynchronously while entries keep coming.
    const bound = limits.snapshotEvery + limits.snapshotKeep + wave;
    const longest = () => Math.max(...c.running().map((l) => l.status().logEntries));
    let most = 0;
    for (let w = 0; w < 40; w++) {
      const ids = range(wave, `b${w >> 1}-`);
      // Even waves accept 500 tasks, odd waves cancel them (so retention evicts): one command per entry.
      const cmds: LedgerCommand[] = ids.map((id) =>
        w % 2 === 0 ? accept(id) : { type: 'cancelled', id, reason: 'done', atMs: w },
      );
      expect((await Promise.all(cmds.map((cmd) => leader.propose([cmd])))).every(okAll)).toBe(true);
      most = Math.max(most, longest());
      // Once the snapshot in flight is saved and the log compacted, every replica is back under the bound.
      await waitFor(() => longest() <= bound, { timeoutMs: 15_000, what: `log <= ${bound} entries after wave ${w}` });
    }
    await c.converged();
    for (const l of c.running()) {
      const st = l.status();
      expect(st.lastIndex).toBeGreaterThan(20_000);
      expect(st.firstIndex).toBeGreaterThan(20_000 - bound);
    }
    // Even with a snapshot still being saved, no replica ever held more than a fraction of the 20,000.
    expect(most).toBeLessThan(10_000);
    expect(leader.ledger.counters).toMatchObject({ accepted: 10_000, cancelled: 10_000 });
    expect(leader.ledger.size).toBe(1_000);
  });

  it('a replica restarted on its data dir recovers its ledger from its snapshot and log, and catches up', async () => {
    const { c, leader } = await started({ limits: { snapshotEvery: 50, snapshotKeep: 10 } });
    const f = followers(c, leader)[0]!.replica.id;
    for (const chunk of [range(60, 'a'), range(60, 'b')])
      await Promise.all(chunk.map((id) => leader.propose([accept(id)])));
    await c.converged();
    const held = Buffer.from(c.log(f).ledger.snapshot());
    await c.stop(f);
    await Promise.all(range(40, 'c').map((id) => leader.propose([accept(id), dispatch([id])])));
    // Cut off from the others, it can only rebuild from its own disk: its snapshot, then its log replayed.
    c.net.cut(f);
    const back = await c.restart(f);
    expect(c.member(f).applied[0]).toEqual({ kind: 'restored' });
    await waitFor(() => Buffer.from(back.ledger.snapshot()).equals(held), {
      what: 'the restarted replica to rebuild its ledger from its data dir',
    });
    expect(back.ledger.get('c0')).toBeUndefined();
    c.net.heal(f);
    await c.converged();
    expect(back.ledger.get('c39')?.state).toBe(TaskState.TASK_STATE_DISPATCHED);
  });

  it('all replicas stopped and started again recover every accepted unfinished task', async () => {
    const { c, leader } = await started({ limits: { snapshotEvery: 50, snapshotKeep: 10 } });
    const ids = range(150, 't');
    for (let i = 0; i < ids.length; i += 5) await leader.propose([acceptMany(ids.slice(i, i + 5), i)]);
    await leader.propose([dispatch(ids.slice(0, 100))]);
    await leader.propose(
      ids.slice(0, 40).map((id) => ({
        type: 'completed' as const,
        result: TaskResult.fromPartial({
          taskId: id,
          attempt: 1,
          status: ResultStatus.RESULT_STATUS_OK,
          output: Buffer.from(id),
        }),
        atMs: 3,
      })),
    );
    await leader.propose(
      ids
        .slice(40, 60)
        .map((id) => ({ type: 'attemptFailed', id, attempt: 1, reason: 'lost', counted: true, lapse: true, atMs: 4 })),
    );
    await leader.propose(ids.slice(140).map((id) => ({ type: 'cancelled', id, reason: 'client', atMs: 5 })));
    const expected = Buffer.from(leader.ledger.snapshot());
    const unfinished = [...leader.ledger.records()]
      .filter((r) => !isTerminal(r.state))
      .map((r) => ({ id: r.id, state: r.state, attempt: r.attempt }));
    expect(unfinished).toHaveLength(100);
    await c.converged();
    for (const id of c.ids) await c.stop(id);
    for (const id of c.ids) c.startReplica(id);
    const leading: number[] = [];
    for (const l of c.running()) l.onLeading((term) => leading.push(term));
    await c.leader();
    await waitFor(() => leading.length > 0, { what: 'the new leader to catch up' });
    await c.converged();
    for (const l of c.running()) {
      expect(Buffer.from(l.ledger.snapshot()).equals(expected)).toBe(true);
      for (const u of unfinished) expect(l.ledger.get(u.id)).toMatchObject(u);
      expect(l.ledger.idForKey('k-t99')).toBe('t99');
    }
  });
});

describe('RaftLedgerLog over gRPC', () => {
  it('commits on three replicas; when the leader is killed the new leader has everything', async () => {
    const { c, leader } = await started({ mode: 'grpc' });
    const ids = range(30, 'g');
    const rs = await Promise.all([0, 10, 20].map((i) => leader.propose(ids.slice(i, i + 10).map((id) => accept(id)))));
    expect(rs.every(okAll)).toBe(true);
    await leader.propose([dispatch(ids)]);
    const old = leader.replica.id;
    await c.stop(old);
    const nextId = await c.leader();
    expect(nextId).not.toBe(old);
    const next = c.log(nextId);
    // The old leader may have died before telling anyone the last commit index:
    // the new leader applies that entry once one of its own term commits (the read barrier).
    await next.readIndex();
    for (const id of ids)
      expect(next.ledger.get(id)).toMatchObject({ state: TaskState.TASK_STATE_DISPATCHED, attempt: 1 });
    expect(okAll(await next.propose([accept('after')]))).toBe(true);
    await c.converged();
  });
});
