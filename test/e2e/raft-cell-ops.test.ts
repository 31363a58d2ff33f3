// Operating a cell's Raft group, in one process over real gRPC and lmdb (a
// 3-replica root, region, zone, node and SimAgents; see raft-cell-mesh.ts):
// GetCell per replica and TransferLeader over AdminService; a rolling restart
// of the root under a steady trickle of submits; the SIGTERM path of a leader
// handing leadership over before it stops; AddReplica of a --join replica and
// RemoveReplica.
import { status } from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { ReplicaRole, type GetCellResponse } from '../../src/gen/meshlb/v1/admin.js';
import type { Replica } from '../../src/mesh/replica.js';
import { parseTopology } from '../../src/topology/parse.js';
import { waitFor } from '../helpers/wait.js';
import { OpsMesh, refusal, SEED, spec, topologyText } from '../helpers/raft-cell-mesh.js';

let mesh: OpsMesh | undefined;

afterEach(async () => {
  await mesh?.close();
  mesh = undefined;
});

async function ready(): Promise<{ m: OpsMesh; leader: Replica }> {
  const m = (mesh = await OpsMesh.start());
  const leader = await waitFor(() => m.leader(), { timeoutMs: 10_000, what: 'a root leader' });
  await waitFor(() => leader.cell.children?.links.size === 1 || undefined, {
    timeoutMs: 10_000,
    what: 'the region linked to the root leader',
  });
  return { m, leader };
}

async function submitAll(r: Replica, keys: readonly string[]): Promise<string[]> {
  const out = await r.cell.submit(keys.map(spec));
  return out.map((o) => o.id);
}

function getCell(m: OpsMesh, r: Replica): Promise<GetCellResponse> {
  return m.admin(r.address).getCell({ path: '' });
}

/** A replica restarted from its data dir is a follower that applied everything the leader committed. */
async function caughtUpFollower(m: OpsMesh, r: Replica): Promise<void> {
  await waitFor(
    () => {
      const leader = m.leader();
      if (!leader || leader === r) return undefined;
      const commit = leader.cell.ledgerLog.replication()!.commit;
      const st = r.cell.ledgerLog.replication()!;
      return (st.role === 'follower' && st.applied >= commit) || undefined;
    },
    { timeoutMs: 15_000, what: `${r.cell.replicaId} a caught-up follower` },
  );
}

describe('operating a 3-replica root cell (seed ' + SEED + ')', () => {
  it('GetCell reports each replica; TransferLeader moves leadership and tasks keep completing', async () => {
    const { m, leader } = await ready();
    const ids = await submitAll(
      leader,
      Array.from({ length: 40 }, (_, i) => `a${i}`),
    );
    await waitFor(() => m.allCompleted(leader, ids), { timeoutMs: 15_000, what: 'the first tasks completed' });

    const views = await Promise.all([...m.roots.values()].map((r) => getCell(m, r)));
    expect(views.filter((v) => v.leader).map((v) => v.replicaId)).toEqual([leader.cell.replicaId]);
    for (const v of views) {
      const leads = v.replicaId === leader.cell.replicaId;
      expect(v.role).toBe(leads ? ReplicaRole.REPLICA_ROLE_LEADER : ReplicaRole.REPLICA_ROLE_FOLLOWER);
      expect(v.leaderId).toBe(leader.cell.replicaId);
      expect(v.leaderAddress).toBe(leader.address);
      expect(v.term).toBe(views[0]!.term);
      expect(v.commitIndex).toBeGreaterThan(0);
      expect(v.logEntries).toBeGreaterThan(0);
      expect(v.members.map((x) => [x.id, x.voter])).toEqual([
        ['/#1', true],
        ['/#2', true],
        ['/#3', true],
      ]);
      // The leader dispatched the tasks; followers sent nothing on.
      if (leads) expect(v.dispatched).toBeGreaterThanOrEqual(ids.length);
      else expect(v.dispatched).toBe(0);
    }

    // A follower refuses with the leader hint; bad names are INVALID_ARGUMENT.
    const follower = [...m.roots.values()].find((r) => r !== leader)!;
    const fc = m.admin(follower.address);
    const notLeader = await refusal(fc.transferLeader({ to: '' }));
    expect(notLeader.code).toBe(status.FAILED_PRECONDITION);
    expect(notLeader.metadata.get('meshlb-leader')).toEqual([leader.cell.replicaId]);
    expect(notLeader.metadata.get('meshlb-leader-address')).toEqual([leader.address]);
    const lc = m.admin(leader.address);
    for (const to of ['x', '/r#1', '0', '9']) {
      expect((await refusal(lc.transferLeader({ to }))).code, to).toBe(status.INVALID_ARGUMENT);
    }
    expect((await refusal(lc.removeReplica({ replica: '' }))).code).toBe(status.INVALID_ARGUMENT);
    // A cell with no Raft group (the region runs without a data dir here) is "not replicated".
    const rc = m.admin(m.others[0]!.address);
    const sole = await refusal(rc.transferLeader({ to: '' }));
    expect(sole.code).toBe(status.FAILED_PRECONDITION);
    expect(sole.details).toMatch(/not replicated/);

    const target = follower.cell.replicaId;
    const before = views[0]!.term;
    const moved = await lc.transferLeader({ to: String(m.numberOf(follower)) });
    expect(moved).toMatchObject({ from: leader.cell.replicaId, leaderId: target, leaderAddress: follower.address });
    expect(moved.term).toBe(before + 1);
    await waitFor(() => follower.cell.leading || undefined, { timeoutMs: 5_000, what: `${target} leading` });
    expect(leader.cell.leading).toBe(false);

    await waitFor(() => follower.cell.children?.links.size === 1 || undefined, {
      timeoutMs: 10_000,
      what: 'the region linked to the new leader',
    });
    const more = await submitAll(
      follower,
      Array.from({ length: 60 }, (_, i) => `b${i}`),
    );
    await waitFor(() => m.allCompleted(follower, [...ids, ...more]), {
      timeoutMs: 20_000,
      what: 'every task completed under the new leader',
    });
    const after = await getCell(m, follower);
    expect(after.leader).toBe(true);
    expect(after.dispatched).toBeGreaterThanOrEqual(more.length);
    expect((await getCell(m, leader)).leader).toBe(false);
  });

  it('a rolling restart of the root under a trickle of submits loses nothing and stalls no submit for 2 s', async () => {
    const { m } = await ready();
    const acked: string[] = [];
    let worstMs = 0;
    let retried = 0;
    let stop = false;
    // A task every few ms at whichever replica leads now; a refused submit is
    // retried (same idempotency key) until acknowledged, and timed.
    const trickle = (async () => {
      for (let i = 0; !stop; i++) {
        const key = `t${i}`;
        const t0 = Date.now();
        for (;;) {
          const leader = m.leader();
          const out = leader ? await leader.cell.submit([spec(key)]).catch(() => undefined) : undefined;
          if (out) {
            acked.push(out[0]!.id);
            break;
          }
          retried++;
          if (Date.now() - t0 > 20_000) throw new Error(`submit ${key} refused for 20 s`);
          await new Promise((r) => setTimeout(r, 10));
        }
        worstMs = Math.max(worstMs, Date.now() - t0);
        await new Promise((r) => setTimeout(r, 5));
      }
    })();

    const handovers: string[] = [];
    for (const n of [1, 2, 3]) {
      await waitFor(() => acked.length >= 40 * n || undefined, { timeoutMs: 10_000, what: 'submits acknowledged' });
      const led = m.roots.get(n)!.cell.leading;
      const report = await m.stopRoot(n);
      // The leader hands over; a follower has nothing to hand over or drain.
      expect(report.handedOver !== undefined, `replica ${n} led: ${led}`).toBe(led);
      expect(report.left).toBe(0);
      if (report.handedOver) handovers.push(`${report.handedOver.from}->${report.handedOver.to}`);
      const again = await m.startRoot(n);
      await caughtUpFollower(m, again);
    }
    const sent = acked.length;
    await waitFor(() => acked.length >= sent + 10 || undefined, { timeoutMs: 10_000, what: 'submits after the roll' });
    stop = true;
    await trickle;

    const leader = m.leader()!;
    await waitFor(() => m.allCompleted(leader, acked), {
      timeoutMs: 40_000,
      what: `every acknowledged task (${acked.length}) completed`,
    });
    // Each acknowledged task was accepted and recorded completed once.
    expect(leader.cell.ledger.counters.accepted).toBe(acked.length);
    expect(leader.cell.ledger.counters.completed).toBe(acked.length);
    // Every replica was stopped once, so the leader at least once.
    expect(handovers.length).toBeGreaterThanOrEqual(1);
    expect(new Set(acked).size).toBe(acked.length);
    console.log(`rolling restart: ${acked.length} acknowledged, ${retried} retries, worst submit ${worstMs} ms`);
    expect(worstMs).toBeLessThan(2_000);
  });

  it("a leader stopped the SIGTERM way hands leadership over first: the next term's leader is the one it named", async () => {
    const { m, leader } = await ready();
    const ids = await submitAll(
      leader,
      Array.from({ length: 30 }, (_, i) => `c${i}`),
    );
    const term = leader.cell.ledgerLog.replication()!.term;
    const oldId = leader.cell.replicaId;
    const report = await m.stopRoot(m.numberOf(leader));
    expect(report.handedOver).toBeDefined();
    const h = report.handedOver!;
    expect(h.from).toBe(oldId);
    expect(h.term).toBe(term + 1);
    console.log(`hand-over ${h.from} -> ${h.to} in ${h.tookMs} ms`);
    const next = await waitFor(() => m.leader(), { timeoutMs: 5_000, what: 'the new leader leading' });
    expect(next.cell.replicaId).toBe(h.to);
    expect(next.cell.ledgerLog.replication()!.term).toBe(term + 1);
    const more = await submitAll(
      next,
      Array.from({ length: 30 }, (_, i) => `d${i}`),
    );
    await waitFor(() => m.allCompleted(next, [...ids, ...more]), {
      timeoutMs: 30_000,
      what: 'every task completed under the new leader',
    });
  });

  it('AddReplica adds a --join replica as a learner, then a voter; RemoveReplica takes it out', async () => {
    const { m, leader } = await ready();
    await submitAll(
      leader,
      Array.from({ length: 20 }, (_, i) => `e${i}`),
    );
    // The new replica reads a topology that lists it (the root grown to 5 replicas).
    const grown = parseTopology(topologyText(m.ports, 5));
    const fourth = await m.startRoot(4, { topology: grown, join: true });
    expect(fourth.cell.ledgerLog.members()).toEqual([]);
    const lc = m.admin(leader.address);
    const address = `127.0.0.1:${m.ports[6]}`;
    const added = await lc.addReplica({ replica: '4', address });
    expect(added.added).toMatchObject({ id: '/#4', address, voter: true });
    expect(added.members.filter((x) => x.voter).map((x) => x.id)).toEqual(['/#1', '/#2', '/#3', '/#4']);
    await caughtUpFollower(m, fourth);
    const view = await getCell(m, fourth);
    expect(view).toMatchObject({ role: ReplicaRole.REPLICA_ROLE_FOLLOWER, leader: false });
    expect(view.leaderId).toBe(leader.cell.replicaId);
    expect(view.members.map((x) => x.id)).toEqual(['/#1', '/#2', '/#3', '/#4']);
    // Adding it again is a no-op; the leader cannot remove itself.
    expect((await lc.addReplica({ replica: '/#4', address })).members).toHaveLength(4);
    const self = await refusal(lc.removeReplica({ replica: leader.cell.replicaId }));
    expect(self.code).toBe(status.FAILED_PRECONDITION);

    const removed = await lc.removeReplica({ replica: '4' });
    expect(removed.members.map((x) => x.id)).toEqual(['/#1', '/#2', '/#3']);
    expect((await refusal(lc.removeReplica({ replica: '4' }))).code).toBe(status.INVALID_ARGUMENT);
    await m.stopRoot(4);
    // The cell still decides with its three voters.
    const ids = await submitAll(
      leader,
      Array.from({ length: 20 }, (_, i) => `f${i}`),
    );
    await waitFor(() => m.allCompleted(leader, ids), { timeoutMs: 15_000, what: 'tasks after the removal' });
  });
});
