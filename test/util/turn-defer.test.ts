import { describe, expect, it } from 'vitest';
import { LIGHT_BATCH, nextBatchAverage, QUIET_MS, SOON_MAX, TURN_MAX, turnDefer } from '../../src/util/turn-defer.js';

/** What ran, in order: each deferral's name, and 'turn' when a setImmediate queued before them ran. */
function recorder(): { order: string[]; turn: Promise<void> } {
  const order: string[] = [];
  const turn = new Promise<void>((resolve) =>
    setImmediate(() => {
      order.push('turn');
      resolve();
    }),
  );
  return { order, turn };
}

const settle = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 5));

describe('turnDefer', () => {
  it('after a quiet spell runs deferred work at the end of this turn, before the next turn', async () => {
    let now = 1000;
    const { defer } = turnDefer(() => now, { mode: 'soon' });
    const { order } = recorder();
    defer(() => order.push('pump'));
    const ranInside = order.includes('pump');
    await settle();
    expect(ranInside).toBe(false);
    expect(order).toEqual(['pump', 'turn']);
    now += QUIET_MS;
    const second = recorder();
    defer(() => second.order.push('flush'));
    await settle();
    expect(second.order).toEqual(['flush', 'turn']);
  });

  it('takes the next turn once SOON_MAX deferrals came in a row, so self-deferring work cannot starve I/O', async () => {
    // The clock moves past QUIET_MS at each call (a slow pump): what deferred work defers still continues its run.
    let now = 5000;
    const { defer } = turnDefer(() => (now += QUIET_MS), { mode: 'soon' });
    const { order } = recorder();
    let n = 0;
    const again = (): void => {
      order.push(`run${n++}`);
      if (n < SOON_MAX + 3) defer(again);
    };
    defer(again);
    await settle();
    // The first SOON_MAX in this turn; the rest after the turn queued before them.
    expect(order.indexOf('turn')).toBe(SOON_MAX);
    expect(order.filter((x) => x.startsWith('run'))).toHaveLength(SOON_MAX + 3);
  });

  it('deferrals closer together than QUIET_MS go to the next turn after the first SOON_MAX, as busy streams batch', async () => {
    let now = 0;
    const { defer } = turnDefer(() => now, { mode: 'soon' });
    const { order, turn } = recorder();
    for (let i = 0; i < SOON_MAX + 2; i++) {
      defer(() => order.push(`d${i}`));
      now += QUIET_MS / 10;
    }
    await turn;
    await settle();
    expect(order.indexOf('turn')).toBe(SOON_MAX);
    // Quiet again: the run starts over.
    now += QUIET_MS;
    const again = recorder();
    defer(() => again.order.push('later'));
    await settle();
    expect(again.order).toEqual(['later', 'turn']);
  });

  it('at most TURN_MAX deferrals go by without a turn, even when each comes after a quiet spell', async () => {
    // Work that defers itself through a promise (outside the run) on a slow clock: quiet every time.
    let now = 0;
    const d = turnDefer(() => (now += QUIET_MS), { mode: 'soon' });
    const { order } = recorder();
    let n = 0;
    const again = (): void => {
      order.push('run');
      if (++n < TURN_MAX + 5) void Promise.resolve().then(() => d.defer(again));
    };
    d.defer(again);
    await settle();
    await settle();
    expect(order.indexOf('turn')).toBe(TURN_MAX);
    expect(n).toBe(TURN_MAX + 5);
    // A timer fired (the loop turned): microtask deferrals are allowed again.
    d.turned();
    const later = recorder();
    d.defer(() => later.order.push('soon'));
    await settle();
    expect(later.order).toEqual(['soon', 'turn']);
  });

  it('turn mode always takes the next turn (MESHLB_DEFER=turn)', async () => {
    const { defer } = turnDefer(() => 0, { mode: 'turn' });
    const { order } = recorder();
    defer(() => order.push('pump'));
    await settle();
    expect(order).toEqual(['turn', 'pump']);
  });

  it('light mode: after a quiet spell only a light caller runs this turn; a heavy or silent one takes the next', async () => {
    let now = 1000;
    const d = turnDefer(() => now);
    const light = recorder();
    d.defer(() => light.order.push('pump'), 1);
    await settle();
    expect(light.order).toEqual(['pump', 'turn']);
    for (const batch of [LIGHT_BATCH, 300, undefined]) {
      now += QUIET_MS;
      const heavy = recorder();
      d.defer(() => heavy.order.push('pump'), batch);
      await settle();
      expect(heavy.order, `batch ${batch}`).toEqual(['turn', 'pump']);
    }
    expect(d.counts).toEqual({ soon: 1, next: 3, quiet: 4 });
  });

  it('light mode keeps the bounds: SOON_MAX light deferrals in a run, then the next turn', async () => {
    let now = 5000;
    const { defer } = turnDefer(() => (now += QUIET_MS));
    const { order } = recorder();
    let n = 0;
    const again = (): void => {
      order.push(`run${n++}`);
      if (n < SOON_MAX + 3) defer(again, 1);
    };
    defer(again, 1);
    await settle();
    expect(order.indexOf('turn')).toBe(SOON_MAX);
  });

  it('a batch average leaves light within a few full-rate batches and comes back within a few dozen light ones', () => {
    let avg = 1;
    avg = nextBatchAverage(avg, 300);
    expect(avg).toBeGreaterThanOrEqual(LIGHT_BATCH);
    for (let i = 0; i < 30; i++) avg = nextBatchAverage(avg, 1);
    expect(avg).toBeLessThan(LIGHT_BATCH);
    // A light stream's occasional pair does not make it heavy.
    avg = nextBatchAverage(avg, 2);
    expect(avg).toBeLessThan(LIGHT_BATCH);
  });
});
