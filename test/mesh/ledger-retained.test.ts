// The ledger's compact store of terminal records (src/mesh/ledger-retained.ts)
// against a plain model, across chunk boundaries (chunks of 3 entries here),
// and the ledger's use of it: a finished task is held as bytes, read back as an
// exact copy, replayed from them, evicted oldest first.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ResultStatus, TaskResult, TaskSpec, TaskState } from '../../src/gen/meshlb/v1/task.js';
import { Ledger, type TaskRecord } from '../../src/mesh/ledger.js';
import { RetainedRecords } from '../../src/mesh/ledger-retained.js';
import { SEED } from './ledger-gen.js';

const TERMINAL = [
  TaskState.TASK_STATE_COMPLETED,
  TaskState.TASK_STATE_FAILED,
  TaskState.TASK_STATE_CANCELLED,
  TaskState.TASK_STATE_DEAD_LETTERED,
];

function terminalRecord(n: number, state: TaskState, payloadBytes: number): TaskRecord {
  return {
    id: `t${n}`,
    spec: TaskSpec.fromPartial({
      kind: 'k',
      idempotencyKey: n % 3 === 0 ? `key${n}` : '',
      payload: Buffer.alloc(payloadBytes, n % 256),
    }),
    homeCell: '/r',
    createdMs: n + 0.5,
    state,
    attempt: n % 7,
    failures: n % 2,
    updatedMs: n + 1,
    result: state === TaskState.TASK_STATE_COMPLETED ? ok(`t${n}`, n % 7) : undefined,
    reason: state === TaskState.TASK_STATE_COMPLETED ? '' : `ended ${n}`,
    replays: 0,
    attemptBase: 0,
    preemptions: 0,
    preemptedBy: '',
    checkpoint: undefined,
  };
}

const ok = (id: string, attempt: number): TaskResult =>
  TaskResult.fromPartial({ taskId: id, attempt, status: ResultStatus.RESULT_STATUS_OK, output: Buffer.from('out') });

type Op = { t: 'add'; state: number; bytes: number } | { t: 'drop'; pick: number } | { t: 'evict' };

const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ t: fc.constant('add' as const), state: fc.nat(3), bytes: fc.nat(600) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('drop' as const), pick: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('evict' as const) }) },
);

describe('RetainedRecords', () => {
  it('property: holds, reads, drops and evicts as a list in order would, across chunks', () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 80 }), (ops) => {
        const store = new RetainedRecords(3);
        const model: { h: number; rec: TaskRecord }[] = [];
        let n = 0;
        for (const o of ops) {
          if (o.t === 'add') {
            // Payloads up to 600 bytes: a chunk's slab (3 x 128 bytes) has to grow.
            const rec = terminalRecord(n++, TERMINAL[o.state]!, o.bytes);
            model.push({ h: store.add(rec), rec });
          } else if (o.t === 'drop') {
            if (model.length === 0) continue;
            const [gone] = model.splice(o.pick % model.length, 1);
            store.drop(gone!.h);
          } else {
            const oldest = model.shift();
            const key = oldest?.rec.spec.idempotencyKey ?? '';
            expect(store.evictOldest()).toStrictEqual(oldest && { id: oldest.rec.id, key });
          }
          expect(store.size).toBe(model.length);
          expect([...store.handles()]).toStrictEqual(model.map((m) => m.h));
        }
        for (const { h, rec } of model) {
          expect(store.record(h)).toStrictEqual(rec);
          expect(store.state(h)).toBe(rec.state);
          expect(store.attempt(h)).toBe(rec.attempt);
          expect(store.createdMs(h)).toBe(rec.createdMs);
          expect(store.id(h)).toBe(rec.id);
        }
      }),
      { seed: SEED, numRuns: 300 },
    );
  });

  it('refuses a handle that left', () => {
    const store = new RetainedRecords(2);
    const hs = [0, 1, 2].map((n) => store.add(terminalRecord(n, TaskState.TASK_STATE_COMPLETED, 8)));
    expect(store.evictOldest()?.id).toBe('t0');
    expect(() => store.record(hs[0]!)).toThrow(/gone/);
    expect(store.record(hs[1]!).id).toBe('t1');
    store.clear();
    expect(store.size).toBe(0);
    expect(() => store.record(hs[2]!)).toThrow(/gone/);
    expect(store.evictOldest()).toBeUndefined();
  });
});

describe('Ledger: terminal records held compact', () => {
  const spec = (p: Partial<TaskSpec> = {}): TaskSpec => TaskSpec.fromPartial({ kind: 'k', ...p });

  it('keeps a finished task as bytes: get() is an exact copy, live() none, later changes to the object not seen', () => {
    const l = new Ledger({ retention: 10, defaultMaxAttempts: 3 });
    let ended: TaskRecord | undefined;
    l.onTerminal((r) => (ended = r));
    l.apply({
      type: 'accepted',
      tasks: [{ id: 'a', spec: spec({ idempotencyKey: 'ka', payload: Buffer.from([1, 2]) }), homeCell: '/', atMs: 1 }],
    });
    l.apply({ type: 'dispatched', refs: [{ id: 'a', attempt: 1 }], atMs: 2.25 });
    expect(l.live('a')).toBe(l.get('a')); // live: the object itself
    l.apply({ type: 'completed', result: ok('a', 1), atMs: 3 });
    const copy = l.get('a')!;
    expect(copy).toStrictEqual(ended);
    expect(copy).not.toBe(ended);
    expect(l.live('a')).toBeUndefined();
    expect(l.has('a')).toBe(true);
    expect(l.stateOf('a')).toBe(TaskState.TASK_STATE_COMPLETED);
    ended!.reason = 'changed after the fact';
    expect(l.get('a')!.reason).toBe('');
    // ListTasks reads id, state and creation time without decoding.
    l.apply({ type: 'accepted', tasks: [{ id: 'z', spec: spec(), homeCell: '/', atMs: 7.5 }] });
    expect([...l.entries()].map((e) => [e.id, e.state, e.createdMs])).toStrictEqual([
      ['a', TaskState.TASK_STATE_COMPLETED, 1],
      ['z', TaskState.TASK_STATE_QUEUED, 7.5],
    ]);
    // An idempotent resubmit is answered from the compact entry.
    const again = l.apply({
      type: 'accepted',
      tasks: [{ id: 'b', spec: spec({ idempotencyKey: 'ka' }), homeCell: '/', atMs: 4 }],
    });
    expect(again).toStrictEqual([
      { ok: true, id: 'a', existing: true, state: TaskState.TASK_STATE_COMPLETED, attempt: 1 },
    ]);
  });

  it('replays a task from its compact entry and evicts the rest oldest first', () => {
    const l = new Ledger({ retention: 2, defaultMaxAttempts: 1 });
    for (const id of ['a', 'b', 'c']) {
      l.apply({ type: 'accepted', tasks: [{ id, spec: spec({ idempotencyKey: `k${id}` }), homeCell: '/', atMs: 1 }] });
      l.apply({ type: 'cancelled', id, reason: `stop ${id}`, atMs: 2 });
    }
    // Three ended, two kept: 'a' (the oldest) went with its key.
    expect(l.has('a')).toBe(false);
    expect(l.idForKey('ka')).toBeUndefined();
    const [r] = l.apply({ type: 'replayed', ids: ['b'], reason: 'again', atMs: 3 });
    expect(r).toStrictEqual({ ok: true, id: 'b', state: TaskState.TASK_STATE_QUEUED, attempt: 0 });
    const b = l.live('b')!;
    expect([b.state, b.replays, b.reason, b.spec.idempotencyKey]).toStrictEqual([
      TaskState.TASK_STATE_QUEUED,
      1,
      'again',
      'kb',
    ]);
    l.apply({ type: 'dispatched', refs: [{ id: 'b', attempt: 1 }], atMs: 4 });
    l.apply({ type: 'completed', result: ok('b', 1), atMs: 5 });
    // Now 'c' then 'b' in eviction order: one more ended task evicts 'c', not 'b'.
    l.apply({ type: 'accepted', tasks: [{ id: 'd', spec: spec(), homeCell: '/', atMs: 6 }] });
    l.apply({ type: 'cancelled', id: 'd', reason: '', atMs: 7 });
    expect([l.has('b'), l.has('c'), l.has('d')]).toStrictEqual([true, false, true]);
    expect(l.idForKey('kb')).toBe('b');
    expect(l.get('b')!.result).toStrictEqual(ok('b', 1));
  });
});
