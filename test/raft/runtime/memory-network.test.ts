// The runtime on the in-memory network twin (real lmdb, no sockets): a
// partitioned leader loses leadership, the majority moves on, and after the
// heal every replica converges on the majority's log; a proposal it appended
// but that the new leader's log replaced fails then, not at its deadline.
import { afterEach, describe, expect, it } from 'vitest';
import { NotLeaderError, TimeoutError } from '../../../src/raft/index.js';
import { putCommand } from '../../../examples/raft-kv/state.js';
import { waitFor } from '../../helpers/wait.js';
import { TestCluster } from './cluster.js';

let cluster: TestCluster | undefined;
afterEach(async () => {
  await cluster?.close();
  cluster = undefined;
});

describe('RaftReplica on the memory network', () => {
  it('a cut-off leader cannot commit; the majority elects another and the old one converges after heal', async () => {
    cluster = new TestCluster('memory');
    await cluster.start();
    const old = await cluster.leader();
    await cluster.replica(old).propose(putCommand('before', '1'));
    cluster.net.cut(old);
    const stranded = cluster.replica(old).propose(putCommand('stranded', 'x'), { timeoutMs: 1_500 });
    // No quorum confirms its leadership any more: a linearizable read must not be served.
    const staleRead = cluster
      .replica(old)
      .read({ timeoutMs: 1_000 })
      .then(
        () => 'served',
        (e: unknown) => e,
      );
    const others = cluster.ids.filter((id) => id !== old);
    const next = await waitFor(
      () => {
        const l = cluster!.replica(others[0]!).status().leader;
        return l && l !== old && cluster!.replica(l).isLeader() ? l : undefined;
      },
      { timeoutMs: 3_000, what: 'majority leader' },
    );
    await cluster.replica(next).propose(putCommand('during', '2'));
    await expect(stranded).rejects.toBeInstanceOf(TimeoutError);
    expect(await staleRead).toBeInstanceOf(TimeoutError);
    cluster.net.heal(old);
    await waitFor(() => cluster!.nodes.get(old)!.kv.data.get('during') === '2', { what: 'old leader converges' });
    expect(cluster.nodes.get(old)!.kv.data.has('stranded')).toBe(false);
    expect(cluster.replica(old).isLeader()).toBe(false);
    for (const n of cluster.running()) expect(n.kv.data.get('before')).toBe('1');
  });

  it('a proposal the deposed leader appended fails with NotLeaderError once the new term applies there', async () => {
    cluster = new TestCluster('memory');
    await cluster.start();
    const old = await cluster.leader();
    cluster.net.cut(old);
    const started = Date.now();
    // Appended to the old leader's log, never replicated: the new leader's entries replace it.
    const stranded = cluster
      .replica(old)
      .propose(putCommand('stranded', 'x'), { timeoutMs: 30_000 })
      .then(
        () => 'committed',
        (e: unknown) => e,
      );
    const others = cluster.ids.filter((id) => id !== old);
    const next = await waitFor(
      () => {
        const l = cluster!.replica(others[0]!).status().leader;
        return l && l !== old && cluster!.replica(l).isLeader() ? l : undefined;
      },
      { timeoutMs: 3_000, what: 'majority leader' },
    );
    await cluster.replica(next).propose(putCommand('during', '2'));
    cluster.net.heal(old);
    const err = await stranded;
    expect(err).toBeInstanceOf(NotLeaderError);
    expect(Date.now() - started, 'well before its 30 s deadline').toBeLessThan(15_000);
    for (const n of cluster.running()) expect(n.kv.data.has('stranded')).toBe(false);
    expect(cluster.nodes.get(old)!.kv.data.get('during')).toBe('2');
    // The hint names a leader of the new term (the one elected, unless another election followed).
    expect((err as NotLeaderError).leader).not.toBe('');
  });
});
