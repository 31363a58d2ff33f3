// Debounce and singleton keys as the ledger applies them (src/flow/keyed.ts
// through src/mesh/ledger.ts): submits within the window fold into one task
// with the last payload, the window is pushed and capped by the max wait, a
// dispatch inside the window is refused, singleton SKIP answers the live task
// and CANCEL ends it in the same command; all of it carried by snapshots and
// the codec, and checked by the spec validation.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Durability, SingletonMode, TaskResult, TaskSpec, TaskState } from '../../src/gen/meshlb/v1/task.js';
import { keyedSpecProblem } from '../../src/flow/keyed.js';
import { Ledger, type ApplyResult } from '../../src/mesh/ledger.js';
import { decodeCommands, encodeCommands } from '../../src/mesh/ledger-codec.js';

const SEED = Number(process.env.SEED ?? 1305);
const ledger = (): Ledger => new Ledger({ retention: 100, defaultMaxAttempts: 3 });
const deb = (payload: string, p: Partial<TaskSpec> = {}): TaskSpec =>
  TaskSpec.fromPartial({ kind: 'k', debounceKey: 'd', debouncePeriodMs: 100, payload: Buffer.from(payload), ...p });
const single = (mode: SingletonMode, payload = ''): TaskSpec =>
  TaskSpec.fromPartial({ kind: 'k', singletonKey: 's', singletonMode: mode, payload: Buffer.from(payload) });

const accept = (l: Ledger, id: string, spec: TaskSpec, atMs: number): ApplyResult =>
  l.apply({ type: 'accepted', tasks: [{ id, spec, homeCell: '/', atMs }] })[0]!;
const dispatch = (l: Ledger, id: string, atMs: number): ApplyResult =>
  l.apply({ type: 'dispatched', refs: [{ id, attempt: (l.get(id)?.attempt ?? 0) + 1 }], atMs })[0]!;
const payload = (l: Ledger, id: string): string => Buffer.from(l.get(id)!.spec.payload).toString();

describe('debounce keys in the ledger', () => {
  it('submits within the window fold into the first task with the last payload; each push moves the window', () => {
    const l = ledger();
    expect(accept(l, 'a', deb('p0'), 1000)).toMatchObject({ ok: true, id: 'a' });
    for (let i = 1; i < 20; i++) {
      const r = accept(l, `x${i}`, deb(`p${i}`), 1000 + i * 50);
      expect(r).toMatchObject({ ok: true, id: 'a', existing: true, state: TaskState.TASK_STATE_QUEUED });
    }
    expect(l.size).toBe(1);
    expect(payload(l, 'a')).toBe('p19');
    // The last submit at 1950: the window ends at 2050 (period 100), under the cap (first + 10 periods = 2000)?
    // No: the cap is 2000, so the window ends there.
    expect(l.keyed.holdUntil(l.get('a')!)).toBe(2000);
    expect(dispatch(l, 'a', 1999)).toMatchObject({ ok: false, why: 'limited' });
    expect(l.get('a')).toMatchObject({ state: TaskState.TASK_STATE_QUEUED, attempt: 0 });
    expect(dispatch(l, 'a', 2000)).toMatchObject({ ok: true, attempt: 1 });
    // Started: a later submit is a new task (the started one keeps its payload).
    expect(accept(l, 'b', deb('late'), 2001)).toMatchObject({ ok: true, id: 'b' });
    expect(payload(l, 'a')).toBe('p19');
  });

  it('the window closes at its end even before the dispatch: a later submit starts a new task', () => {
    const l = ledger();
    accept(l, 'a', deb('one'), 0);
    accept(l, 'a2', deb('two'), 60); // window now 160
    expect(l.keyed.holdUntil(l.get('a')!)).toBe(160);
    expect(accept(l, 'b', deb('three'), 160)).toMatchObject({ ok: true, id: 'b' });
    expect(payload(l, 'a')).toBe('two');
    expect(l.keyed.holdUntil(l.get('a')!)).toBe(0); // the key names b now; a may start
    expect(dispatch(l, 'a', 161).ok).toBe(true);
  });

  it('max wait caps the window: a key submitted to without pause still runs', () => {
    const l = ledger();
    accept(l, 'a', deb('0', { debounceMaxWaitMs: 250 }), 0);
    for (let t = 50; t < 250; t += 50) accept(l, `n${t}`, deb(String(t)), t);
    expect(l.keyed.holdUntil(l.get('a')!)).toBe(250);
    expect(accept(l, 'b', deb('next'), 250)).toMatchObject({ id: 'b' });
  });

  it('property: the window never passes first + max wait and the payload is the last folded in', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 80 }), { minLength: 1, maxLength: 40 }), (gaps) => {
        const l = ledger();
        let t = 0;
        accept(l, 'a', deb('start'), t);
        let last = 'start';
        for (const [i, g] of gaps.entries()) {
          t += g;
          const r = accept(l, `x${i}`, deb(`p${i}`), t);
          if (r.ok && r.id === 'a') last = `p${i}`;
          else break;
        }
        expect(l.keyed.holdUntil(l.get('a')!)).toBeLessThanOrEqual(1000);
        expect(payload(l, 'a')).toBe(last);
      }),
      { seed: SEED, numRuns: 200 },
    );
  });

  it('a task that ends frees its key; snapshots and the codec carry the keys', () => {
    const l = ledger();
    accept(l, 'a', deb('x'), 0);
    accept(l, 's', single(SingletonMode.SINGLETON_MODE_SKIP), 0);
    const copy = ledger();
    copy.restore(l.snapshot());
    expect(copy.keyed.size).toEqual({ debounces: 1, singletons: 1 });
    expect(copy.keyed.holdUntil(copy.get('a')!)).toBe(100);
    expect(accept(copy, 'y', deb('y'), 50)).toMatchObject({ id: 'a', existing: true });
    const cmds = decodeCommands(
      encodeCommands([{ type: 'accepted', tasks: [{ id: 'z', spec: deb('z'), homeCell: '/', atMs: 60 }] }]),
    );
    expect(l.apply(cmds[0]!)[0]).toMatchObject({ id: 'a', existing: true });
    expect(payload(l, 'a')).toBe('z');
    l.apply({ type: 'cancelled', id: 'a', reason: 'x', atMs: 70 });
    l.apply({ type: 'cancelled', id: 's', reason: 'x', atMs: 70 });
    expect(l.keyed.size).toEqual({ debounces: 0, singletons: 0 });
  });
});

describe('singleton keys in the ledger', () => {
  it('SKIP: a submit while one is live gets its id; once it ended a new one starts', () => {
    const l = ledger();
    accept(l, 'a', single(SingletonMode.SINGLETON_MODE_UNSPECIFIED), 0);
    dispatch(l, 'a', 1);
    expect(accept(l, 'b', single(SingletonMode.SINGLETON_MODE_SKIP), 2)).toMatchObject({
      ok: true,
      id: 'a',
      existing: true,
      state: TaskState.TASK_STATE_DISPATCHED,
    });
    expect(l.get('b')).toBeUndefined();
    l.apply({ type: 'completed', result: TaskResult.fromPartial({ taskId: 'a', attempt: 1 }), atMs: 3 });
    expect(accept(l, 'c', single(SingletonMode.SINGLETON_MODE_SKIP), 4)).toMatchObject({ id: 'c' });
    expect(l.get('c')!.state).toBe(TaskState.TASK_STATE_QUEUED);
  });

  it('CANCEL: the live task ends CANCELLED in the same command, naming the newer one', () => {
    const l = ledger();
    accept(l, 'a', single(SingletonMode.SINGLETON_MODE_CANCEL, 'old'), 0);
    dispatch(l, 'a', 1);
    const r = accept(l, 'b', single(SingletonMode.SINGLETON_MODE_CANCEL, 'new'), 2);
    expect(r).toMatchObject({ ok: true, id: 'b', replaced: 'a' });
    expect(l.get('a')).toMatchObject({
      state: TaskState.TASK_STATE_CANCELLED,
      reason: 'singleton key s: replaced by task b',
    });
    // The key names b now: a third SKIP submit gets b.
    expect(accept(l, 'c', single(SingletonMode.SINGLETON_MODE_SKIP), 3)).toMatchObject({ id: 'b', existing: true });
  });
});

describe('keyedSpecProblem', () => {
  const logged = { kind: 'k', durability: Durability.DURABILITY_LOGGED };
  it.each([
    [{ debounceKey: 'd' }, 'task.debounce_period_ms must be 1 to 3600000 with a debounce_key'],
    [{ debounceKey: 'd', debouncePeriodMs: 100, debounceMaxWaitMs: 50 }, 'task.debounce_max_wait_ms must be 0'],
    [{ debouncePeriodMs: 100 }, 'task.debounce_period_ms needs a debounce_key'],
    [{ debounceKey: 'd', debouncePeriodMs: 1, singletonKey: 's' }, 'not both'],
    [{ singletonKey: 's', durability: Durability.DURABILITY_NONE }, 'must be durability LOGGED'],
    [{ singletonKey: 's', singletonMode: 7 }, 'task.singleton_mode 7 is unknown'],
    [{ singletonKey: 'x'.repeat(129) }, 'task.singleton_key'],
  ])('refuses %j', (p, why) => {
    expect(keyedSpecProblem(TaskSpec.fromPartial({ ...logged, ...p }))).toContain(why);
  });
  it('accepts good specs', () => {
    expect(keyedSpecProblem(TaskSpec.fromPartial({ ...logged, debounceKey: 'd', debouncePeriodMs: 100 }))).toBe('');
    expect(keyedSpecProblem(TaskSpec.fromPartial({ ...logged, singletonKey: 's', singletonMode: 2 }))).toBe('');
    expect(keyedSpecProblem(TaskSpec.fromPartial({ kind: 'k' }))).toBe('');
  });
});
