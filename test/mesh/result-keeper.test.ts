// ResultKeeper: what a child re-sends to its parent after a break (results
// held while unlinked, and those written in the last window), bounded, oldest
// dropped first.
import { describe, expect, it } from 'vitest';
import { TaskResult } from '../../src/gen/meshlb/v1/task.js';
import { ResultKeeper } from '../../src/mesh/result-keeper.js';

const r = (i: number): TaskResult => TaskResult.fromPartial({ taskId: `t${i}`, attempt: 1 });
const ids = (rs: readonly TaskResult[]) => rs.map((x) => x.taskId);

describe('ResultKeeper', () => {
  it('re-sends recent results only after a break, and only those inside the window', () => {
    const k = new ResultKeeper(1000);
    k.wrote(r(1), 0);
    k.wrote(r(2), 500);
    k.wrote(r(3), 1200);
    // Welcomed with no break in between: nothing to write again.
    expect(k.takeForResend(1300)).toEqual({ recent: [], held: [] });
    k.wrote(r(4), 1600);
    k.wrote(r(5), 2100);
    k.broken();
    k.hold(r(6));
    const again = k.takeForResend(2500);
    expect(ids(again.recent)).toEqual(['t4', 't5']);
    expect(ids(again.held)).toEqual(['t6']);
    // Taken once: a second welcome has nothing.
    expect(k.takeForResend(2600)).toEqual({ recent: [], held: [] });
  });

  it('keeps at most its capacity, dropping the oldest', () => {
    const k = new ResultKeeper(10_000, 3);
    for (let i = 1; i <= 5; i++) k.hold(r(i));
    for (let i = 1; i <= 5; i++) k.wrote(r(10 + i), i);
    k.broken();
    const again = k.takeForResend(10);
    expect(ids(again.held)).toEqual(['t3', 't4', 't5']);
    expect(ids(again.recent)).toEqual(['t13', 't14', 't15']);
  });

  it('forgets everything on clear (this replica stopped leading)', () => {
    const k = new ResultKeeper(1000);
    k.hold(r(1));
    k.wrote(r(2), 0);
    k.broken();
    k.clear();
    expect(k.takeForResend(1)).toEqual({ recent: [], held: [] });
  });
});
