// The shared eligibility rules of BasePicker, via the simplest policy.

import { describe, expect, it } from 'vitest';
import { cand, picker, tally, task } from './helpers.js';

describe('picker eligibility', () => {
  const cases: Array<{ name: string; cands: ReturnType<typeof cand>[]; t: ReturnType<typeof task>; want: string }> = [
    { name: 'no candidates', cands: [], t: task('a'), want: 'spillUp' },
    { name: 'nobody has the kind', cands: [cand('x', { slots: { b: [1, 1] } })], t: task('a'), want: 'spillUp' },
    { name: 'only a draining one has it', cands: [cand('x', { draining: true })], t: task('a'), want: 'spillUp' },
    { name: 'zero total slots', cands: [cand('x', { slots: { a: [0, 0] } })], t: task('a'), want: 'spillUp' },
    { name: 'all full', cands: [cand('x', { slots: { a: [0, 4] } })], t: task('a'), want: 'queue' },
    { name: 'negative free', cands: [cand('x', { slots: { a: [-3, 4] } })], t: task('a'), want: 'queue' },
    {
      name: 'fractional free floors to 0',
      cands: [cand('x', { slots: { a: [0.9, 4] } })],
      t: task('a'),
      want: 'queue',
    },
    {
      name: 'affinity unmatched',
      cands: [cand('x', { labels: { gpu: 't4' } })],
      t: task('a', { affinity: [{ key: 'gpu', value: 'a100' }] }),
      want: 'spillUp',
    },
    {
      name: 'affinity matched but full',
      cands: [cand('x', { labels: { gpu: 'a100' }, slots: { a: [0, 1] } })],
      t: task('a', { affinity: [{ key: 'gpu', value: 'a100' }] }),
      want: 'queue',
    },
    { name: 'only candidate excluded', cands: [cand('x')], t: task('a', { exclude: ['x'] }), want: 'spillUp' },
    { name: 'empty kind', cands: [cand('x')], t: task(''), want: 'reject' },
  ];
  for (const c of cases) {
    it(c.name, () => {
      expect(picker('random', c.cands).pick(c.t).type).toBe(c.want);
    });
  }

  it('routes around an excluded candidate and an affinity mismatch', () => {
    const cands = [cand('x'), cand('y', { labels: { gpu: 'a100' } }), cand('z', { labels: { gpu: 'a100' } })];
    const t = task('a', { exclude: ['z'], affinity: [{ key: 'gpu', value: 'a100' }] });
    expect(tally(picker('random', cands), 5, t)).toEqual({ y: 5 });
  });

  it('matches a repeated label key against any of its values (aggregated subtree)', () => {
    const c = cand('cell', {
      labels: [
        { key: 'gpu', value: 't4' },
        { key: 'gpu', value: 'a100' },
      ],
    });
    expect(picker('random', [c]).pick(task('a', { affinity: [{ key: 'gpu', value: 'a100' }] }))).toEqual({
      type: 'route',
      candidate: 'cell',
    });
  });

  it('consumes one credit per route, then queues', () => {
    const p = picker('random', [cand('x', { slots: { a: [2, 5] } })]);
    expect(p.credits('a')).toBe(2);
    expect(tally(p, 4)).toEqual({ x: 2, '-': 2 });
    expect(p.credits('a')).toBe(0);
    expect(p.pick(task()).type).toBe('queue');
    p.release('x', 'a');
    expect(p.pick(task())).toEqual({ type: 'route', candidate: 'x' });
  });

  it('clamps free above total to total', () => {
    const p = picker('random', [cand('x', { slots: { a: [9, 3] } })]);
    expect(p.credits('a')).toBe(3);
  });

  it("kinds sharing an agent's slots never overbook it", () => {
    // An agent with 2 slots serving kinds a and b: 2 tasks in total, not 2 per kind.
    const agent = cand('agent', { slots: { a: [2, 2], b: [2, 2] }, sharedSlots: [2, 2] });
    const other = cand('other', { slots: { b: [1, 1] } });
    const p = picker('least-loaded', [agent, other]);
    expect(p.credits('a')).toBe(2);
    expect(p.credits('b')).toBe(3);
    expect(p.pick(task('a'))).toEqual({ type: 'route', candidate: 'agent' });
    expect(p.credits('b')).toBe(2); // the agent's b credit shrank with its pool
    expect(tally(p, 3, task('b'))).toEqual({ agent: 1, other: 1, '-': 1 });
    expect(p.credits('a')).toBe(0);
    expect(p.pick(task('a')).type).toBe('queue');
    p.release('agent', 'b');
    expect([p.credits('a'), p.credits('b')]).toEqual([1, 1]);
    expect(p.pick(task('a'))).toEqual({ type: 'route', candidate: 'agent' });
  });

  it('hasKind ignores draining candidates', () => {
    const p = picker('random', [
      cand('x', { draining: true, slots: { a: [1, 1] } }),
      cand('y', { slots: { b: [0, 1] } }),
    ]);
    expect(p.hasKind('a')).toBe(false);
    expect(p.hasKind('b')).toBe(true);
    expect(p.credits('b')).toBe(0);
  });
});
