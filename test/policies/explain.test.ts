// Picker.explain: every policy says how it scored the candidates of a pick and
// why the chosen one won, with the scores as the pick saw them.
import { describe, expect, it } from 'vitest';
import { createPolicy, listPolicies, makeCandidate, seededRandom, type TaskInfo } from '../../src/policies/index.js';

const task: TaskInfo = { kind: 'k', priority: 'normal' };

const agents = () => [
  makeCandidate({ id: 'fast', slots: { k: [2, 2] }, latencyEwmaMs: 20 }),
  makeCandidate({ id: 'slow', slots: { k: [2, 2] }, latencyEwmaMs: 160 }),
  makeCandidate({ id: 'full', slots: { k: [0, 2] }, latencyEwmaMs: 10 }),
  makeCandidate({ id: 'gone', slots: { k: [2, 2] }, draining: true }),
  makeCandidate({ id: 'other', slots: { x: [2, 2] } }),
];

describe('Picker.explain', () => {
  it('node-score: the chosen one first with its expected delay as the pick saw it, the runner-up next, ineligible ones say why', () => {
    const picker = createPolicy('node-score', undefined, { random: seededRandom(1) }).buildPicker(agents(), 0);
    const r = picker.pick(task);
    expect(r).toEqual({ type: 'route', candidate: 'fast' });
    const e = picker.explain(task, 'fast', 8);
    expect(e.score).toBe('expected delay, ms');
    expect(e.candidates.map((c) => c.id)).toEqual(['fast', 'slow', 'full', 'gone']);
    expect(e.candidates[0]).toMatchObject({ eligible: true, score: 20, credits: 2 });
    expect(e.candidates[1]).toMatchObject({ eligible: true, score: 160 });
    expect(e.candidates[2]).toMatchObject({ eligible: false, whyNot: 'full' });
    expect(e.candidates[3]).toMatchObject({ eligible: false, whyNot: 'draining' });
    expect(e).toMatchObject({ total: 4, eligible: 2 });
    expect(e.why).toBe('lowest expected delay, ms: 20 among 2 eligible; next slow at 160');
    // The explanation changed nothing: the next pick sees the credit the first one took.
    expect(picker.explain(task, 'fast', 1).candidates[0]).toMatchObject({ credits: 2 });
    expect(picker.pick(task)).toEqual({ type: 'route', candidate: 'fast' });
    expect(picker.credits('k')).toBe(2);
  });

  it('limit bounds the list; affinity and exclusions are named', () => {
    const cands = [
      makeCandidate({ id: 'a', slots: { k: [1, 1] }, labels: { gpu: 'h100' } }),
      makeCandidate({ id: 'b', slots: { k: [1, 1] } }),
      makeCandidate({ id: 'c', slots: { k: [1, 1] }, labels: { gpu: 'h100' } }),
    ];
    const t: TaskInfo = { kind: 'k', priority: 'normal', affinity: [{ key: 'gpu', value: 'h100' }], exclude: ['c'] };
    const picker = createPolicy('least-loaded', undefined, { random: seededRandom(1) }).buildPicker(cands, 0);
    expect(picker.pick(t)).toEqual({ type: 'route', candidate: 'a' });
    const e = picker.explain(t, 'a', 3);
    expect(e.candidates.map((c) => [c.id, c.whyNot])).toEqual([
      ['a', ''],
      ['b', 'affinity'],
      ['c', 'excluded'],
    ]);
    expect(e.why).toMatch(/only eligible/);
    expect(picker.explain(t, 'a', 1).candidates).toHaveLength(1);
  });

  it('every registered policy explains its picks: the chosen one listed first, a rule and a reason', () => {
    for (const name of listPolicies()) {
      const picker = createPolicy(name, undefined, { random: seededRandom(3) }).buildPicker(agents(), 0);
      for (let i = 0; i < 3; i++) {
        const r = picker.pick(task);
        if (r.type !== 'route') throw new Error(`${name}: ${r.type}`);
        const e = picker.explain(task, r.candidate, 4);
        expect(e.candidates[0]!.id, name).toBe(r.candidate);
        expect(e.candidates[0]!.eligible, name).toBe(true);
        expect(e.rule.length, name).toBeGreaterThan(0);
        expect(e.why.length, name).toBeGreaterThan(0);
      }
    }
  });
});
