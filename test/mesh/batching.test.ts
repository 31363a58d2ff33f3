// Units: the timer wheel, the outgoing batcher, and the child-link credit rule.
import { describe, expect, it } from 'vitest';
import { StreamBatcher, type WritableStream } from '../../src/mesh/batcher.js';
import { TimerWheel } from '../../src/mesh/wheel.js';
import { ChildLink } from '../../src/mesh/child-link.js';
import { DEFAULT_BATCHER_OPTIONS } from '../../src/mesh/batcher.js';
import { realScheduler } from '../../src/mesh/scheduler.js';

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
      { ...DEFAULT_BATCHER_OPTIONS, maxBufferedBytes: 500 },
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
