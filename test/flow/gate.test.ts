// The home leader's flow gate (src/flow/gate.ts) over a real FlowState, with
// an injected clock and timers: what it lets go, holds (and says why), lets go
// again when permits come back, cancels (cancel-newest), and holds for a rate.
import { describe, expect, it } from 'vitest';
import { FlowState } from '../../src/flow/flow-state.js';
import { FlowGate } from '../../src/flow/gate.js';
import { TaskSpec } from '../../src/gen/meshlb/v1/task.js';
import type { FlowSpec } from '../../src/topology/types.js';

const spec: FlowSpec = {
  lingerMs: 0,
  concurrency: new Map([
    ['c', { limit: 2, strategy: 'queue' as const }],
    ['n', { limit: 1, strategy: 'cancel-newest' as const }],
    ['p', { limit: 2, strategy: 'cancel-in-progress' as const }],
  ]),
  rateLimits: new Map([['r', { units: 10, periodMs: 1000, burst: 2 }]]),
};

interface Item {
  taskId: string;
  spec: TaskSpec;
}

function setup() {
  const state = new FlowState({ spec, defaultTimeoutMs: 1000 });
  let now = 1_000_000;
  const timers: { at: number; fn: () => void }[] = [];
  const requeued: string[] = [];
  const gate = new FlowGate<Item>(
    state,
    { requeue: (item) => requeued.push(item.taskId), later: (ms, fn) => timers.push({ at: now + ms, fn }) },
    () => now,
  );
  const advance = (ms: number): void => {
    now += ms;
    for (const t of timers.splice(0))
      if (t.at <= now) t.fn();
      else timers.push(t);
  };
  const item = (id: string, p: Partial<TaskSpec>): Item => ({
    taskId: id,
    spec: TaskSpec.fromPartial({ kind: 'k', ...p }),
  });
  return { state, gate, requeued, timers, advance, item, now: () => now };
}

describe('FlowGate', () => {
  it('lets a key go up to its limit counting starts not yet applied, holds the rest first come first, and says why', () => {
    const { state, gate, requeued, item, now } = setup();
    const [a, b, c, d] = ['a', 'b', 'c', 'd'].map((id) => item(id, { concurrencyKey: 'c' }));
    expect(gate.admit(a!, 1, now()).type).toBe('go');
    expect(gate.admit(b!, 2, now()).type).toBe('go');
    expect(gate.admit(c!, 3, now()).type).toBe('held');
    expect(gate.admit(d!, 4, now()).type).toBe('held');
    expect(gate.whyWaiting('c')).toBe('concurrency key c at its limit of 2');
    expect(gate.backlog()).toEqual(new Map([['c:c', 2]]));
    expect(gate.oldestWaiting()).toEqual(new Map([['c:c', 3]]));
    // a's dispatch is applied (permit held) and settled: the room is the same, nobody goes.
    state.start(a!.spec, 'a', 1, now());
    gate.settled(a!);
    expect(requeued).toEqual([]);
    // b did not leave after all (no target): one room, the first waiting goes.
    gate.settled(b!);
    expect(requeued).toEqual(['c']);
    expect(gate.holds('c')).toBe(false);
    // a's permit comes back: d goes.
    state.ended('a', 1);
    gate.freed('c');
    expect(requeued).toEqual(['c', 'd']);
    expect(gate.backlog().size).toBe(0);
    expect(gate.oldestWaiting().size).toBe(0);
  });

  it('cancel-newest: a task that would wait ends instead', () => {
    const { gate, item, now } = setup();
    expect(gate.admit(item('a', { concurrencyKey: 'n' }), 1, now()).type).toBe('go');
    expect(gate.admit(item('b', { concurrencyKey: 'n' }), 1, now())).toEqual({
      type: 'cancel',
      why: 'concurrency key n at its limit of 1 (cancel-newest)',
    });
  });

  it('cancel-in-progress: a task that would wait waits, and the oldest live attempt of the key is cancelled, once', () => {
    const { state, gate, requeued, item, now } = setup();
    const [a, b, c, d, e] = ['a', 'b', 'c', 'd', 'e'].map((id) => item(id, { concurrencyKey: 'p' }));
    for (const it of [a!, b!]) {
      expect(gate.admit(it, 1, now()).type).toBe('go');
      state.start(it.spec, it.taskId, 1, now());
      gate.settled(it);
    }
    expect(gate.admit(c!, 1, now())).toEqual({
      type: 'preempt',
      victim: 'a',
      why: 'concurrency key p at its limit of 2: cancelled for a newer task (cancel-in-progress)',
    });
    expect(gate.holds('c')).toBe(true);
    // The next newcomer takes the next oldest; a cancelled one is never chosen again.
    expect(gate.admit(d!, 1, now())).toMatchObject({ type: 'preempt', victim: 'b' });
    expect(gate.admit(e!, 1, now())).toEqual({ type: 'held' });
    // a's cancel commits: its permit lingers until its agent answers, then c goes.
    state.stopped(a!.spec, 'a', 1, now());
    expect(requeued).toEqual([]);
    state.returned('a', 1);
    gate.freed('p');
    expect(requeued).toEqual(['c']);
  });

  it('holds past a rate and lets as many go as the rate allows when its timer fires', () => {
    const { gate, requeued, timers, advance, item, now } = setup();
    const items = ['a', 'b', 'c', 'd', 'e'].map((id) => item(id, { rateLimitKey: 'r' }));
    const answers = items.map((it, i) => gate.admit(it, i, now()).type);
    expect(answers).toEqual(['go', 'go', 'held', 'held', 'held']);
    expect(gate.whyWaiting('c')).toMatch(/^rate limit r until /);
    expect(timers).toHaveLength(1); // one timer per key
    advance(100);
    expect(requeued).toEqual(['c']);
    // The timer comes back for the rest (one unit per interval); a second later the rate allows its burst again.
    expect(timers).toHaveLength(1);
    advance(1000);
    expect(requeued).toEqual(['c', 'd', 'e']);
  });

  it('a task let go for a permit that ends before it is admitted gives its room to the next waiting (sim:mesh seed 116)', () => {
    // Room promised to a released task is held until it is admitted. If it ends first (cancelled,
    // past its deadline, or parked behind a multi-slot hold until then), that room must go to the
    // next in line: nothing else would ever wake the key's waiting tasks when no attempt runs.
    const { state, gate, requeued, item, now } = setup();
    const [a, b, c, d] = ['a', 'b', 'c', 'd'].map((id) => item(id, { concurrencyKey: 'c' }));
    for (const it of [a!, b!]) {
      expect(gate.admit(it, 1, now()).type).toBe('go');
      state.start(it.spec, it.taskId, 1, now());
      gate.settled(it);
    }
    expect(gate.admit(c!, 3, now()).type).toBe('held');
    expect(gate.admit(d!, 4, now()).type).toBe('held');
    // a's permit comes back: c is let go (requeued), holding the room until admitted.
    state.ended('a', 1);
    gate.freed('c');
    expect(requeued).toEqual(['c']);
    // c ends while queued, never admitted: d goes in its place.
    gate.forget('c');
    expect(requeued).toEqual(['c', 'd']);
    expect(gate.backlog().size).toBe(0);
    expect(gate.admit(d!, 4, now()).type).toBe('go');
  });

  it('forget() drops a waiting task; clear() drops everything and disarms the timers', () => {
    const { gate, requeued, advance, item, now, state } = setup();
    gate.admit(item('a', { concurrencyKey: 'c' }), 1, now());
    gate.admit(item('b', { concurrencyKey: 'c' }), 1, now());
    gate.admit(item('c', { concurrencyKey: 'c' }), 1, now());
    gate.forget('c');
    expect(gate.holds('c')).toBe(false);
    for (const id of ['x', 'y', 'z']) gate.admit(item(id, { rateLimitKey: 'r' }), 1, now());
    gate.clear();
    advance(10_000);
    state.setLimit('c', 10);
    gate.freed('c');
    expect(requeued).toEqual([]);
    // After clear() nothing is pending: the ledger's counts alone decide.
    expect(gate.admit(item('q', { concurrencyKey: 'c' }), 1, now()).type).toBe('go');
  });
});
