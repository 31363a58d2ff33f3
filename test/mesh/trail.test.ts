// The ring of placement decisions (dispatcher-trail.ts): bounded, the latest per
// task, a home attempt's number filled in when it is sent, and a scoring budget.
import { describe, expect, it } from 'vitest';
import { EXPLAIN_PER_SECOND, Trail, type Decision } from '../../src/mesh/dispatcher-trail.js';
import type { WorkItem } from '../../src/mesh/types.js';
import { explanationOf, type Explanation, type ScoredCandidate, type ScoreRule } from '../../src/policies/index.js';

const decision = (taskId: string, attempt = 1, chosen = 'a'): Decision => ({
  taskId,
  attempt,
  kind: 'k',
  atMs: 0,
  policy: 'p',
  action: 'agent',
  chosen,
  explanation: undefined,
  note: '',
});

describe('Trail', () => {
  it('keeps at most its capacity, and the latest decision per task', () => {
    const t = new Trail(4);
    for (let i = 0; i < 10; i++) t.record(decision(`t${i}`));
    expect(t.size).toBe(4);
    expect(t.latest('t5')).toBeUndefined();
    expect(t.latest('t9')?.taskId).toBe('t9');
    t.record(decision('t9', 2, 'b'));
    expect(t.latest('t9')).toMatchObject({ attempt: 2, chosen: 'b' });
    // The older slot of t9 is overwritten later without dropping the newer one.
    for (let i = 0; i < 3; i++) t.record(decision(`u${i}`));
    expect(t.latest('t9')).toMatchObject({ attempt: 2 });
  });

  it("fills in a home attempt's number when it is sent", () => {
    const t = new Trail(4);
    t.record(decision('h', 0));
    t.sent({ taskId: 'h', attempt: 3, origin: { type: 'home' } } as WorkItem);
    expect(t.latest('h')?.attempt).toBe(3);
    t.sent({ taskId: 'h', attempt: 4, origin: { type: 'home' } } as WorkItem);
    expect(t.latest('h')?.attempt).toBe(3);
  });

  it('scores at most EXPLAIN_PER_SECOND decisions a second', () => {
    const t = new Trail(4);
    let n = 0;
    while (t.mayScore(1000)) n++;
    expect(n).toBe(EXPLAIN_PER_SECOND);
    const msPerToken = 1000 / EXPLAIN_PER_SECOND;
    expect(t.mayScore(1000 + msPerToken)).toBe(true);
    expect(t.mayScore(1000 + msPerToken)).toBe(false);
    expect(t.mayScore(1000 + 3 * msPerToken)).toBe(true); // two more tokens
    expect(t.mayScore(1000 + 3 * msPerToken)).toBe(true);
    expect(t.mayScore(1000 + 3 * msPerToken)).toBe(false);
  });
});

describe('Trail: explanations kept as figures', () => {
  const rule: ScoreRule = { score: 'expected delay, ms', rule: 'lowest score; ties at random', better: 'lower' };
  const listed: ScoredCandidate[] = [
    { id: 'a', score: 1.5, eligible: true, whyNot: '', credits: 3 },
    { id: 'b', score: 2.25, eligible: true, whyNot: '', credits: 0.5 },
    { id: 'c', score: NaN, eligible: false, whyNot: 'full', credits: 0 },
    { id: 'd', score: -0, eligible: false, whyNot: 'draining', credits: 0 },
  ];

  it('answers with the explanation recorded: rule, figures, candidates and why', () => {
    const t = new Trail(2);
    const e = explanationOf(rule, 'a', listed, 9, 2);
    t.record({ ...decision('x', 1, 'a'), explanation: e });
    const got = t.latest('x')!.explanation!;
    expect(JSON.parse(JSON.stringify(got))).toEqual(JSON.parse(JSON.stringify(e)));
    expect(got.candidates).toEqual(listed);
    expect(Object.is(got.candidates[3]!.score, -0)).toBe(true);
    expect(got.why).toBe('lowest expected delay, ms: 1.5 among 2 eligible; next b at 2.25');
    // A later decision in another slot leaves it as it was; one in its slot replaces it.
    t.record({ ...decision('y', 1, 'b'), explanation: explanationOf(rule, 'b', listed.slice(1, 2), 1, 1) });
    expect(t.latest('x')!.explanation!.candidates).toEqual(listed);
    t.record(decision('z'));
    expect(t.latest('x')).toBeUndefined();
    expect(t.latest('z')!.explanation).toBeUndefined();
    expect(t.latest('y')!.explanation!.candidates.map((c) => c.id)).toEqual(['b']);
  });

  it('keeps an explanation made elsewhere as it is', () => {
    const t = new Trail(2);
    const e: Explanation = { score: 's', rule: 'r', why: 'w', candidates: listed, total: 4, eligible: 2 };
    t.record({ ...decision('x'), explanation: e });
    expect(t.latest('x')!.explanation).toBe(e);
  });
});
