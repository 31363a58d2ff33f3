// The invariant checker fed hand-made states: each invariant must flag the
// bad case and accept the good one.
import { describe, expect, it } from 'vitest';
import { InvariantChecker, type LogView } from './invariants.js';

/** A log from "term:data" strings at indexes 1..n, optionally compacted up to `compacted`. */
function log(entries: string[], compacted = 0): LogView {
  const parsed = entries.map((e) => e.split(':') as [string, string]);
  return {
    term: (i) => (i === 0 ? 0 : i < compacted || i > parsed.length ? undefined : Number(parsed[i - 1]![0])),
    fingerprint: (i) => (i <= compacted || i > parsed.length ? undefined : hash(parsed[i - 1]!.join(':'))),
    firstIndex: () => compacted + 1,
    lastIndex: () => parsed.length,
  };
}
const hash = (s: string) => [...s].reduce((h, c) => Math.imul(h ^ c.charCodeAt(0), 16777619) >>> 0, 2166136261);

describe('InvariantChecker', () => {
  it('election safety: two leaders in one term', () => {
    const c = new InvariantChecker();
    c.onRole('a', 'leader', 3, log([]));
    c.onRole('a', 'leader', 3, log([])); // same node again is fine
    c.onRole('b', 'leader', 4, log([]));
    expect(c.violations).toEqual([]);
    c.onRole('c', 'leader', 3, log([]));
    expect(c.violations[0]).toMatch(/election safety/);
  });

  it('log matching: same index and term with different content', () => {
    const c = new InvariantChecker();
    c.onWrite('a', log(['1:x', '1:y']), 1, 2);
    c.onWrite('b', log(['1:x', '1:y']), 1, 2);
    expect(c.violations).toEqual([]);
    c.onWrite('c', log(['1:x', '1:z']), 1, 2);
    expect(c.violations[0]).toMatch(/log matching.*different entry 2\/1/);
  });

  it('log matching: same entry after a different predecessor', () => {
    const c = new InvariantChecker();
    c.onWrite('a', log(['1:x', '2:y', '3:z']), 1, 3);
    c.onWrite('b', log(['1:x', '1:q', '3:z']), 1, 3);
    expect(c.violations.some((v) => /log matching.*3\/3 after term 1/.test(v))).toBe(true);
  });

  it('leader completeness: a new leader lacking a committed entry', () => {
    const c = new InvariantChecker();
    c.onRole('a', 'leader', 2, log(['1:x', '2:y']));
    c.onCommit('a', 2, 2, log(['1:x', '2:y']));
    c.onRole('b', 'leader', 3, log(['1:x', '2:y', '3:']));
    expect(c.violations).toEqual([]);
    c.onRole('c', 'leader', 4, log(['1:x']));
    expect(c.violations[0]).toMatch(/leader completeness: leader c of term 4 lacks committed 2@2/);
  });

  it('leader completeness: a commit observed after a later leader was elected', () => {
    const c = new InvariantChecker();
    c.onRole('b', 'leader', 5, log(['1:x']));
    c.onCommit('a', 3, 2, log(['1:x', '3:y'])); // committed in term 3, b (term 5) lacks it
    expect(c.violations[0]).toMatch(/leader completeness/);
  });

  it('a stale leader of an older term is not required to hold newer commits', () => {
    const c = new InvariantChecker();
    c.onRole('old', 'leader', 2, log(['1:x']));
    c.onCommit('new', 5, 2, log(['1:x', '5:y']));
    expect(c.violations).toEqual([]);
  });

  it('compacted entries are not held against a leader', () => {
    const c = new InvariantChecker();
    c.onCommit('a', 2, 3, log(['1:x', '2:y', '2:z']));
    c.onRole('b', 'leader', 3, log(['1:x', '2:y', '2:z', '3:'], 3));
    expect(c.violations).toEqual([]);
  });

  it('committed entries never change', () => {
    const c = new InvariantChecker();
    c.onCommit('a', 2, 2, log(['1:x', '2:y']));
    c.onCommit('b', 3, 2, log(['1:x', '2:other']));
    expect(c.violations[0]).toMatch(/committed entry changed/);
  });

  it('state-machine safety: different histories applied at an index', () => {
    const c = new InvariantChecker();
    c.onApply('a', 7, 111);
    c.onApply('b', 7, 111);
    expect(c.violations).toEqual([]);
    c.onApply('c', 7, 222);
    expect(c.violations[0]).toMatch(/state-machine safety/);
  });
});
