import { describe, expect, it } from 'vitest';
import { committedIndex, majority, quorumActive, voteResult } from '../../../src/raft/quorum/majority.js';

describe('majority', () => {
  it.each([
    [1, 1],
    [2, 2],
    [3, 2],
    [4, 3],
    [5, 3],
    [6, 4],
    [7, 4],
  ])('majority(%i) = %i', (n, q) => expect(majority(n)).toBe(q));
});

describe('committedIndex', () => {
  const table: Array<[string, Record<string, number>, number]> = [
    ['empty config commits nothing', {}, 0],
    ['single voter', { a: 7 }, 7],
    ['two voters need both', { a: 7, b: 3 }, 3],
    ['three voters: median', { a: 9, b: 5, c: 1 }, 5],
    ['three voters, two equal', { a: 4, b: 4, c: 9 }, 4],
    ['four voters need three', { a: 9, b: 8, c: 2, d: 1 }, 2],
    ['five voters: third highest', { a: 10, b: 1, c: 7, d: 3, e: 8 }, 7],
    ['all zero', { a: 0, b: 0, c: 0 }, 0],
  ];
  it.each(table)('%s', (_name, matches, want) => {
    const voters = Object.keys(matches);
    expect(committedIndex(voters, (id) => matches[id] ?? 0)).toBe(want);
  });
  it('unknown voters count as 0', () => {
    expect(committedIndex(['a', 'b', 'c'], (id) => (id === 'a' ? 5 : 0))).toBe(0);
  });
});

describe('voteResult', () => {
  const table: Array<[string, string[], Record<string, boolean>, string]> = [
    ['empty config never wins', [], {}, 'lost'],
    ['self vote in single node wins', ['a'], { a: true }, 'won'],
    ['3: one yes pending', ['a', 'b', 'c'], { a: true }, 'pending'],
    ['3: two yes won', ['a', 'b', 'c'], { a: true, c: true }, 'won'],
    ['3: two no lost', ['a', 'b', 'c'], { a: true, b: false, c: false }, 'lost'],
    ['3: one yes one no pending', ['a', 'b', 'c'], { a: true, b: false }, 'pending'],
    ['4: two yes pending', ['a', 'b', 'c', 'd'], { a: true, b: true }, 'pending'],
    ['4: two no lost', ['a', 'b', 'c', 'd'], { a: true, c: false, d: false }, 'lost'],
    ['5: non-voter votes ignored', ['a', 'b', 'c', 'd', 'e'], { a: true, x: true, y: true }, 'pending'],
  ];
  it.each(table)('%s', (_name, voters, votes, want) => {
    expect(voteResult(voters, new Map(Object.entries(votes)))).toBe(want);
  });
});

describe('quorumActive', () => {
  it('needs a majority of voters', () => {
    expect(quorumActive(['a', 'b', 'c'], (id) => id === 'a')).toBe(false);
    expect(quorumActive(['a', 'b', 'c'], (id) => id !== 'c')).toBe(true);
    expect(quorumActive([], () => true)).toBe(false);
  });
});
