// The ledger's replicated forms: command batches (one Raft entry each) and the
// ledger snapshot. Round trips are exact (payload and output bytes included),
// and a ledger restored from a snapshot answers every later command exactly as
// the one it was taken from.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { LedgerBatch, LedgerSnapshot } from '../../src/gen/meshlb/v1/ledger.js';
import { TaskState } from '../../src/gen/meshlb/v1/task.js';
import { isTerminal, Ledger, type LedgerCommand } from '../../src/mesh/ledger.js';
import { decodeCommands, encodeCommands, LedgerCodecError } from '../../src/mesh/ledger-codec.js';
import { anyCommand, canonical, commandFor, script, SEED, spec } from './ledger-gen.js';

const ledger = () => new Ledger({ retention: 3, defaultMaxAttempts: 2 });

/**
 * Deep equality including the things toStrictEqual on Maps does not see: record order and terminal order.
 * The task map and the compact store of terminal records are compared through records() and the snapshot:
 * the store's handles and slabs depend on its history (a restored store starts afresh), not on the state.
 */
function expectSameLedger(b: Ledger, a: Ledger): void {
  expect(fields(b)).toStrictEqual(fields(a));
  expect([...b.records()]).toStrictEqual([...a.records()]);
  expect(Buffer.from(b.snapshot())).toEqual(Buffer.from(a.snapshot()));
}

function fields(l: Ledger): Record<string, unknown> {
  const { tasks: _tasks, retained: _retained, ...rest } = l as unknown as Record<string, unknown>;
  return rest;
}

describe('ledger command codec', () => {
  it('property: a batch decodes to the canonical form of what was encoded, bytes included', () => {
    fc.assert(
      fc.property(fc.array(anyCommand, { maxLength: 6 }), (cmds) => {
        expect(decodeCommands(encodeCommands(cmds))).toStrictEqual(cmds.map(canonical));
      }),
      { seed: SEED, numRuns: 300 },
    );
  });

  it('keeps payload and output bytes, and leaves false flags out', () => {
    const cmds: LedgerCommand[] = [
      {
        type: 'accepted',
        tasks: [{ id: 't', spec: spec({ payload: Buffer.from([0, 255, 7]) }), homeCell: '/', atMs: 1.5 }],
      },
      { type: 'attemptFailed', id: 't', attempt: 1, reason: 'r', counted: false, fatal: false, lapse: true, atMs: 2 },
    ];
    const [accepted, failed] = decodeCommands(encodeCommands(cmds));
    expect(accepted).toMatchObject({ tasks: [{ atMs: 1.5 }] });
    expect(accepted?.type === 'accepted' && accepted.tasks[0]!.spec.payload).toEqual(Buffer.from([0, 255, 7]));
    expect(failed).toStrictEqual({
      type: 'attemptFailed',
      id: 't',
      attempt: 1,
      reason: 'r',
      counted: false,
      lapse: true,
      atMs: 2,
    });
    expect(decodeCommands(encodeCommands([]))).toEqual([]);
  });

  it("keeps a task's trace context (trace_parent, trace_state) in commands and snapshots", () => {
    const traced = spec({
      traceParent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
      traceState: 'congo=t61rcWkgMzE',
    });
    const [accepted] = decodeCommands(
      encodeCommands([{ type: 'accepted', tasks: [{ id: 't', spec: traced, homeCell: '/', atMs: 1 }] }]),
    );
    expect(accepted?.type === 'accepted' && accepted.tasks[0]!.spec).toStrictEqual(traced);
    const a = ledger();
    a.apply(accepted!);
    const b = ledger();
    b.restore(a.snapshot());
    expect(b.get('t')?.spec).toStrictEqual(traced);
  });

  it('refuses bytes that are not a batch and commands of an unknown kind', () => {
    expect(() => decodeCommands(Uint8Array.from([0x0a, 0x05, 0x01]))).toThrow(LedgerCodecError);
    const unknown = LedgerBatch.encode({ commands: [{ command: undefined }] }).finish();
    expect(() => decodeCommands(unknown)).toThrow(/unknown kind/);
  });
});

describe('ledger snapshot', () => {
  it('property: restore(snapshot()) reproduces the state exactly, in order', () => {
    fc.assert(
      fc.property(script(), (steps) => {
        const a = ledger();
        for (const s of steps) a.apply(commandFor(s, a));
        const b = ledger();
        b.restore(a.snapshot());
        expectSameLedger(b, a);
        expect(b.liveCount).toBe(a.liveCount);
        for (const rec of a.records()) {
          if (rec.spec.idempotencyKey)
            expect(b.idForKey(rec.spec.idempotencyKey)).toBe(a.idForKey(rec.spec.idempotencyKey));
        }
      }),
      { seed: SEED, numRuns: 150 },
    );
  });

  it('property: a ledger restored at any point answers the rest of the commands exactly as the original', () => {
    const cut = script().chain((steps) => fc.tuple(fc.constant(steps), fc.integer({ min: 0, max: steps.length })));
    let transitions = 0;
    let finished = 0;
    fc.assert(
      fc.property(cut, ([steps, at]) => {
        const a = ledger();
        for (const s of steps.slice(0, at)) a.apply(commandFor(s, a));
        const b = ledger();
        b.apply({ type: 'accepted', tasks: [{ id: 'stale', spec: spec(), homeCell: '/', atMs: 0 }] }); // replaced by restore
        b.restore(a.snapshot());
        for (const s of steps.slice(at)) {
          const c = commandFor(s, a);
          const ra = a.apply(c);
          expect(b.apply(c)).toStrictEqual(ra);
          transitions += ra.filter((r) => r.ok && !r.existing).length;
          finished += ra.filter((r) => r.ok && isTerminal(r.state)).length;
        }
        expectSameLedger(b, a);
      }),
      { seed: SEED, numRuns: 200 },
    );
    // The scripts must really move tasks around, or the property says little.
    expect(transitions).toBeGreaterThan(2_000);
    expect(finished).toBeGreaterThan(300);
  });

  it('carries counters past eviction and restores into a ledger that already held tasks', () => {
    const a = ledger();
    for (let i = 0; i < 6; i++) {
      a.apply({
        type: 'accepted',
        tasks: [{ id: `t${i}`, spec: spec({ idempotencyKey: `k${i}` }), homeCell: '/', atMs: i }],
      });
      a.apply({ type: 'cancelled', id: `t${i}`, reason: 'x', atMs: i });
    }
    const b = ledger();
    b.apply({
      type: 'accepted',
      tasks: [{ id: 'other', spec: spec({ idempotencyKey: 'k0' }), homeCell: '/', atMs: 0 }],
    });
    b.restore(a.snapshot());
    expect(b.counters).toEqual({ accepted: 6, completed: 0, failed: 0, cancelled: 6, deadLettered: 0 });
    expect(b.get('other')).toBeUndefined();
    expect(b.idForKey('k0')).toBeUndefined();
    expect(b.size).toBe(3);
    // The oldest retained terminal task is evicted next, as in the original.
    b.apply({ type: 'accepted', tasks: [{ id: 'n', spec: spec(), homeCell: '/', atMs: 9 }] });
    b.apply({ type: 'cancelled', id: 'n', reason: 'x', atMs: 9 });
    expect(b.get('t3')).toBeUndefined();
    expect(b.get('t4')?.state).toBe(TaskState.TASK_STATE_CANCELLED);
  });

  it('refuses a snapshot of another version or with a broken terminal order', () => {
    const a = ledger();
    a.apply({ type: 'accepted', tasks: [{ id: 't', spec: spec(), homeCell: '/', atMs: 1 }] });
    a.apply({ type: 'cancelled', id: 't', reason: '', atMs: 2 });
    const snap = LedgerSnapshot.decode(a.snapshot());
    const b = ledger();
    expect(() => b.restore(LedgerSnapshot.encode({ ...snap, version: 2 }).finish())).toThrow(/version 2/);
    expect(() => b.restore(LedgerSnapshot.encode({ ...snap, terminalOrder: [] }).finish())).toThrow(/incomplete/);
    expect(() => b.restore(LedgerSnapshot.encode({ ...snap, terminalOrder: [5] }).finish())).toThrow(/bad terminal/);
  });
});
