// The Ready/advance contract as the runtime relies on it.
import { describe, expect, it } from 'vitest';
import { RawNode } from '../../../src/raft/core/raft.js';
import { MemoryStorage } from '../../../src/raft/core/memory-storage.js';
import { Cluster } from './cluster.js';
import type { RaftConfig } from '../../../src/raft/core/types.js';

function config(storage: MemoryStorage, over: Partial<RaftConfig> = {}): RaftConfig {
  let x = 7;
  return {
    id: '1', storage, electionTick: 10, heartbeatTick: 1, preVote: false, checkQuorum: false,
    maxInflight: 4, maxSizePerMsg: 1024, maxUncommitted: 0, applied: 0,
    random: () => ((x = (x * 48271) % 2147483647) / 2147483647), ...over,
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

  it('a single voter commits its own entries (mustSync: new entries and a term change)', () => {
    const s = MemoryStorage.bootstrap(['1']);
    const n = new RawNode(config(s));
    let rd = n.ready();
    n.applyConfChange({ type: 'addVoter', node: '1', context: '' });
    n.advance(rd);
    n.campaign(); // single voter: leader at once, appends and commits its empty entry
    rd = n.ready();
    expect(rd.softState?.role).toBe('leader');
    expect(rd.hardState).toEqual({ term: 2, vote: '1', commit: 2 });
    expect(rd.entries.map((e) => e.index)).toEqual([2]);
    expect(rd.committedEntries.map((e) => e.index)).toEqual([2]);
    expect(rd.mustSync).toBe(true);
    s.append(rd.entries);
    n.advance(rd);
    expect(n.propose(new Uint8Array([9]))).toEqual({ ok: true, index: 3, term: 2 });
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
    expect(() => new RawNode(config(MemoryStorage.bootstrap(['1']), { applied: 5 }))).toThrow(/beyond the last log index/);
  });
});
