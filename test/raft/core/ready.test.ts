// The Ready/advance contract as the runtime relies on it.
import { describe, expect, it } from 'vitest';
import { RawNode } from '../../../src/raft/core/raft.js';
import { MemoryStorage } from '../../../src/raft/core/memory-storage.js';
import { Cluster, text } from './cluster.js';
import type { RaftConfig } from '../../../src/raft/core/types.js';

function config(storage: MemoryStorage, over: Partial<RaftConfig> = {}): RaftConfig {
  let x = 7;
  return {
    id: '1',
    storage,
    electionTick: 10,
    heartbeatTick: 1,
    preVote: false,
    checkQuorum: false,
    maxInflight: 4,
    maxSizePerMsg: 1024,
    maxUncommitted: 0,
    applied: 0,
    random: () => (x = (x * 48271) % 2147483647) / 2147483647,
    ...over,
  };
}

describe('Ready / advance', () => {
  it('hands out committed bootstrap entries first, then nothing until something happens', () => {
    const n = new RawNode(config(MemoryStorage.bootstrap(['1'])));
    expect(n.hasReady()).toBe(true);
    const rd = n.ready();
    expect(rd.committedEntries.map((e) => e.index)).toEqual([1]);
    expect(rd.entries).toEqual([]);
    n.applyConfChange({ type: 'addVoter', node: '1', context: '' });
    n.advance(rd);
    expect(n.hasReady()).toBe(false);
  });

  it('refuses a second ready() before advance(), and hasReady() is false meanwhile', () => {
    const n = new RawNode(config(MemoryStorage.bootstrap(['1'])));
    const rd = n.ready();
    expect(n.hasReady()).toBe(false);
    expect(() => n.ready()).toThrow(/advance/);
    n.advance(rd);
  });

  it('a single voter commits its own entries once they are durable (mustSync: new entries and a term change)', () => {
    const s = MemoryStorage.bootstrap(['1']);
    const n = new RawNode(config(s));
    let rd = n.ready();
    n.applyConfChange({ type: 'addVoter', node: '1', context: '' });
    n.advance(rd);
    n.campaign(); // single voter: leader at once, appends its empty entry
    rd = n.ready();
    expect(rd.softState?.role).toBe('leader');
    // The leader counts itself only for what it has written: not committed yet.
    expect(rd.hardState).toEqual({ term: 2, vote: '1', commit: 1 });
    expect(rd.entries.map((e) => e.index)).toEqual([2]);
    expect(rd.committedEntries).toEqual([]);
    expect(rd.mustSync).toBe(true);
    s.append(rd.entries);
    s.setHardState(rd.hardState!);
    n.advance(rd); // "durable": now it is its own quorum
    expect(n.status().commit).toBe(2);
    rd = n.ready();
    expect(rd.hardState?.commit).toBe(2);
    expect(rd.committedEntries.map((e) => e.index)).toEqual([2]);
    n.advance(rd);
    expect(n.propose(new Uint8Array([9]))).toEqual({ ok: true, index: 3, term: 2 });
    rd = n.ready();
    expect(rd.committedEntries).toEqual([]);
    s.append(rd.entries);
    n.advance(rd);
    rd = n.ready();
    expect(rd.committedEntries.map((e) => e.index)).toEqual([3]);
    n.advance(rd);
  });

  it('a commit-only change does not require a sync', () => {
    const c = new Cluster(['1', '2', '3']);
    c.campaign('1');
    c.stabilize();
    c.propose('1', 'x');
    c.deliver(); // appends reach the followers
    c.deliver(); // acks reach the leader: it commits and tells the followers
    const toFollower = c.queue.filter((m) => m.to === '2');
    expect(toFollower.length).toBeGreaterThan(0);
    for (const m of toFollower) c.node('2').step(m);
    c.queue = c.queue.filter((m) => m.to !== '2');
    const rd = c.node('2').ready();
    expect(rd.entries).toEqual([]);
    expect(rd.hardState?.commit).toBe(c.node('1').status().commit);
    expect(rd.mustSync).toBe(false);
    c.node('2').advance(rd);
  });

  it('steps between ready() and advance() come out in the next Ready, nothing is lost or repeated', () => {
    const c = new Cluster(['1', '2', '3']);
    c.campaign('1');
    c.stabilize();
    const n = c.node('1');
    const s = c.get('1').storage;
    n.propose(new Uint8Array([1]));
    const rd1 = n.ready();
    n.propose(new Uint8Array([2])); // arrives while rd1 is being persisted
    s.append(rd1.entries);
    if (rd1.hardState) s.setHardState(rd1.hardState);
    n.advance(rd1);
    const rd2 = n.ready();
    expect(rd1.entries.map((e) => e.data[0])).toEqual([1]);
    expect(rd2.entries.map((e) => e.data[0])).toEqual([2]);
    s.append(rd2.entries);
    n.advance(rd2);
    c.queue.push(...rd1.messages, ...rd2.messages);
    c.stabilize();
    expect(c.get('2').applied.map((e) => e.data[0])).toEqual([1, 2]);
  });

  it('rejects a nonsensical config', () => {
    const s = new MemoryStorage();
    expect(() => new RawNode(config(s, { id: '' }))).toThrow();
    expect(() => new RawNode(config(s, { electionTick: 1, heartbeatTick: 1 }))).toThrow();
    expect(() => new RawNode(config(s, { maxInflight: 0 }))).toThrow();
  });

  it('restarts with applied beyond the synced commit index by letting commit catch up', () => {
    const s = MemoryStorage.bootstrap(['1', '2', '3']);
    s.setHardState({ term: 1, vote: '', commit: 1 }); // commit 3 was never synced
    const n = new RawNode(config(s, { applied: 3 }));
    expect(n.status().commit).toBe(3);
    expect(n.status().conf.voters).toEqual(['1', '2', '3']); // replayed from the log up to applied
    expect(() => new RawNode(config(MemoryStorage.bootstrap(['1']), { applied: 5 }))).toThrow(
      /beyond the last log index/,
    );
  });
});

describe('early sends (RaftConfig.earlyMessages)', () => {
  /** A leader (1) of a 3-node cluster with everything settled. */
  function settled(): Cluster {
    const c = new Cluster(['1', '2', '3'], { earlyMessages: true });
    c.campaign('1');
    c.stabilize();
    expect(c.leader()).toBe('1');
    return c;
  }

  it('a leader hands its appends out as early messages; a follower ack is never early', () => {
    const c = settled();
    const n = c.node('1');
    n.propose(new Uint8Array([7]));
    const rd = n.ready();
    expect(rd.entries.map((e) => e.data[0])).toEqual([7]);
    expect(rd.earlyMessages?.map((m) => `${m.type}>${m.to}`).sort()).toEqual(['app>2', 'app>3']);
    expect(rd.messages).toEqual([]);
    // Follower 2 gets the append: its ack waits for its own write.
    c.node('2').step(rd.earlyMessages!.find((m) => m.to === '2')!);
    const frd = c.node('2').ready();
    expect(frd.earlyMessages ?? []).toEqual([]);
    expect(frd.messages.map((m) => m.type)).toEqual(['appResp']);
    c.get('2').storage.append(frd.entries);
    c.node('2').advance(frd);
    c.get('1').storage.append(rd.entries);
    n.advance(rd);
  });

  it('the leader does not count an entry it has not written: leader + one follower is no quorum until advance()', () => {
    const c = settled();
    const n = c.node('1');
    const before = n.status().commit;
    n.propose(new Uint8Array([7]));
    const rd = n.ready(); // the leader's write of entry `before + 1` is in flight
    const idx = rd.entries[0]!.index;
    expect(n.status().progress['1']!.match).toBe(idx - 1);
    // Follower 2 persists and acks before the leader's write finished.
    c.node('2').step(rd.earlyMessages!.find((m) => m.to === '2')!);
    const frd = c.node('2').ready();
    c.get('2').storage.append(frd.entries);
    c.node('2').advance(frd);
    for (const m of frd.messages) n.step(m);
    expect(n.status().progress['2']!.match).toBe(idx);
    expect(n.status().commit).toBe(before); // 1 (not durable) + 2 must not commit
    // Now the leader's own write is durable: 1 + 2 are a majority.
    c.get('1').storage.append(rd.entries);
    n.advance(rd);
    expect(n.status().progress['1']!.match).toBe(idx);
    expect(n.status().commit).toBe(idx);
    const next = n.ready();
    expect(next.committedEntries.map((e) => e.index)).toEqual([idx]);
    n.advance(next);
    // Once applied, the new commit index goes to the followers in appends, which may be early too.
    const after = n.ready();
    expect(
      after
        .earlyMessages!.filter((m) => m.type === 'app' && m.commit === idx)
        .map((m) => m.to)
        .sort(),
    ).toEqual(['2', '3']);
    n.advance(after);
  });

  it('two followers are a quorum without the leader; applying still waits for the leader write', () => {
    const c = settled();
    const n = c.node('1');
    const before = n.status().commit;
    n.propose(new Uint8Array([7]));
    const rd = n.ready();
    const idx = rd.entries[0]!.index;
    for (const f of ['2', '3']) {
      c.node(f).step(rd.earlyMessages!.find((m) => m.to === f)!);
      const frd = c.node(f).ready();
      c.get(f).storage.append(frd.entries);
      c.node(f).advance(frd);
      for (const m of frd.messages) n.step(m);
    }
    expect(n.status().commit).toBe(idx); // a majority of durable copies: 2 and 3
    expect(n.hasReady()).toBe(false); // ...but nothing comes out before rd is advanced
    expect(before).toBe(idx - 1);
    c.get('1').storage.append(rd.entries);
    n.advance(rd);
    const next = n.ready();
    expect(next.committedEntries.map((e) => e.index)).toEqual([idx]);
    n.advance(next);
  });

  it('a Ready that changes the term or vote has no early messages (votes and their terms wait for the write)', () => {
    const c = new Cluster(['1', '2', '3'], { earlyMessages: true });
    const n = c.node('1');
    n.campaign();
    const rd = n.ready();
    expect(rd.hardState?.vote).toBe('1');
    expect(rd.earlyMessages).toEqual([]);
    expect(rd.messages.map((m) => m.type)).toEqual(['vote', 'vote']);
    c.get('1').storage.setHardState(rd.hardState!);
    n.advance(rd);
    // Voters answer only after their write too.
    c.node('2').step(rd.messages.find((m) => m.to === '2')!);
    const vrd = c.node('2').ready();
    expect(vrd.earlyMessages).toEqual([]);
    expect(vrd.messages.map((m) => m.type)).toEqual(['voteResp']);
    c.get('2').storage.setHardState(vrd.hardState!);
    c.node('2').advance(vrd);
    // The new leader's first appends (its term is durable since the campaign) may be early.
    n.step(vrd.messages[0]!);
    const lrd = n.ready();
    expect(lrd.softState?.role).toBe('leader');
    expect(lrd.earlyMessages!.map((m) => m.type)).toEqual(['app', 'app']);
    c.get('1').storage.append(lrd.entries);
    n.advance(lrd);
  });

  it('a single voter that elects itself does not send early in that Ready (its new term is not durable yet)', () => {
    const c = new Cluster(['1'], { earlyMessages: true });
    c.node('1').campaign();
    const rd = c.node('1').ready();
    expect(rd.softState?.role).toBe('leader');
    expect(rd.earlyMessages).toEqual([]);
    c.node('1').advance(rd);
  });

  it('without the option every message is in messages and earlyMessages is absent', () => {
    const c = new Cluster(['1', '2', '3']);
    c.campaign('1');
    c.stabilize();
    c.node('1').propose(new Uint8Array([1]));
    const rd = c.node('1').ready();
    expect(rd.earlyMessages).toBeUndefined();
    expect(rd.messages.map((m) => m.type)).toEqual(['app', 'app']);
    c.node('1').advance(rd);
  });

  it('a cluster with early sends replicates and applies the same as without', () => {
    for (const early of [false, true]) {
      const c = new Cluster(['1', '2', '3'], { earlyMessages: early });
      c.campaign('1');
      c.stabilize();
      for (let i = 0; i < 20; i++) c.propose('1', `v${i}`);
      c.stabilize();
      for (const id of ['1', '2', '3'])
        expect(c.get(id).applied.map((e) => text(e))).toEqual(Array.from({ length: 20 }, (_, i) => `v${i}`));
    }
  });
});

describe('coalescing', () => {
  it('proposals of one turn leave as one append per follower', () => {
    const c = new Cluster(['1', '2', '3']);
    c.campaign('1');
    c.stabilize();
    const n = c.node('1');
    for (let i = 0; i < 5; i++) expect(n.propose(new Uint8Array([i])).ok).toBe(true);
    const rd = n.ready();
    expect(rd.entries.length).toBe(5);
    const apps = rd.messages.filter((m) => m.type === 'app');
    expect(apps.map((m) => m.to).sort()).toEqual(['2', '3']);
    for (const m of apps) expect(m.entries.map((e) => e.data[0])).toEqual([0, 1, 2, 3, 4]);
    c.get('1').storage.append(rd.entries);
    n.advance(rd);
    c.queue.push(...rd.messages);
    c.stabilize();
    for (const id of ['2', '3']) expect(c.get(id).applied.map((e) => e.data[0])).toEqual([0, 1, 2, 3, 4]);
  });

  it('a commit-only append waits for the apply and is saved when the answered callers propose again', () => {
    const c = new Cluster(['1', '2', '3']);
    c.campaign('1');
    c.stabilize();
    const n = c.node('1');
    c.propose('1', 'x');
    const idx = n.status().lastIndex;
    c.deliver(); // appends reach 2 and 3
    const acks = c.queue.filter((m) => m.type === 'appResp');
    c.queue = [];
    for (const m of acks) n.step(m);
    let rd = n.ready(); // hands out the committed entry; nothing for the followers yet
    expect(rd.committedEntries.map((e) => e.index)).toEqual([idx]);
    expect(rd.messages.filter((m) => m.type === 'app')).toEqual([]);
    expect(n.propose(new Uint8Array([1])).ok).toBe(true); // a caller answered by this apply proposes again
    n.advance(rd);
    rd = n.ready();
    const apps = rd.messages.filter((m) => m.type === 'app');
    expect(apps.length).toBe(2); // one per follower: the new entry, carrying the new commit index
    for (const m of apps) {
      expect(m.entries.length).toBe(1);
      expect(m.commit).toBe(idx);
    }
    c.get('1').storage.append(rd.entries);
    n.advance(rd);
  });

  it('acks that move the commit index in one turn send each follower the new commit once', () => {
    const c = new Cluster(['1', '2', '3']);
    c.campaign('1');
    c.stabilize();
    c.propose('1', 'x');
    const idx = c.node('1').status().lastIndex;
    c.deliver(); // appends reach 2 and 3, their acks are queued
    const acks = c.queue.filter((m) => m.type === 'appResp');
    expect(acks.length).toBe(2);
    c.queue = [];
    for (const m of acks) c.node('1').step(m);
    expect(c.node('1').status().commit).toBe(idx);
    const out = c.process('1');
    const commits = out
      .filter((m) => m.type === 'app' && m.commit === idx)
      .map((m) => m.to)
      .sort();
    expect(commits).toEqual(['2', '3']);
  });
});
