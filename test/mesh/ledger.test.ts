import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  Durability,
  MeshFailure,
  ResultStatus,
  TaskSpec,
  TaskState,
  type TaskResult,
} from '../../src/gen/meshlb/v1/task.js';
import { isTerminal, Ledger, LocalLedgerLog, type LedgerCommand } from '../../src/mesh/ledger.js';

const spec = (p: Partial<TaskSpec> = {}): TaskSpec => TaskSpec.fromPartial({ kind: 'k', ...p });
const ok = (id: string, attempt: number): TaskResult => ({
  taskId: id,
  attempt,
  status: ResultStatus.RESULT_STATUS_OK,
  output: Buffer.from('out'),
  error: '',
  agentId: 'a',
  nodeCell: '/n',
  runMicros: 1,
  meshFailure: MeshFailure.MESH_FAILURE_UNSPECIFIED,
  retryAfterMs: 0,
});
const ledger = (retention = 100, defaultMaxAttempts = 3) => new Ledger({ retention, defaultMaxAttempts });
const accept = (l: Ledger, id: string, s = spec(), atMs = 1) =>
  l.apply({ type: 'accepted', tasks: [{ id, spec: s, homeCell: '/', atMs }] })[0]!;
const dispatch = (l: Ledger, id: string, attempt: number) =>
  l.apply({ type: 'dispatched', refs: [{ id, attempt }], atMs: 2 })[0]!;
const fail = (
  l: Ledger,
  id: string,
  attempt: number,
  extra: Partial<Extract<LedgerCommand, { type: 'attemptFailed' }>> = {},
) => l.apply({ type: 'attemptFailed', id, attempt, reason: 'boom', counted: true, atMs: 3, ...extra })[0]!;

describe('Ledger', () => {
  it('accepts a task as QUEUED and completes it on the current attempt', () => {
    const l = ledger();
    expect(accept(l, 't1')).toMatchObject({ ok: true, id: 't1', state: TaskState.TASK_STATE_QUEUED });
    expect(dispatch(l, 't1', 1)).toMatchObject({ ok: true, attempt: 1, state: TaskState.TASK_STATE_DISPATCHED });
    expect(l.apply({ type: 'completed', result: ok('t1', 1), atMs: 5 })[0]).toMatchObject({
      ok: true,
      state: TaskState.TASK_STATE_COMPLETED,
    });
    expect(l.get('t1')!.result!.output.toString()).toBe('out');
    expect(l.liveCount).toBe(0);
    expect(l.counters.completed).toBe(1);
  });

  it('maps one idempotency key to one task id', () => {
    const l = ledger();
    accept(l, 't1', spec({ idempotencyKey: 'K' }));
    const again = accept(l, 't2', spec({ idempotencyKey: 'K' }));
    expect(again).toMatchObject({ ok: true, id: 't1', existing: true });
    expect(l.get('t2')).toBeUndefined();
    expect(l.size).toBe(1);
  });

  it('fences stale attempts: a result of attempt 1 after attempt 2 started is dropped', () => {
    const l = ledger();
    accept(l, 't');
    dispatch(l, 't', 1);
    expect(fail(l, 't', 1)).toMatchObject({ ok: true, state: TaskState.TASK_STATE_QUEUED });
    dispatch(l, 't', 2);
    expect(l.apply({ type: 'completed', result: ok('t', 1), atMs: 9 })[0]).toMatchObject({ ok: false, why: 'stale' });
    expect(l.get('t')!.state).toBe(TaskState.TASK_STATE_DISPATCHED);
    expect(dispatch(l, 't', 2)).toMatchObject({ ok: false, why: 'stale' });
  });

  it('records exactly one terminal state; later commands are answered `terminal`', () => {
    const l = ledger();
    const seen: string[] = [];
    l.onTerminal((r) => seen.push(r.id));
    accept(l, 't');
    dispatch(l, 't', 1);
    l.apply({ type: 'completed', result: ok('t', 1), atMs: 5 });
    expect(l.apply({ type: 'completed', result: ok('t', 1), atMs: 6 })[0]).toMatchObject({
      ok: false,
      why: 'terminal',
    });
    expect(l.apply({ type: 'cancelled', id: 't', reason: 'x', atMs: 6 })[0]).toMatchObject({
      ok: false,
      why: 'terminal',
    });
    expect(l.apply({ type: 'deadLettered', id: 't', reason: 'x', atMs: 6 })[0]).toMatchObject({
      ok: false,
      why: 'terminal',
    });
    expect(seen).toEqual(['t']);
  });

  it('fails after max attempts of agent errors, dead-letters after max lapses, fails at once on fatal', () => {
    const l = ledger(100, 2);
    accept(l, 'e');
    dispatch(l, 'e', 1);
    fail(l, 'e', 1);
    dispatch(l, 'e', 2);
    expect(fail(l, 'e', 2)).toMatchObject({ state: TaskState.TASK_STATE_FAILED });
    accept(l, 'd');
    dispatch(l, 'd', 1);
    fail(l, 'd', 1, { lapse: true });
    dispatch(l, 'd', 2);
    expect(fail(l, 'd', 2, { lapse: true })).toMatchObject({ state: TaskState.TASK_STATE_DEAD_LETTERED });
    accept(l, 'f', spec({ maxAttempts: 5 }));
    dispatch(l, 'f', 1);
    expect(fail(l, 'f', 1, { fatal: true })).toMatchObject({ state: TaskState.TASK_STATE_FAILED });
  });

  it('does not count uncounted failures (refused for capacity) against max attempts', () => {
    const l = ledger(100, 1);
    accept(l, 't');
    for (let a = 1; a <= 5; a++) {
      dispatch(l, 't', a);
      expect(fail(l, 't', a, { counted: false })).toMatchObject({ state: TaskState.TASK_STATE_QUEUED });
    }
    dispatch(l, 't', 6);
    expect(fail(l, 't', 6)).toMatchObject({ state: TaskState.TASK_STATE_FAILED });
  });

  it('starts a new attempt only after the last one ended (one still out is never superseded)', () => {
    const l = ledger();
    accept(l, 't');
    dispatch(l, 't', 1);
    expect(dispatch(l, 't', 2)).toMatchObject({ ok: false, why: 'stale' });
    expect(l.get('t')).toMatchObject({ attempt: 1, state: TaskState.TASK_STATE_DISPATCHED });
    fail(l, 't', 1, { counted: false });
    expect(dispatch(l, 't', 2)).toMatchObject({ ok: true, attempt: 2 });
  });

  it('property: attempts that may have run (dispatched, not refused uncounted) never exceed max_attempts', () => {
    const cmd = fc.oneof(
      fc.record({ t: fc.constant('dispatch'), attempt: fc.integer({ min: 1, max: 8 }) }),
      fc.record({ t: fc.constant('fail'), attempt: fc.integer({ min: 1, max: 8 }), counted: fc.boolean() }),
    );
    fc.assert(
      fc.property(fc.array(cmd, { maxLength: 40 }), (cmds) => {
        const l = ledger(100, 2);
        accept(l, 't');
        let ran = 0;
        for (const c of cmds) {
          if (c.t === 'dispatch') {
            if (dispatch(l, 't', c.attempt).ok) ran++;
          } else if (fail(l, 't', c.attempt, { counted: c.counted }).ok && !c.counted) ran--;
          expect(ran).toBeLessThanOrEqual(2);
        }
      }),
      { seed: 8, numRuns: 300 },
    );
  });

  it('answers unknown ids with `unknown`', () => {
    const l = ledger();
    expect(l.apply({ type: 'cancelled', id: 'nope', reason: '', atMs: 1 })[0]).toMatchObject({
      ok: false,
      why: 'unknown',
    });
    expect(dispatch(l, 'nope', 1)).toMatchObject({ ok: false, why: 'unknown' });
  });

  it('keeps at most `retention` terminal tasks, evicting the oldest and its key', () => {
    const l = ledger(3);
    for (let i = 0; i < 5; i++) {
      accept(l, `t${i}`, spec({ idempotencyKey: `k${i}` }));
      l.apply({ type: 'cancelled', id: `t${i}`, reason: '', atMs: i });
    }
    accept(l, 'live');
    expect(l.size).toBe(4);
    expect(l.get('t0')).toBeUndefined();
    expect(l.get('t1')).toBeUndefined();
    expect(l.get('t4')).toBeDefined();
    expect(l.idForKey('k0')).toBeUndefined();
    expect(l.idForKey('k4')).toBe('t4');
    expect(l.get('live')!.state).toBe(TaskState.TASK_STATE_QUEUED);
  });

  it('snapshot/restore reproduces the state exactly', () => {
    const l = ledger(10);
    accept(
      l,
      'a',
      spec({ idempotencyKey: 'ka', payload: Buffer.from([1, 2, 3]), durability: Durability.DURABILITY_LOGGED }),
    );
    accept(l, 'b');
    dispatch(l, 'b', 1);
    l.apply({ type: 'completed', result: ok('b', 1), atMs: 4 });
    const snap = l.snapshot();
    const r = ledger(10);
    r.restore(snap);
    expect(r.get('a')).toEqual(l.get('a'));
    expect(r.get('b')).toEqual(l.get('b'));
    expect(r.idForKey('ka')).toBe('a');
    expect(r.liveCount).toBe(1);
    expect(r.counters).toEqual(l.counters);
    expect(Buffer.from(r.snapshot())).toEqual(Buffer.from(snap));
  });

  it('LocalLedgerLog applies at once and answers per command', async () => {
    const l = ledger();
    const log = new LocalLedgerLog(l);
    const rs = await log.propose([
      { type: 'accepted', tasks: [{ id: 'x', spec: spec(), homeCell: '/', atMs: 1 }] },
      { type: 'dispatched', refs: [{ id: 'x', attempt: 1 }], atMs: 2 },
    ]);
    expect(rs.map((r) => r[0]!.ok)).toEqual([true, true]);
    expect(log.isLeader()).toBe(true);
  });

  it('property: any command sequence leaves at most one terminal record per task and is deterministic', () => {
    const ids = ['a', 'b', 'c'];
    const cmd = fc.oneof(
      fc.record({ t: fc.constant('dispatch'), id: fc.constantFrom(...ids), attempt: fc.integer({ min: 1, max: 4 }) }),
      fc.record({ t: fc.constant('ok'), id: fc.constantFrom(...ids), attempt: fc.integer({ min: 0, max: 4 }) }),
      fc.record({
        t: fc.constant('fail'),
        id: fc.constantFrom(...ids),
        attempt: fc.integer({ min: 0, max: 4 }),
        lapse: fc.boolean(),
      }),
      fc.record({ t: fc.constant('cancel'), id: fc.constantFrom(...ids) }),
    );
    fc.assert(
      fc.property(fc.array(cmd, { maxLength: 60 }), (cmds) => {
        const run = () => {
          const l = ledger(100, 2);
          const terminal = new Map<string, number>();
          l.onTerminal((r) => terminal.set(r.id, (terminal.get(r.id) ?? 0) + 1));
          for (const id of ids) accept(l, id);
          for (const c of cmds) {
            if (c.t === 'dispatch') dispatch(l, c.id, c.attempt);
            else if (c.t === 'ok') l.apply({ type: 'completed', result: ok(c.id, c.attempt), atMs: 1 });
            else if (c.t === 'fail') fail(l, c.id, c.attempt, { lapse: c.lapse });
            else l.apply({ type: 'cancelled', id: c.id, reason: '', atMs: 1 });
          }
          return { l, terminal };
        };
        const a = run();
        const b = run();
        for (const id of ids) {
          expect(a.terminal.get(id) ?? 0).toBeLessThanOrEqual(1);
          expect((a.terminal.get(id) ?? 0) === 1).toBe(isTerminal(a.l.get(id)!.state));
        }
        expect(Buffer.from(a.l.snapshot())).toEqual(Buffer.from(b.l.snapshot()));
      }),
      { seed: 42, numRuns: 200 },
    );
  });
});

describe('Ledger.onRestored', () => {
  it('tells listeners once after a snapshot replaced the ledger, with no per-record change or terminal event', () => {
    const a = ledger();
    accept(a, 't1');
    accept(a, 't2');
    dispatch(a, 't1', 1);
    a.apply({ type: 'completed', result: ok('t1', 1), atMs: 3 });
    const b = ledger();
    let restored = 0;
    let changes = 0;
    let terminals = 0;
    b.onRestored(() => restored++);
    b.onChange(() => changes++);
    b.onTerminal(() => terminals++);
    b.restore(a.snapshot());
    expect(restored).toBe(1);
    expect(changes).toBe(0);
    expect(terminals).toBe(0);
    expect(b.get('t1')?.state).toBe(TaskState.TASK_STATE_COMPLETED);
  });
});
