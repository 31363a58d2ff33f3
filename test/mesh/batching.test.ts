// Units: the timer wheel, the outgoing batcher, and the child-link credit rule.
import { describe, expect, it } from 'vitest';
import { StreamBatcher, type WritableStream } from '../../src/mesh/batcher.js';
import { TimerWheel } from '../../src/mesh/wheel.js';
import { ChildLink } from '../../src/mesh/child-link.js';
import { DEFAULT_BATCHER_OPTIONS } from '../../src/mesh/batcher.js';
import { realScheduler } from '../../src/mesh/scheduler.js';
import { VirtualScheduler } from '../../src/mesh/virtual-scheduler.js';

const turn = () => new Promise<void>((r) => setImmediate(r));

class FakeStream<M> implements WritableStream<M> {
  readonly written: M[] = [];
  readonly pending: (() => void)[] = [];
  autoComplete = true;
  write(msg: M, cb: () => void): boolean {
    this.written.push(msg);
    if (this.autoComplete) cb();
    else this.pending.push(cb);
    return true;
  }
}

describe('TimerWheel', () => {
  it('fires entries in due order, at most one tick late, never early', () => {
    const w = new TimerWheel<string>(10, 0);
    w.add(35, 'c');
    w.add(5, 'a');
    w.add(20, 'b');
    const fired: string[] = [];
    w.advance(19, (e) => fired.push(e));
    expect(fired).toEqual(['a']);
    w.advance(40, (e) => fired.push(e));
    expect(fired).toEqual(['a', 'b', 'c']);
    expect(w.size).toBe(0);
  });

  it('gives each entry back with the number it was added with (a lease: id and attempt, no object)', () => {
    const w = new TimerWheel<string>(10, 0);
    w.add(30, 'x', 3);
    w.add(5, 'y', 1);
    w.add(30, 'x', 4);
    w.add(12, 'z');
    const fired: string[] = [];
    w.advance(40, (e, n) => fired.push(`${e}#${n}`));
    expect(fired).toEqual(['y#1', 'z#0', 'x#3', 'x#4']);
  });

  it('an entry added while firing, or for a past time, fires on a later advance', () => {
    const w = new TimerWheel<string>(10, 0);
    const fired: string[] = [];
    w.add(10, 'first');
    w.advance(10, (e) => {
      fired.push(e);
      if (e === 'first') w.add(0, 'again');
    });
    expect(fired).toEqual(['first']);
    w.advance(20, (e) => fired.push(e));
    expect(fired).toEqual(['first', 'again']);
  });

  it('skips a long idle gap visiting only occupied slots', () => {
    const w = new TimerWheel<number>(1, 0);
    w.add(5, 1);
    w.add(10_000_000, 2);
    const fired: number[] = [];
    w.advance(20_000_000, (e) => fired.push(e));
    expect(fired).toEqual([1, 2]);
  });

  it('nextDue: the earliest occupied slot within the horizon (the cell sleeps until then)', () => {
    const w = new TimerWheel<string>(10, 0);
    expect(w.nextDue(0, 50)).toBeUndefined();
    w.add(120, 'far');
    expect(w.nextDue(0, 50)).toBeUndefined();
    w.add(33, 'near');
    expect(w.nextDue(0, 50)).toBe(40);
    w.advance(40, () => undefined);
    expect(w.nextDue(40, 50)).toBeUndefined();
    expect(w.nextDue(80, 50)).toBe(120);
  });
});

describe('StreamBatcher', () => {
  const lanes = [
    { wrap: (items: number[]) => ({ lane: 'a', items }), sizeOf: () => 10 },
    { wrap: (items: number[]) => ({ lane: 'b', items }), sizeOf: () => 10 },
  ];

  it('coalesces items pushed in one turn into one message per lane, in lane order', async () => {
    const s = new FakeStream<{ lane: string; items: number[] }>();
    const b = new StreamBatcher(s, lanes, DEFAULT_BATCHER_OPTIONS, realScheduler, () => {});
    for (let i = 0; i < 100; i++) b.push(1, i);
    for (let i = 0; i < 3; i++) b.push(0, i);
    expect(s.written).toHaveLength(0);
    await turn();
    expect(s.written.map((m) => [m.lane, m.items.length])).toEqual([
      ['a', 3],
      ['b', 100],
    ]);
  });

  it('splits a lane by maxBatchItems', async () => {
    const s = new FakeStream<{ lane: string; items: number[] }>();
    const b = new StreamBatcher(s, lanes, { ...DEFAULT_BATCHER_OPTIONS, maxBatchItems: 40 }, realScheduler, () => {});
    for (let i = 0; i < 100; i++) b.push(0, i);
    await turn();
    expect(s.written.map((m) => m.items.length)).toEqual([40, 40, 20]);
    expect(b.messages).toBe(3);
  });

  it('calls onOverflow once when the peer stops reading past maxBufferedBytes', async () => {
    const s = new FakeStream<{ lane: string; items: number[] }>();
    s.autoComplete = false;
    let overflows = 0;
    const b = new StreamBatcher(
      s,
      lanes,
      { ...DEFAULT_BATCHER_OPTIONS, lingerMs: 0, maxBufferedBytes: 500 },
      realScheduler,
      () => overflows++,
    );
    for (let round = 0; round < 10; round++) {
      for (let i = 0; i < 10; i++) b.push(0, i);
      await turn();
    }
    expect(overflows).toBe(1);
    expect(b.bufferedBytes).toBe(1000);
    for (const cb of s.pending) cb();
    expect(b.bufferedBytes).toBe(0);
  });

  it('beforeFlush items go out in the same flush, after earlier lanes', async () => {
    const s = new FakeStream<{ lane: string; items: number[] }>();
    const b: StreamBatcher<{ lane: string; items: number[] }> = new StreamBatcher(
      s,
      lanes,
      DEFAULT_BATCHER_OPTIONS,
      realScheduler,
      () => {},
      () => b.push(1, 99),
    );
    b.push(0, 1);
    await turn();
    expect(s.written.map((m) => m.lane)).toEqual(['a', 'b']);
    await turn();
    expect(s.written).toHaveLength(2);
  });
});

describe('StreamBatcher linger', () => {
  const lanes = [{ wrap: (items: number[]) => ({ items }), sizeOf: () => 10 }];
  const opts = { ...DEFAULT_BATCHER_OPTIONS, lingerMs: 2, lingerMinItems: 2, maxBatchItems: 50 };
  const setup = () => {
    const vs = new VirtualScheduler(1000);
    const s = new FakeStream<{ items: number[] }>();
    const b = new StreamBatcher(s, lanes, opts, vs, () => {});
    const sizes = () => s.written.map((m) => m.items.length);
    return { vs, s, b, sizes };
  };

  it('a quiet stream (one item a message) flushes on the next turn, never on a timer', () => {
    const { vs, b, sizes } = setup();
    for (let i = 0; i < 5; i++) {
      b.push(0, i);
      vs.runDeferred();
      expect(vs.pendingTimers).toBe(0);
      vs.advance(0.5);
    }
    expect(sizes()).toEqual([1, 1, 1, 1, 1]);
  });

  it('after a message of several items, what follows within lingerMs waits until lingerMs after it', () => {
    const { vs, b, sizes } = setup();
    b.push(0, 1);
    b.push(0, 2);
    vs.runDeferred(); // at 1000: [1, 2]
    vs.advance(0.5);
    b.push(0, 3);
    vs.runDeferred();
    expect(sizes()).toEqual([2]); // waiting, not sent on the next turn
    vs.advance(1);
    b.push(0, 4);
    vs.runDeferred();
    expect(sizes()).toEqual([2]);
    vs.advance(0.4); // 1001.9: not yet
    expect(sizes()).toEqual([2]);
    vs.advance(0.1); // 1002: lingerMs after the first message
    expect(sizes()).toEqual([2, 2]);
  });

  it('a busy stream whose last message left lingerMs ago or more flushes on the next turn', () => {
    const { vs, b, sizes } = setup();
    b.push(0, 1);
    b.push(0, 2);
    vs.runDeferred();
    vs.advance(2);
    b.push(0, 3);
    vs.runDeferred();
    expect(sizes()).toEqual([2, 1]);
    expect(vs.pendingTimers).toBe(0);
  });

  it('a message worth of items waiting ends the wait on the next turn', () => {
    const { vs, b, sizes } = setup();
    b.push(0, 0);
    b.push(0, 0);
    vs.runDeferred();
    for (let i = 0; i < 49; i++) b.push(0, i);
    vs.runDeferred();
    expect(sizes()).toEqual([2]);
    b.push(0, 49);
    vs.runDeferred();
    expect(sizes()).toEqual([2, 50]);
    expect(vs.pendingTimers).toBe(0);
  });

  it('an item of another lane ends the wait, and what the wait held goes first (push order kept)', () => {
    const vs = new VirtualScheduler(1000);
    const s = new FakeStream<{ lane: string; items: number[] }>();
    const two = [
      { wrap: (items: number[]) => ({ lane: 'control', items }), sizeOf: () => 10 },
      { wrap: (items: number[]) => ({ lane: 'bulk', items }), sizeOf: () => 10 },
    ];
    const b = new StreamBatcher(s, two, opts, vs, () => {});
    b.push(1, 1);
    b.push(1, 2);
    vs.runDeferred(); // a busy stream now
    b.push(1, 3); // waits
    vs.runDeferred();
    b.push(1, 4);
    vs.runDeferred();
    expect(vs.pendingTimers).toBe(1);
    b.push(0, 5); // the control item: next turn, after 3 and 4 that were queued before it
    b.push(1, 6); // same turn as 5: lane order, as without a wait
    vs.runDeferred();
    expect(vs.pendingTimers).toBe(0);
    expect(s.written.map((m) => `${m.lane}:${m.items.join(',')}`)).toEqual([
      'bulk:1,2',
      'bulk:3,4',
      'control:5',
      'bulk:6',
    ]);
  });

  it('lingerMs 0 never waits; close() cancels a waiting flush and drops its items', () => {
    const vs = new VirtualScheduler(0);
    const s = new FakeStream<{ items: number[] }>();
    const b = new StreamBatcher(s, lanes, { ...opts, lingerMs: 0 }, vs, () => {});
    b.push(0, 1);
    b.push(0, 2);
    vs.runDeferred();
    b.push(0, 3);
    vs.runDeferred();
    expect(s.written.map((m) => m.items.length)).toEqual([2, 1]);
    const w = setup();
    w.b.push(0, 1);
    w.b.push(0, 2);
    w.vs.runDeferred();
    w.b.push(0, 3);
    w.vs.runDeferred();
    expect(w.vs.pendingTimers).toBe(1);
    w.b.close();
    expect(w.vs.pendingTimers).toBe(0);
    w.vs.advance(10);
    expect(w.sizes()).toEqual([2]);
  });
});

describe('child link credits', () => {
  const link = () =>
    new ChildLink('/c', { write: () => true } as never, DEFAULT_BATCHER_OPTIONS, realScheduler, () => {});
  const summary = (free: number, seq: number) => ({
    cell: '/c',
    seq,
    kinds: [
      {
        kind: 'k',
        freeSlots: free,
        totalSlots: 10,
        healthyAgents: 1,
        prefetchSlots: 0,
        queued: 0,
        preemptible: 0,
        forecastRate: 0,
        forecastServiceMs: 0,
        largestFree: 0,
        largestTotal: 0,
        nodeFree: 0,
        speedServiceMs: [],
        speedSlots: [],
        speedFree: [],
        labelGroups: [],
        unknownLabelKeys: [],
        labelsKnown: false,
      },
    ],
    queue: [],
    utilization: undefined,
    latencyEwmaMs: 0,
    successEwma: 1,
    healthyAgents: 1,
    activeTasks: 0,
    forecastFreeSlots: 0,
    leaderId: '',
    leaderAddress: '',
    labels: [],
    draining: false,
    sentUnixMs: 0,
    breakersOpen: 0,
  });

  it('credit = free − unacked − acked since the summary; a summary absorbs the acked', () => {
    const l = link();
    l.applySummary(summary(5, 1), 0);
    expect(l.credits('k')).toBe(5);
    l.unacked.set('k', 2); // two dispatches in flight
    expect(l.credits('k')).toBe(3);
    l.unacked.set('k', 1);
    l.ackedSinceSummary.set('k', 1); // one acked, not yet in a summary
    expect(l.credits('k')).toBe(3);
    l.applySummary(summary(4, 2), 0); // the child counted it
    expect(l.credits('k')).toBe(3);
    expect(l.credits('other')).toBe(0);
  });

  it('never goes negative', () => {
    const l = link();
    l.applySummary(summary(1, 1), 0);
    l.unacked.set('k', 3);
    expect(l.credits('k')).toBe(0);
  });
});
