// Requests' deadlines (src/raft/runtime/requests.ts): one timer for all of them, armed for the
// earliest, and still each request fails at its own deadline, not before and not later; a request
// settled before its deadline is never failed; a stop leaves no timer behind.
import { describe, expect, it } from 'vitest';
import { TimeoutError } from '../../../src/raft/index.js';
import { Requests } from '../../../src/raft/runtime/requests.js';
import { VirtualScheduler } from '../../../src/mesh/virtual-scheduler.js';

type Outcome = { at: number; ok: boolean; err?: unknown };

function track(clock: VirtualScheduler, p: Promise<unknown>): Outcome[] {
  const out: Outcome[] = [];
  p.then(
    () => out.push({ at: clock.now(), ok: true }),
    (err: unknown) => out.push({ at: clock.now(), ok: false, err }),
  );
  return out;
}

/** Let the promise reactions of the settled requests run. */
const flush = async (): Promise<void> => {
  for (let i = 0; i < 5; i++) await Promise.resolve();
};

describe('Requests deadlines', () => {
  it('fails each request at its own deadline, in any order of timeouts, on one timer', async () => {
    const clock = new VirtualScheduler();
    const r = new Requests(clock);
    const a = track(
      clock,
      r.propose('a', 500, () => undefined),
    );
    clock.advance(100);
    const b = track(
      clock,
      r.propose('b', 100, () => undefined),
    ); // due at 200, before a's 500
    const c = track(
      clock,
      r.read('c', 1_000, () => undefined),
    ); // due at 1,100
    const d = track(
      clock,
      r.propose('d', 300, () => undefined),
    ); // due at 400, settled first
    expect(clock.pendingTimers).toBe(1);
    r.proposal('d')!.resolve('done');
    await flush();
    for (const [to, expectDone] of [
      [199, [0, 0, 0]],
      [200, [0, 1, 0]],
      [499, [0, 1, 0]],
      [500, [1, 1, 0]],
      [1_099, [1, 1, 0]],
      [1_100, [1, 1, 1]],
    ] as const) {
      clock.advanceTo(to);
      await flush();
      expect([a.length, b.length, c.length], `at ${to}`).toEqual(expectDone);
    }
    expect(a[0]).toMatchObject({ at: 500, ok: false });
    expect(a[0]!.err).toBeInstanceOf(TimeoutError);
    expect(b[0]).toMatchObject({ at: 200, ok: false });
    expect(c[0]).toMatchObject({ at: 1_100, ok: false });
    expect(String(c[0]!.err)).toMatch(/raft read/);
    expect(d).toEqual([{ at: 100, ok: true }]);
    expect(clock.pendingTimers).toBe(0);
  });

  it('a request settled in time is not failed, and failAll leaves no timer', async () => {
    const clock = new VirtualScheduler();
    const r = new Requests(clock);
    const ok = track(
      clock,
      r.propose('p', 1_000, () => undefined),
    );
    const later = track(
      clock,
      r.propose('q', 2_000, () => undefined),
    );
    r.proposal('p')!.resolve(1);
    await flush();
    clock.advanceTo(1_500);
    await flush();
    expect(ok).toEqual([{ at: 0, ok: true }]);
    expect(later).toEqual([]);
    r.failAll(new Error('stopped'));
    await flush();
    expect(later).toMatchObject([{ at: 1_500, ok: false }]);
    expect(clock.pendingTimers).toBe(0);
  });
});
