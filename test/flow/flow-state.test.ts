// The flow-control state as the ledger applies it (src/flow/flow-state.ts,
// through src/mesh/ledger.ts): starts refused past a key's limit or rate,
// permits returned on a result, lingering after a loss or a cancel until the
// agent answers or the linger ends, runtime limits, and all of it carried by
// snapshots.
import { describe, expect, it } from 'vitest';
import { TaskSpec, TaskState, ResultStatus, TaskResult } from '../../src/gen/meshlb/v1/task.js';
import { Ledger, type LedgerCommand } from '../../src/mesh/ledger.js';
import { decodeCommands, encodeCommands } from '../../src/mesh/ledger-codec.js';
import { parseTopology } from '../../src/topology/parse.js';

const topology = parseTopology(`
name: t
addressing: { host: 127.0.0.1, basePort: 20000 }
flow:
  lingerMs: 1000
  concurrency:
    c: { limit: 2 }
  rateLimits:
    r: { units: 10, periodMs: 1000, burst: 2 }
cells:
  name: /
`);

const ledger = (): Ledger =>
  new Ledger({ retention: 100, defaultMaxAttempts: 3, flow: { spec: topology.flow, defaultTimeoutMs: 3000 } });

const keyed = (p: Partial<TaskSpec> = {}): TaskSpec => TaskSpec.fromPartial({ kind: 'k', concurrencyKey: 'c', ...p });

function accept(l: Ledger, ids: string[], spec: TaskSpec = keyed()): void {
  l.apply({ type: 'accepted', tasks: ids.map((id) => ({ id, spec, homeCell: '/', atMs: 0 })) });
}

const dispatch = (l: Ledger, id: string, atMs = 10) =>
  l.apply({ type: 'dispatched', refs: [{ id, attempt: (l.get(id)?.attempt ?? 0) + 1 }], atMs })[0]!;

const ok = (id: string, attempt: number): TaskResult =>
  TaskResult.fromPartial({ taskId: id, attempt, status: ResultStatus.RESULT_STATUS_OK, agentId: 'a' });

describe('flow state in the ledger', () => {
  it('refuses a dispatch past the key limit (the task stays QUEUED, attempt unchanged); a result frees a permit', () => {
    const l = ledger();
    accept(l, ['a', 'b', 'c']);
    expect(dispatch(l, 'a').ok).toBe(true);
    expect(dispatch(l, 'b').ok).toBe(true);
    expect(dispatch(l, 'c')).toMatchObject({ ok: false, why: 'limited' });
    expect(l.get('c')).toMatchObject({ state: TaskState.TASK_STATE_QUEUED, attempt: 0 });
    expect(l.flow.permits.held('c')).toBe(2);
    const freed: string[] = [];
    l.flow.onFreed((k) => freed.push(k));
    l.apply({ type: 'completed', result: ok('a', 1), atMs: 20 });
    expect(freed).toEqual(['c']);
    expect(dispatch(l, 'c').ok).toBe(true);
  });

  it('an agent error frees the permit; a lost attempt keeps it lingering until the timeout plus the linger', () => {
    const l = ledger();
    accept(l, ['a', 'b']);
    dispatch(l, 'a');
    dispatch(l, 'b');
    l.apply({ type: 'attemptFailed', id: 'a', attempt: 1, reason: 'boom', counted: true, atMs: 20 });
    expect(l.flow.permits.held('c')).toBe(1);
    l.apply({ type: 'attemptFailed', id: 'b', attempt: 1, reason: 'lost', counted: true, lapse: true, atMs: 30 });
    expect(l.flow.permits.held('c')).toBe(1);
    expect(l.flow.permits.isLingering('b#1')).toBe(true);
    // Default timeout 3000 + linger 1000 from the loss.
    expect(l.flow.permits.due(4029)).toEqual([]);
    expect(l.flow.permits.due(4030)).toEqual(['b#1']);
    // Its retry needs a permit of its own while the old attempt may still run.
    expect(dispatch(l, 'b').ok).toBe(true);
    expect(l.flow.permits.held('c')).toBe(2);
    expect(dispatch(l, 'a')).toMatchObject({ ok: false, why: 'limited' });
    l.apply({ type: 'permitReturned', id: 'b', attempt: 1, atMs: 40 });
    expect(dispatch(l, 'a').ok).toBe(true);
  });

  it('a task cancelled or dead-lettered while out lingers; one that was queued holds nothing', () => {
    const l = ledger();
    accept(l, ['a', 'b', 'q'], keyed({ timeoutMs: 500 }));
    dispatch(l, 'a');
    dispatch(l, 'b');
    l.apply({ type: 'cancelled', id: 'a', reason: 'x', atMs: 100 });
    l.apply({ type: 'deadLettered', id: 'b', reason: 'x', atMs: 200 });
    l.apply({ type: 'cancelled', id: 'q', reason: 'x', atMs: 300 });
    expect(l.flow.permits.due(1600)).toEqual(['a#1']);
    expect(l.flow.permits.due(1700)).toEqual(['a#1', 'b#1']);
    l.apply({ type: 'permitReturned', id: 'a', attempt: 1, atMs: 1600 });
    l.apply({ type: 'permitReturned', id: 'b', attempt: 1, atMs: 1700 });
    expect(l.flow.permits.total).toBe(0);
  });

  it('a limit set at runtime replaces the topology one and 0 returns to it', () => {
    const l = ledger();
    accept(l, ['a', 'b', 'c']);
    l.apply({ type: 'flowLimitSet', key: 'c', limit: 1, atMs: 1 });
    expect(dispatch(l, 'a').ok).toBe(true);
    expect(dispatch(l, 'b')).toMatchObject({ ok: false, why: 'limited' });
    l.apply({ type: 'flowLimitSet', key: 'c', limit: 0, atMs: 2 });
    expect(l.flow.limit('c')).toBe(2);
    expect(dispatch(l, 'b').ok).toBe(true);
    // A key with no limit anywhere is counted, never refused.
    accept(l, ['u1', 'u2', 'u3'], keyed({ concurrencyKey: 'free' }));
    for (const id of ['u1', 'u2', 'u3']) expect(dispatch(l, id).ok).toBe(true);
    expect(l.flow.permits.held('free')).toBe(3);
  });

  it("a tenant's weight set at runtime is its DRR quantum; 0 returns it to 1; snapshots carry it", () => {
    const l = ledger();
    expect(l.flow.weight('gold')).toBe(1);
    l.apply({ type: 'tenantWeightSet', tenant: 'gold', weight: 5, atMs: 1 });
    expect(l.flow.weight('gold')).toBe(5);
    const r = ledger();
    r.restore(l.snapshot());
    expect(r.flow.weight('gold')).toBe(5);
    l.apply({ type: 'tenantWeightSet', tenant: 'gold', weight: 0, atMs: 2 });
    expect(l.flow.weight('gold')).toBe(1);
    expect(l.flow.toProto().tenantWeights).toEqual([]);
  });

  it('a rate-limit key lets its burst start at once, then one per emission interval (times from the commands)', () => {
    const l = ledger();
    accept(l, ['a', 'b', 'c', 'd'], TaskSpec.fromPartial({ kind: 'k', rateLimitKey: 'r' }));
    expect(dispatch(l, 'a', 1000).ok).toBe(true);
    expect(dispatch(l, 'b', 1000).ok).toBe(true);
    expect(dispatch(l, 'c', 1000)).toMatchObject({ ok: false, why: 'limited' });
    expect(dispatch(l, 'c', 1100).ok).toBe(true);
    expect(dispatch(l, 'd', 1150)).toMatchObject({ ok: false, why: 'limited' });
    expect(l.flow.tat('r')).toBe(1300);
  });

  it('a snapshot carries permits (lingering too), runtime limits and rate state; replicas that apply the same log agree', () => {
    const l = ledger();
    const log: LedgerCommand[] = [
      {
        type: 'accepted',
        tasks: ['a', 'b'].map((id) => ({ id, spec: keyed({ rateLimitKey: 'r' }), homeCell: '/', atMs: 0 })),
      },
      { type: 'flowLimitSet', key: 'c', limit: 5, atMs: 1 },
      { type: 'tenantWeightSet', tenant: 'gold', weight: 5, atMs: 1 },
      {
        type: 'dispatched',
        refs: [
          { id: 'a', attempt: 1 },
          { id: 'b', attempt: 1 },
        ],
        atMs: 5,
      },
      { type: 'attemptFailed', id: 'b', attempt: 1, reason: 'lost', counted: true, lapse: true, atMs: 6 },
    ];
    for (const c of log) l.apply(c);
    const r = ledger();
    r.restore(l.snapshot());
    expect(r.flow.toProto()).toEqual(l.flow.toProto());
    expect(r.flow.permits.isLingering('b#1')).toBe(true);
    expect(r.flow.limit('c')).toBe(5);
    // A follower applying the decoded log holds the same.
    const f = ledger();
    for (const c of decodeCommands(encodeCommands(log))) f.apply(c);
    expect(f.flow.toProto()).toEqual(l.flow.toProto());
  });
});

describe('runtime strategies', () => {
  it('are set with a limit, survive the log codec and a snapshot, and go back with limit 0', () => {
    const l = ledger();
    const cmd = (limit: number, strategy?: string): LedgerCommand => ({
      type: 'flowLimitSet',
      key: 'c',
      limit,
      ...(strategy ? { strategy } : {}),
      atMs: 0,
    });
    for (const c of decodeCommands(encodeCommands([cmd(4, 'cancel-in-progress')]))) l.apply(c);
    expect(l.flow.limit('c')).toBe(4);
    expect(l.flow.strategy('c')).toBe('cancel-in-progress');
    const copy = ledger();
    copy.restore(l.snapshot());
    expect(copy.flow.strategy('c')).toBe('cancel-in-progress');
    expect(copy.flow.limit('c')).toBe(4);
    l.apply(cmd(0));
    expect(l.flow.strategy('c')).toBe('queue');
    expect(l.flow.limit('c')).toBe(2);
    // Anything but the three runtime strategies means the topology's.
    l.apply(cmd(5, 'round-robin'));
    expect(l.flow.strategy('c')).toBe('queue');
  });
});
