// A child link's credits while home attempts routed to it wait for their start
// to commit (ChildLink.promise), and its count of dispatches sent past the
// credits (pastCredit, pastGuaranteed: what the mesh simulator's `credits`
// check holds to preemption's overdraft and guaranteed attempts). Before the
// promise, a picker rebuilt while a logged start committed (a summary came, the
// 250 ms refresh) offered the same credit again: the simulator's `credits`
// check found the child sent past its credits on 22 of 30 seeds.
import { describe, expect, it } from 'vitest';
import { TaskSpec } from '../../src/gen/meshlb/v1/task.js';
import type { Summary } from '../../src/gen/meshlb/v1/link.js';
import { DEFAULT_BATCHER_OPTIONS } from '../../src/mesh/batcher.js';
import { ChildLink } from '../../src/mesh/child-link.js';
import { realScheduler } from '../../src/mesh/scheduler.js';
import { FROM_HOME, FROM_PARENT, makeItem, type WorkItem } from '../../src/mesh/types.js';

const link = (): ChildLink =>
  new ChildLink('/c', { write: () => true } as never, DEFAULT_BATCHER_OPTIONS, realScheduler, () => {});

const summary = (free: number, seq: number): Summary =>
  ({
    cell: '/c',
    seq,
    kinds: [{ kind: 'k', freeSlots: free, totalSlots: 10, healthyAgents: 1, prefetchSlots: 0, queued: 0 }],
    queue: [],
    healthyAgents: 1,
    draining: false,
  }) as unknown as Summary;

let n = 0;
function item(home: boolean, guaranteed = false): WorkItem {
  const id = `t${++n}`;
  const spec = TaskSpec.fromPartial({ kind: 'k' });
  const it = makeItem(
    id,
    home ? 0 : 1,
    '/',
    spec,
    home ? FROM_HOME : FROM_PARENT,
    undefined,
    `${id}#1`,
    1000,
    undefined,
    0,
  );
  it.guaranteed = guaranteed;
  it.via = { type: 'child', cell: '/c' };
  return it;
}

describe('child link: credits promised to home attempts waiting for their start', () => {
  it('a promise takes the credit until the start is sent or decided otherwise', () => {
    const l = link();
    l.applySummary(summary(3, 1), 0);
    const a = item(true);
    const b = item(true);
    l.promise(a);
    l.promise(b);
    l.promise(b); // once per item
    expect(l.credits('k')).toBe(1); // a picker rebuilt now offers only the third slot
    l.unpromise(b); // refused by the ledger, or this replica stopped leading
    expect(l.credits('k')).toBe(2);
    l.dispatch(a); // committed and sent: from promised to unacked
    expect(l.credits('k')).toBe(2);
    expect(l.unacked.get('k')).toBe(1);
    l.unpromise(a); // a decided start unpromised twice changes nothing
    expect(l.credits('k')).toBe(2);
  });

  it('a start promised within the credits is not counted past them when a summary meanwhile lowered them', () => {
    const l = link();
    l.applySummary(summary(1, 1), 0);
    const a = item(true);
    l.promise(a);
    l.applySummary(summary(0, 2), 0); // the child filled up before a's start committed
    l.dispatch(a);
    expect(l.pastCredit.size).toBe(0);
  });

  it('counts dispatches past the credits, guaranteed ones apart, until the next summary', () => {
    const l = link();
    l.applySummary(summary(1, 1), 0);
    l.dispatch(item(false));
    expect(l.pastCredit.size).toBe(0);
    l.dispatch(item(false, true));
    l.dispatch(item(false));
    expect(l.pastCredit.get('k')).toBe(2);
    expect(l.pastGuaranteed.get('k')).toBe(1);
    const h = item(true, true);
    l.promise(h); // judged when promised: no credit left, guaranteed
    expect(l.pastCredit.get('k')).toBe(3);
    expect(l.pastGuaranteed.get('k')).toBe(2);
    l.applySummary(summary(0, 2), 0);
    expect(l.pastCredit.size).toBe(0);
    expect(l.pastGuaranteed.size).toBe(0);
    l.dispatch(h); // judged already
    expect(l.pastCredit.size).toBe(0);
  });
});
