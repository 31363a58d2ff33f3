import { describe, expect, it } from 'vitest';
import { Inflights } from '../../../src/raft/tracker/inflights.js';
import { Progress } from '../../../src/raft/tracker/progress.js';
import { ProgressTracker } from '../../../src/raft/tracker/tracker.js';

describe('Inflights', () => {
  it('bounds the window and frees by ack', () => {
    const w = new Inflights(3);
    w.add(2);
    w.add(5);
    w.add(9);
    expect(w.full()).toBe(true);
    expect(() => w.add(10)).toThrow(/overflow/);
    w.freeLE(5);
    expect(w.count).toBe(1);
    expect(w.full()).toBe(false);
    w.freeLE(100);
    expect(w.count).toBe(0);
  });
  it('rejects out-of-order adds', () => {
    const w = new Inflights(3);
    w.add(4);
    expect(() => w.add(4)).toThrow(/not after/);
  });
  it('rejects a zero capacity', () => {
    expect(() => new Inflights(0)).toThrow();
  });
});

describe('Progress', () => {
  it('maybeUpdate moves match and next, ignores stale acks', () => {
    const p = new Progress(5, 4);
    expect(p.maybeUpdate(6)).toBe(true);
    expect([p.match, p.next]).toEqual([6, 7]);
    expect(p.maybeUpdate(3)).toBe(false);
    expect([p.match, p.next]).toEqual([6, 7]);
  });

  const decr: Array<[string, 'probe' | 'replicate', number, number, number, number, boolean, number]> = [
    // name, state, match, next, rejected, hint, accepted, next after
    ['replicate: stale reject at match', 'replicate', 5, 10, 5, 5, false, 10],
    ['replicate: reject above match falls back to match+1', 'replicate', 5, 10, 9, 9, true, 6],
    ['probe: stale reject of an old probe', 'probe', 0, 10, 5, 5, false, 10],
    ['probe: hint lowers next', 'probe', 0, 10, 9, 3, true, 4],
    ['probe: hint above rejected is capped', 'probe', 0, 10, 9, 20, true, 9],
    ['probe: never below match+1', 'probe', 4, 10, 9, 1, true, 5],
  ];
  it.each(decr)('maybeDecrTo %s', (_n, state, match, next, rejected, hint, ok, after) => {
    const p = new Progress(next, 4);
    p.match = match;
    if (state === 'replicate') {
      p.becomeReplicate();
      p.next = next;
    }
    expect(p.maybeDecrTo(rejected, hint)).toBe(ok);
    expect(p.next).toBe(after);
  });

  it('probe pauses after one send until answered', () => {
    const p = new Progress(3, 4);
    expect(p.isPaused()).toBe(false);
    p.sentEntries(5, 2);
    expect(p.isPaused()).toBe(true);
    expect(p.next).toBe(3); // probe does not advance optimistically
    p.maybeDecrTo(2, 1);
    expect(p.isPaused()).toBe(false);
  });

  it('replicate pipelines until the inflight window is full', () => {
    const p = new Progress(1, 2);
    p.becomeReplicate();
    p.sentEntries(3, 3);
    expect(p.next).toBe(4);
    expect(p.isPaused()).toBe(false);
    p.sentEntries(5, 2);
    expect(p.isPaused()).toBe(true);
    p.maybeUpdate(3);
    p.inflights.freeLE(3);
    expect(p.isPaused()).toBe(false);
  });

  it('snapshot pauses; probing resumes after the snapshot index', () => {
    const p = new Progress(2, 2);
    p.becomeSnapshot(50);
    expect(p.isPaused()).toBe(true);
    p.becomeProbe();
    expect(p.state).toBe('probe');
    expect(p.next).toBe(51);
  });
});

describe('ProgressTracker', () => {
  it('adds, keeps and removes peers on conf changes', () => {
    const t = new ProgressTracker(4);
    t.applyConf({ voters: ['a', 'b'], learners: ['c'] }, 5);
    expect(t.progress.get('c')?.isLearner).toBe(true);
    t.progress.get('c')!.maybeUpdate(4);
    t.applyConf({ voters: ['a', 'b', 'c'], learners: [] }, 9);
    expect(t.progress.get('c')?.isLearner).toBe(false);
    expect(t.progress.get('c')?.match).toBe(4); // promotion keeps progress
    t.applyConf({ voters: ['a', 'c'], learners: [] }, 9);
    expect(t.progress.has('b')).toBe(false);
    expect(() => t.applyConf({ voters: ['a'], learners: ['a'] }, 1)).toThrow();
  });

  it('learners do not count toward commit or votes', () => {
    const t = new ProgressTracker(4);
    t.applyConf({ voters: ['a', 'b', 'c'], learners: ['d', 'e'] }, 1);
    t.progress.get('a')!.maybeUpdate(9);
    t.progress.get('d')!.maybeUpdate(9);
    t.progress.get('e')!.maybeUpdate(9);
    expect(t.committed()).toBe(0);
    t.recordVote('a', true);
    t.recordVote('d', true);
    t.recordVote('e', true);
    expect(t.tally()).toBe('pending');
    t.recordVote('b', true);
    expect(t.tally()).toBe('won');
  });

  it('a duplicate vote cannot flip the first answer', () => {
    const t = new ProgressTracker(4);
    t.applyConf({ voters: ['a', 'b', 'c'], learners: [] }, 1);
    t.recordVote('b', false);
    t.recordVote('b', true);
    expect(t.votes.get('b')).toBe(false);
  });

  it('quorumActive counts self', () => {
    const t = new ProgressTracker(4);
    t.applyConf({ voters: ['a', 'b', 'c'], learners: [] }, 1);
    t.resetRecentActive('a');
    expect(t.quorumActive('a')).toBe(false);
    t.progress.get('c')!.recentActive = true;
    expect(t.quorumActive('a')).toBe(true);
  });
});
