// A batcher tells the scheduler how much its recent flushes carried (turn-defer.ts's `light` rule): about one
// item at low rate, so a flush after a quiet spell may run this turn; hundreds at full rate, so it takes the next.
import { describe, expect, it } from 'vitest';
import { StreamBatcher, type WritableStream } from '../../src/mesh/batcher.js';
import { VirtualScheduler } from '../../src/mesh/virtual-scheduler.js';
import { LIGHT_BATCH } from '../../src/util/turn-defer.js';

class Sink implements WritableStream<number[]> {
  readonly written: number[][] = [];
  write(msg: number[], cb: () => void): boolean {
    this.written.push(msg);
    cb();
    return true;
  }
}

/** A virtual scheduler that records the `batch` hint of every deferral. */
class HintScheduler extends VirtualScheduler {
  readonly hints: (number | undefined)[] = [];
  override defer(fn: () => void, batch?: number): void {
    this.hints.push(batch);
    super.defer(fn);
  }
}

describe('StreamBatcher deferral hint', () => {
  it('is light while flushes carry one item, heavy after full-rate flushes, light again after a run of single items', () => {
    const sched = new HintScheduler();
    const sink = new Sink();
    // No linger: every flush is a deferral, so each push below asks the scheduler once.
    const opts = { maxBatchItems: 512, maxBatchBytes: 1 << 20, maxBufferedBytes: 1 << 24, lingerMs: 0 };
    const b = new StreamBatcher<number[]>(sink, [{ wrap: (xs: number[]) => xs, sizeOf: () => 8 }], opts, sched, () => {
      throw new Error('overflow');
    });
    const flushOf = (n: number): number | undefined => {
      for (let i = 0; i < n; i++) b.push(0, i);
      sched.runDeferred();
      return sched.hints.at(-1);
    };
    for (let i = 0; i < 5; i++) expect(flushOf(1)).toBeLessThan(LIGHT_BATCH);
    flushOf(300);
    expect(flushOf(300)).toBeGreaterThanOrEqual(LIGHT_BATCH);
    let n = 0;
    while (flushOf(1)! >= LIGHT_BATCH) expect(++n).toBeLessThan(40);
    expect(sink.written.length).toBe(7 + n + 1);
    expect(sched.hints.every((h) => h !== undefined)).toBe(true);
  });
});
