import { describe, expect, it } from 'vitest';
import { MemoryStorage } from '../../../src/raft/core/memory-storage.js';
import { applyToConf, decodeConfChange, encodeConfChange } from '../../../src/raft/core/confchange.js';
import { CompactedError, EntryType, UnavailableError, type Entry } from '../../../src/raft/core/types.js';

const e = (index: number, term: number): Entry => ({
  index,
  term,
  type: EntryType.Normal,
  data: new Uint8Array([index]),
});

describe('MemoryStorage', () => {
  it('appends, truncates a conflicting suffix, and answers term/entries', () => {
    const s = new MemoryStorage();
    s.append([e(1, 1), e(2, 1), e(3, 1)]);
    s.append([e(2, 2)]);
    expect(s.lastIndex()).toBe(2);
    expect(s.term(2)).toBe(2);
    expect(() => s.term(3)).toThrow(UnavailableError);
    expect(s.entries(1, 3).map((x) => x.term)).toEqual([1, 2]);
    expect(() => s.append([e(5, 2)])).toThrow(/missing/);
  });

  it('limits entries by size but returns at least one', () => {
    const s = new MemoryStorage();
    s.append([e(1, 1), e(2, 1), e(3, 1)]);
    expect(s.entries(1, 4, 1)).toHaveLength(1);
    expect(s.entries(1, 4, 34)).toHaveLength(2);
  });

  it('snapshots, compacts only up to the snapshot, and keeps term(firstIndex-1)', () => {
    const s = new MemoryStorage();
    s.append([e(1, 1), e(2, 1), e(3, 2), e(4, 2)]);
    expect(() => s.compact(2)).toThrow(/beyond snapshot/);
    s.createSnapshot(3, { voters: ['a'], learners: [] }, new Uint8Array([7]));
    s.compact(3);
    expect(s.firstIndex()).toBe(4);
    expect(s.term(3)).toBe(2);
    expect(() => s.term(2)).toThrow(CompactedError);
    expect(() => s.entries(3, 5)).toThrow(CompactedError);
    expect(s.initialState().conf.voters).toEqual(['a']);
    s.applySnapshot({ meta: { index: 10, term: 3, conf: { voters: ['b'], learners: [] } }, data: new Uint8Array() });
    expect([s.firstIndex(), s.lastIndex(), s.term(10)]).toEqual([11, 10, 3]);
  });

  it('bootstrap writes committed addVoter entries', () => {
    const s = MemoryStorage.bootstrap(['a', 'b']);
    expect(s.hardState()).toEqual({ term: 1, vote: '', commit: 2 });
    expect(s.entries(1, 3).map((x) => decodeConfChange(x.data).node)).toEqual(['a', 'b']);
  });
});

describe('ConfChange', () => {
  it('round-trips and rejects garbage', () => {
    const cc = { type: 'addLearner' as const, node: 'n4', context: 'host:1' };
    expect(decodeConfChange(encodeConfChange(cc))).toEqual(cc);
    expect(() => decodeConfChange(new TextEncoder().encode('{"type":"x","node":"a"}'))).toThrow(/unknown type/);
    expect(() => decodeConfChange(new Uint8Array([0xff]))).toThrow(/bad conf change/);
  });

  const table: Array<
    [string, string[], string[], 'addVoter' | 'addLearner' | 'removeNode', string, string[], string[]]
  > = [
    ['add voter', ['a'], [], 'addVoter', 'b', ['a', 'b'], []],
    ['add learner', ['a'], [], 'addLearner', 'b', ['a'], ['b']],
    ['promote learner', ['a'], ['b'], 'addVoter', 'b', ['a', 'b'], []],
    ['demote voter', ['a', 'b'], [], 'addLearner', 'b', ['a'], ['b']],
    ['remove voter', ['a', 'b'], [], 'removeNode', 'b', ['a'], []],
    ['remove learner', ['a'], ['b'], 'removeNode', 'b', ['a'], []],
    ['remove unknown is a no-op', ['a'], [], 'removeNode', 'z', ['a'], []],
    ['removing the last voter is refused', ['a'], [], 'removeNode', 'a', ['a'], []],
    ['demoting the last voter is refused', ['a'], [], 'addLearner', 'a', ['a'], []],
  ];
  it.each(table)('%s', (_n, voters, learners, type, node, wantV, wantL) => {
    expect(applyToConf({ voters, learners }, { type, node, context: '' })).toEqual({ voters: wantV, learners: wantL });
  });
});
