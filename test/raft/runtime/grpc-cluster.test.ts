// Three replicas over real gRPC on 127.0.0.1 with real lmdb files: the whole
// runtime path (persist, send, apply, ReadIndex, snapshots) end to end.
import { afterEach, describe, expect, it } from 'vitest';
import { NotLeaderError, ShuttingDownError } from '../../../src/raft/index.js';
import { putCommand } from '../../../examples/raft-kv/state.js';
import { waitFor } from '../../helpers/wait.js';
import { TestCluster } from './cluster.js';

let cluster: TestCluster | undefined;
afterEach(async () => {
  await cluster?.close();
  cluster = undefined;
});

function allHave(c: TestCluster, key: string, value: string): boolean {
  return c.running().every((n) => n.kv.data.get(key) === value);
}

describe('RaftReplica over gRPC', () => {
  it('elects a leader; writes on leader and follower apply everywhere; reads are linearizable', async () => {
    cluster = new TestCluster('grpc');
    await cluster.start();
    const leader = await cluster.leader();
    const follower = cluster.ids.find((id) => id !== leader)!;
    const idx = await cluster.replica(leader).propose(putCommand('a', '1'));
    expect(typeof idx).toBe('number');
    // A follower's proposal is forwarded to the leader and resolves when applied locally.
    const fidx = (await cluster.replica(follower).propose(putCommand('b', '2'))) as number;
    expect(fidx).toBeGreaterThan(idx as number);
    expect(cluster.nodes.get(follower)!.kv.data.get('b')).toBe('2');
    await waitFor(() => allHave(cluster!, 'a', '1') && allHave(cluster!, 'b', '2'), {
      what: 'writes applied everywhere',
    });
    // ReadIndex on the third replica: after read() it has applied every write acknowledged before.
    const third = cluster.ids.find((id) => id !== leader && id !== follower)!;
    await cluster.replica(leader).propose(putCommand('c', '3'));
    await cluster.replica(third).read();
    expect(cluster.nodes.get(third)!.kv.data.get('c')).toBe('3');
  });

  it('elects a new leader when the leader stops, and a restarted replica recovers its state', async () => {
    cluster = new TestCluster('grpc');
    await cluster.start();
    const old = await cluster.leader();
    for (let i = 0; i < 20; i++) await cluster.replica(old).propose(putCommand(`k${i}`, `v${i}`));
    const t0 = Date.now();
    await cluster.stop(old);
    const next = await cluster.leader(3_000);
    const failoverMs = Date.now() - t0;
    expect(next).not.toBe(old);
    expect(failoverMs, `failover took ${failoverMs} ms`).toBeLessThan(2_000);
    await cluster.replica(next).propose(putCommand('after', 'failover'));
    await cluster.restart(old);
    await waitFor(() => allHave(cluster!, 'after', 'failover') && allHave(cluster!, 'k19', 'v19'), {
      what: 'restarted replica to catch up',
    });
    // Full restart: every replica rebuilds from its own disk.
    for (const id of cluster.ids) await cluster.stop(id);
    for (const id of cluster.ids) await cluster.restart(id);
    const l = await cluster.leader();
    await cluster.replica(l).read();
    expect(cluster.nodes.get(l)!.kv.data.get('after')).toBe('failover');
    expect(cluster.nodes.get(l)!.kv.data.size).toBe(21);
  });

  it('catches a lagging replica up by snapshot after the log was compacted', async () => {
    cluster = new TestCluster('grpc', ['n1', 'n2', 'n3'], { snapshotEvery: 40, snapshotKeep: 5 });
    await cluster.start();
    const leader = await cluster.leader();
    const lagger = cluster.ids.find((id) => id !== leader)!;
    await cluster.stop(lagger);
    const r = cluster.replica(leader);
    await Promise.all(Array.from({ length: 150 }, (_, i) => r.propose(putCommand(`s${i}`, `${i}`))));
    await waitFor(() => r.status().applied >= 150 && r.status().firstIndex > 100, {
      what: 'leader to snapshot and compact',
    });
    // An append queued for the lagger before the compaction would still carry
    // the whole log and make the catch-up a log replay: drop what is queued.
    cluster.dropQueuedTo(lagger);
    await cluster.restart(lagger);
    await waitFor(() => allHave(cluster!, 's149', '149') && allHave(cluster!, 's0', '0'), {
      what: 'lagging replica to install the snapshot',
    });
    expect(cluster.nodes.get(lagger)!.kv.data.size).toBe(150);
    expect(cluster.nodes.get(lagger)!.kv.restores, 'state came by snapshot, not log replay').toBeGreaterThan(0);
    expect(cluster.replica(leader).status().applied).toBeGreaterThan(120);
  });

  it('a replica started with join: true catches up from an empty log and becomes a voter', async () => {
    cluster = new TestCluster('grpc');
    await cluster.start();
    const leader = await cluster.leader();
    for (let i = 0; i < 10; i++) await cluster.replica(leader).propose(putCommand(`j${i}`, `${i}`));
    const n4 = await cluster.addJoiner('n4');
    expect(cluster.replica('n4').isLeader()).toBe(false);
    const conf = await cluster.replica(leader).addVoter('n4', n4.address);
    expect([...conf.voters].sort()).toEqual(['n1', 'n2', 'n3', 'n4']);
    await waitFor(() => n4.kv.data.get('j9') === '9', { what: 'joiner to catch up' });
    await cluster.replica('n4').read();
    // The joiner learned the initial members (and their addresses) from the log.
    expect(cluster.replica('n4').addressOf(leader)).toBe(cluster.nodes.get(leader)!.address);
  });

  it('membership changes pass through (forwarded from a follower); typed errors carry leader hints', async () => {
    cluster = new TestCluster('grpc');
    await cluster.start();
    const leader = await cluster.leader();
    const follower = cluster.ids.find((id) => id !== leader)!;
    const conf = await cluster.replica(follower).addLearner('n9', '127.0.0.1:1');
    expect(conf.learners).toEqual(['n9']);
    await waitFor(() => cluster!.replica(leader).addressOf('n9') === '127.0.0.1:1', {
      what: 'learner address on leader',
    });
    expect((await cluster.replica(leader).removeNode('n9')).learners).toEqual([]);
    const err = await cluster
      .replica(follower)
      .transferLeadership(follower)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotLeaderError);
    expect((err as NotLeaderError).leader).toBe(leader);
    expect((err as NotLeaderError).leaderAddress).toBe(cluster.nodes.get(leader)!.address);
    const r = cluster.replica(follower);
    await cluster.replica(leader).transferLeadership(follower, { timeoutMs: 3_000 });
    expect(await cluster.leader()).toBe(follower);
    await cluster.stop(follower);
    await expect(r.propose(putCommand('x', 'y'))).rejects.toBeInstanceOf(ShuttingDownError);
  });
});
