// onLeaderChange listeners are told the term of the Ready that changed the
// leader: a replica that learns a new leader together with its new term (here:
// restarted after the others moved to a higher term) must not report the old one.
import { afterEach, describe, expect, it } from 'vitest';
import type { NodeId } from '../../../src/raft/index.js';
import { putCommand } from '../../../examples/raft-kv/state.js';
import { waitFor } from '../../helpers/wait.js';
import { TestCluster } from './cluster.js';

let cluster: TestCluster | undefined;
afterEach(async () => {
  await cluster?.close();
  cluster = undefined;
});

describe('RaftReplica.onLeaderChange', () => {
  it('reports the term of the Ready that changed the leader, as status() does', async () => {
    cluster = new TestCluster('memory');
    await cluster.start();
    const old = await cluster.leader();
    const [next, away] = cluster.ids.filter((id) => id !== old) as [NodeId, NodeId];
    await cluster.replica(old).propose(putCommand('a', '1'));
    await cluster.stop(away);
    await cluster.replica(old).transferLeadership(next, { timeoutMs: 3_000 });
    const term = cluster.replica(next).status().term;
    const seen: Array<{ leader: NodeId; term: number; status: number }> = [];
    // Listening before its first Ready runs (the pump starts on setImmediate): its disk still says the old term.
    const r = await cluster.restart(away);
    r.onLeaderChange((leader, t) => seen.push({ leader, term: t, status: r.status().term }));
    await waitFor(() => seen.some((e) => e.leader === next), { what: `${away} to learn the new leader` });
    const learned = seen.find((e) => e.leader === next)!;
    // (At least: a loaded machine may have run another election since.)
    expect(learned.term, 'the new term, not the one on its disk').toBeGreaterThanOrEqual(term);
    for (const e of seen) expect(e.term).toBe(e.status);
  });
});
