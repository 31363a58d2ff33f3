// Snapshots (§7), membership changes (dissertation §4.1), leadership transfer
// (§3.10), ReadIndex (§6.4).
import { describe, expect, it } from 'vitest';
import { Cluster, text } from './cluster.js';
import { encodeConfChange } from '../../../src/raft/core/confchange.js';

const three = ['1', '2', '3'];
const enc = (s: string) => new TextEncoder().encode(s);

function elect(c: Cluster, id: string): void {
  c.campaign(id);
  c.stabilize();
  expect(c.node(id).status().role).toBe('leader');
}

/** Snapshot the leader's applied state at its applied index and compact its log. */
function snapshotAndCompact(c: Cluster, id: string): number {
  const m = c.get(id);
  const st = m.node.status();
  m.storage.createSnapshot(st.applied, m.conf, enc(m.applied.map(text).join(',')));
  m.storage.compact(st.applied);
  return st.applied;
}

describe('snapshots', () => {
  it('a lagging follower whose entries were compacted is caught up with a snapshot', () => {
    const c = new Cluster(three);
    elect(c, '1');
    c.isolate('3');
    for (let i = 0; i < 10; i++) c.propose('1', `v${i}`);
    c.stabilize();
    const at = snapshotAndCompact(c, '1');
    c.heal();
    c.tick('1', 1);
    let snaps = 0;
    for (let i = 0; i < 20 && c.queue.length > 0; i++) {
      snaps += c.queue.filter((m) => m.type === 'snap').length;
      c.deliver();
      c.processAll();
    }
    expect(snaps).toBe(1);
    expect(c.get('3').storage.snapshot().meta.index).toBe(at);
    expect(text({ data: c.get('3').storage.snapshot().data } as never)).toBe('v0,v1,v2,v3,v4,v5,v6,v7,v8,v9');
    c.propose('1', 'after');
    c.stabilize();
    expect(c.get('3').applied.map(text)).toEqual(['after']);
    expect(c.node('3').status().commit).toBe(c.node('1').status().commit);
  });

  it('a failed snapshot send is retried after reportSnapshot(false)', () => {
    const c = new Cluster(three);
    elect(c, '1');
    c.isolate('3');
    for (let i = 0; i < 4; i++) c.propose('1', `v${i}`);
    c.stabilize();
    snapshotAndCompact(c, '1');
    c.heal();
    c.dropType('snap');
    c.tick('1', 1);
    c.stabilize();
    expect(c.node('1').status().progress['3']!.state).toBe('snapshot');
    c.node('1').reportSnapshot('3', false);
    expect(c.node('1').status().progress['3']!.state).toBe('probe');
    c.heal();
    c.tick('1', 1);
    c.stabilize();
    expect(c.node('3').status().commit).toBe(c.node('1').status().commit);
  });
});

describe('membership', () => {
  it('a learner receives the log but does not vote or count toward commit; promotion makes it a voter', () => {
    const c = new Cluster(['1', '2']);
    elect(c, '1');
    c.addEmpty('3');
    expect(c.node('1').proposeConfChange({ type: 'addLearner', node: '3', context: '' }).ok).toBe(true);
    c.stabilize();
    c.tick('1', 1);
    c.stabilize();
    expect(c.get('1').conf).toEqual({ voters: ['1', '2'], learners: ['3'] });
    expect(c.get('3').conf).toEqual({ voters: ['1', '2'], learners: ['3'] });
    c.propose('1', 'x');
    c.stabilize();
    expect(c.get('3').applied.map(text)).toEqual(['x']);
    // With 2 down, the learner cannot make a quorum with 1.
    c.isolate('2');
    c.propose('1', 'y');
    c.stabilize();
    expect(c.get('1').applied.map(text)).toEqual(['x']);
    c.tick('3', 50);
    expect(c.node('3').status().role).toBe('follower'); // learners never campaign
    c.heal();
    c.tick('1', 1);
    c.stabilize();
    expect(c.node('1').proposeConfChange({ type: 'addVoter', node: '3', context: '' }).ok).toBe(true);
    c.stabilize();
    expect(c.get('1').conf.voters).toEqual(['1', '2', '3']);
    c.isolate('2');
    c.propose('1', 'z');
    c.stabilize();
    expect(c.get('1').applied.map(text)).toEqual(['x', 'y', 'z']); // 1 + 3 now form a quorum
  });

  it('only one membership change may be pending at a time', () => {
    const c = new Cluster(three);
    elect(c, '1');
    c.isolate('1');
    expect(c.node('1').proposeConfChange({ type: 'addLearner', node: '4', context: '' }).ok).toBe(true);
    expect(c.node('1').proposeConfChange({ type: 'addLearner', node: '5', context: '' })).toEqual({
      ok: false,
      reason: 'pendingConfChange',
    });
  });

  it('a removed leader steps down and the rest elect a new leader', () => {
    const c = new Cluster(three);
    elect(c, '1');
    c.node('1').proposeConfChange({ type: 'removeNode', node: '1', context: '' });
    c.stabilize();
    expect(c.node('1').status().role).toBe('follower');
    expect(c.get('2').conf.voters).toEqual(['2', '3']);
    for (let i = 0; i < 30 && !['2', '3'].some((id) => c.node(id).status().role === 'leader'); i++) {
      c.tick('2');
      c.tick('3');
      c.stabilize();
    }
    const leader = c.leader();
    expect(['2', '3']).toContain(leader);
    c.propose(leader!, 'after');
    c.stabilize();
    expect(c.get('2').applied.map(text)).toEqual(['after']);
  });

  it('a removed leader keeps replicating until every remaining voter knows the removal committed', () => {
    const c = new Cluster(three);
    elect(c, '1');
    c.cutOneWay('1', '3');
    c.node('1').proposeConfChange({ type: 'removeNode', node: '1', context: '' });
    c.processAll();
    c.stabilize();
    c.tick('1', 3);
    c.stabilize();
    expect(c.get('1').conf.voters).toEqual(['2', '3']); // applied at the leader
    expect(c.node('1').status().role).toBe('leader'); // 3 does not know yet
    expect(c.propose('1', 'no')).toEqual({ ok: false, reason: 'transferring' });
    c.heal();
    c.tick('1', 1);
    c.stabilize();
    expect(c.get('3').conf.voters).toEqual(['2', '3']); // 3 learned the removal committed
    expect(c.node('1').status().role).toBe('follower');
    for (let i = 0; i < 30 && !c.leader(); i++) {
      c.tick('2');
      c.tick('3');
      c.stabilize();
    }
    expect(['2', '3']).toContain(c.leader());
  });

  it('ConfChange entries carry the encoded change', () => {
    const c = new Cluster(three);
    elect(c, '1');
    c.node('1').proposeConfChange({ type: 'addLearner', node: '9', context: 'addr:9' });
    c.processAll();
    const last = c.log('1').at(-1)!;
    expect(last.type).toBe(1);
    expect(last.data).toEqual(encodeConfChange({ type: 'addLearner', node: '9', context: 'addr:9' }));
  });
});

describe('leadership transfer', () => {
  it('catches the target up, sends timeoutNow, and the target wins', () => {
    const c = new Cluster(three);
    elect(c, '1');
    c.isolate('3');
    c.propose('1', 'x');
    c.stabilize();
    c.heal();
    c.node('1').transferLeader('3');
    expect(c.propose('1', 'refused')).toEqual({ ok: false, reason: 'transferring' });
    c.processAll();
    c.stabilize();
    expect(c.node('3').status().role).toBe('leader');
    expect(c.node('1').status().leader).toBe('3');
  });

  it('is aborted after an election timeout if the target does not answer', () => {
    const c = new Cluster(three);
    elect(c, '1');
    c.isolate('3');
    c.node('1').transferLeader('3');
    expect(c.node('1').status().leadTransferee).toBe('3');
    c.tick('1', 10);
    c.stabilize();
    expect(c.node('1').status().leadTransferee).toBe('');
    expect(c.node('1').status().role).toBe('leader');
    expect(c.propose('1', 'ok').ok).toBe(true);
  });
});

describe('ReadIndex', () => {
  it('the leader answers after a heartbeat round; a follower forwards and gets the index', () => {
    const c = new Cluster(three);
    elect(c, '1');
    c.propose('1', 'x');
    c.stabilize();
    const commit = c.node('1').status().commit;
    c.node('1').readIndex('r1');
    c.processAll();
    expect(c.get('1').readStates).toEqual([]); // not before a quorum acked
    c.stabilize();
    expect(c.get('1').readStates).toEqual([{ index: commit, context: 'r1' }]);
    c.node('2').readIndex('r2');
    c.processAll();
    c.stabilize();
    expect(c.get('2').readStates).toEqual([{ index: commit, context: 'r2' }]);
  });

  it('a leader cut off from the majority never answers', () => {
    const c = new Cluster(three);
    elect(c, '1');
    c.isolate('1');
    c.node('1').readIndex('r');
    c.processAll();
    c.tick('1', 5);
    c.stabilize();
    expect(c.get('1').readStates).toEqual([]);
  });

  it('a new leader defers reads until it has committed an entry of its term', () => {
    const c = new Cluster(three);
    c.campaign('1');
    c.deliver(); // votes
    c.deliver(); // 1 becomes leader, its empty entry is not committed yet
    expect(c.node('1').status().role).toBe('leader');
    c.node('1').readIndex('early');
    c.processAll();
    expect(c.queue.some((m) => m.context === 'early')).toBe(false);
    c.stabilize();
    expect(c.get('1').readStates.map((r) => r.context)).toEqual(['early']);
    expect(c.get('1').readStates[0]!.index).toBe(c.node('1').status().commit);
  });
});
