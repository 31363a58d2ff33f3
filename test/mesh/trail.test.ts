// The ring of placement decisions (dispatcher-trail.ts): bounded, the latest per
// task, a home attempt's number filled in when it is sent, and a scoring budget.
import { describe, expect, it } from 'vitest';
import { EXPLAIN_PER_SECOND, Trail, type Decision } from '../../src/mesh/dispatcher-trail.js';
import type { WorkItem } from '../../src/mesh/types.js';

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
