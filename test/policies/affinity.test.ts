// Affinity at the tiers above the nodes (src/policies/affinity.ts): a child
// cell's summary describes per kind the label sets its agents offer, and every
// policy's picker sends a task with affinity only to a child where a matching
// agent may be, within the matching agents' free slots; a kind a child does not
// describe may match anything. Tasks without affinity are placed as before.
import { describe, expect, it } from 'vitest';
import { SPILL_NO_AFFINITY, type KindLabels, type Label } from '../../src/policies/index.js';
import { cand, picker, tally, task } from './helpers.js';

const gpu = (value: string): Label => ({ key: 'gpu', value });
const H100 = [gpu('h100')];

/** A child whose summary says: `groups` of kind a, as [labels, free, total]. */
const child = (id: string, free: number, groups: [Label[], number, number][], unknownKeys: string[] = []) => {
  const kl: KindLabels = { groups: groups.map(([labels, f, total]) => ({ labels, free: f, total })), unknownKeys };
  return cand(id, { slots: { a: [free, 20] }, kindLabels: new Map([['a', kl]]) });
};

const POLICIES = ['global-geo', 'region-wrr', 'zone-least-conn', 'least-loaded', 'p2c', 'round-robin', 'random'];

describe('affinity above the nodes: children filtered by their label sets', () => {
  for (const policy of POLICIES) {
    it(`${policy}: only the child with a matching agent gets gpu=h100, within its matching free slots`, () => {
      const cands = [
        child('/eu', 10, [[[], 10, 10]]),
        child('/us', 10, [
          [[], 7, 8],
          [H100, 3, 4],
        ]),
        child('/ap', 10, [[[gpu('t4')], 10, 10]]),
      ];
      const p = picker(policy, cands);
      // Three matching slots free at /us: three go there, the fourth waits (a match exists, it is busy).
      expect(tally(p, 3, task('a', { affinity: H100 }))).toEqual({ '/us': 3 });
      expect(p.pick(task('a', { affinity: H100 })).type).toBe('queue');
      // Tasks without affinity still use every child's credits.
      expect(Object.keys(tally(p, 20)).sort()).toEqual(['/ap', '/eu', '/us']);
    });
  }

  it('no child may match: SPILL_NO_AFFINITY; excluded from the only one that may: an exclusion spill', () => {
    const cands = [child('/eu', 10, [[[], 10, 10]]), child('/us', 10, [[H100, 2, 2]])];
    expect(picker('region-wrr', cands).pick(task('a', { affinity: [gpu('a100')] }))).toBe(SPILL_NO_AFFINITY);
    const excluded = picker('region-wrr', cands).pick(task('a', { affinity: H100, exclude: ['/us'] }));
    expect(excluded.type).toBe('spillUp');
    expect(excluded).not.toBe(SPILL_NO_AFFINITY);
  });

  it('a task with a context key or of several slots that nothing matches also answers SPILL_NO_AFFINITY', () => {
    const cands = [child('/eu', 10, [[[], 10, 10]]), child('/us', 10, [[H100, 2, 2]])];
    const a100 = [gpu('a100')];
    for (const extra of [{ contextKey: 'k', contextHard: true }, { contextKey: 'k' }, { slots: 2 }])
      expect(picker('region-wrr', cands).pick(task('a', { affinity: a100, ...extra })), JSON.stringify(extra)).toBe(
        SPILL_NO_AFFINITY,
      );
  });

  it('a kind a child does not describe (a peer that predates the fields, past the bounds) may match anything', () => {
    const old = cand('/old', { slots: { a: [5, 5] }, kindLabels: new Map() });
    const p = picker('zone-least-conn', [child('/eu', 10, [[[], 10, 10]]), old]);
    expect(tally(p, 5, task('a', { affinity: [gpu('a100')] }))).toEqual({ '/old': 5 });
    // Its kind credit still bounds it.
    expect(p.pick(task('a', { affinity: [gpu('a100')] })).type).toBe('queue');
  });

  it('a label on a key left out of the groups (unknown) may match any group of the child', () => {
    const c = child('/eu', 10, [[[gpu('h100')], 4, 4]], ['host']);
    const p = picker('global-geo', [c]);
    expect(p.pick(task('a', { affinity: [...H100, { key: 'host', value: 'n7' }] }))).toEqual({
      type: 'route',
      candidate: '/eu',
    });
    expect(p.pick(task('a', { affinity: [gpu('t4'), { key: 'host', value: 'n7' }] }))).toBe(SPILL_NO_AFFINITY);
  });

  it('explain lists a child without a match as "affinity", and one whose matching agents are busy as such', () => {
    const cands = [
      child('/eu', 10, [[[], 10, 10]]),
      child('/us', 10, [[H100, 1, 1]]),
      child('/ap', 10, [[H100, 0, 1]]),
    ];
    const p = picker('region-wrr', cands);
    const t = task('a', { affinity: H100 });
    const r = p.pick(t);
    expect(r).toEqual({ type: 'route', candidate: '/us' });
    const e = p.explain(t, '/us', 8);
    const why = Object.fromEntries(e.candidates.map((c) => [c.id, c.whyNot]));
    expect(why).toEqual({ '/us': '', '/eu': 'affinity', '/ap': 'affinity: matching agents full' });
    expect(e.eligible).toBe(1);
  });

  it('at a node, agents are matched by their own labels as before', () => {
    const p = picker('node-score', [cand('a1', { labels: { gpu: 'h100' } }), cand('a2')]);
    expect(tally(p, 4, task('a', { affinity: H100 }))).toEqual({ a1: 4 });
    expect(picker('node-score', [cand('a2')]).pick(task('a', { affinity: H100 }))).toBe(SPILL_NO_AFFINITY);
  });
});
