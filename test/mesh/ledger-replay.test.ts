// The ledger commands operators cause (AdminService): a replay reopens a task
// that ended FAILED, DEAD_LETTERED or CANCELLED as a new attempt series, fenced
// against everything of the series before; the cell's config (drain, policy,
// cordoned agents) is state of the same machine, so it is in snapshots too.
import { describe, expect, it } from 'vitest';
import { TaskResult, TaskState } from '../../src/gen/meshlb/v1/task.js';
import { Ledger, MAX_CORDONED, type CellConfig, type LedgerCommand } from '../../src/mesh/ledger.js';
import { decodeCommands, encodeCommands } from '../../src/mesh/ledger-codec.js';
import { spec } from './ledger-gen.js';

const ledger = (retention = 10) => new Ledger({ retention, defaultMaxAttempts: 2 });
const accept = (l: Ledger, id: string, maxAttempts = 2): void => {
  l.apply({ type: 'accepted', tasks: [{ id, spec: spec({ maxAttempts }), homeCell: '/', atMs: 1 }] });
};
const dispatch = (l: Ledger, id: string): number => {
  const attempt = l.get(id)!.attempt + 1;
  l.apply({ type: 'dispatched', refs: [{ id, attempt }], atMs: 2 });
  return attempt;
};
const lapse = (l: Ledger, id: string, attempt: number): void => {
  l.apply({ type: 'attemptFailed', id, attempt, reason: 'lost', counted: true, lapse: true, atMs: 3 });
};

/** Dead-letter `id` the way the mesh does: its attempts lapse until none are left. */
function deadLetterByLapses(l: Ledger, id: string): void {
  while (l.get(id)!.state !== TaskState.TASK_STATE_DEAD_LETTERED) lapse(l, id, dispatch(l, id));
}

describe('ledger replay', () => {
  it('reopens a dead letter as a new series: QUEUED, no failures, attempt numbers go on, counted anew', () => {
    const l = ledger();
    accept(l, 't');
    deadLetterByLapses(l, 't');
    expect(l.get('t')).toMatchObject({ attempt: 2, failures: 2, replays: 0 });
    expect(l.liveCount).toBe(0);

    const [res] = l.apply({ type: 'replayed', ids: ['t'], reason: 'replayed by operator', atMs: 10 });
    expect(res).toEqual({ ok: true, id: 't', state: TaskState.TASK_STATE_QUEUED, attempt: 2 });
    expect(l.get('t')).toMatchObject({
      state: TaskState.TASK_STATE_QUEUED,
      failures: 0,
      replays: 1,
      attemptBase: 2,
      result: undefined,
      reason: 'replayed by operator',
      updatedMs: 10,
    });
    expect(l.liveCount).toBe(1);

    // A late result of the old series is fenced; the new series gets its own max_attempts.
    expect(l.apply({ type: 'running', id: 't', attempt: 2, atMs: 11 })[0]).toMatchObject({ ok: false, why: 'stale' });
    const a3 = dispatch(l, 't');
    expect(a3).toBe(3);
    lapse(l, 't', a3);
    expect(l.get('t')!.state).toBe(TaskState.TASK_STATE_QUEUED);
    lapse(l, 't', dispatch(l, 't'));
    expect(l.get('t')).toMatchObject({ state: TaskState.TASK_STATE_DEAD_LETTERED, attempt: 4, failures: 2 });
    expect(l.counters.deadLettered).toBe(2);
    expect(l.liveCount).toBe(0);
  });

  it('replays FAILED and CANCELLED tasks too; refuses unknown, live and COMPLETED ones and changes nothing', () => {
    const l = ledger();
    for (const id of ['failed', 'cancelled', 'live', 'done']) accept(l, id);
    l.apply({
      type: 'attemptFailed',
      id: 'failed',
      attempt: dispatch(l, 'failed'),
      reason: 'x',
      counted: true,
      fatal: true,
      atMs: 3,
    });
    l.apply({ type: 'cancelled', id: 'cancelled', reason: 'op', atMs: 3 });
    const done = dispatch(l, 'done');
    l.apply({ type: 'completed', result: TaskResult.fromPartial({ taskId: 'done', attempt: done }), atMs: 4 });
    const before = Buffer.from(l.snapshot());
    const refused = l.apply({ type: 'replayed', ids: ['nope', 'live', 'done'], reason: 'r', atMs: 5 });
    expect(refused).toEqual([
      { ok: false, id: 'nope', why: 'unknown' },
      { ok: false, id: 'live', why: 'live', state: TaskState.TASK_STATE_QUEUED },
      { ok: false, id: 'done', why: 'terminal', state: TaskState.TASK_STATE_COMPLETED },
    ]);
    expect(Buffer.from(l.snapshot())).toEqual(before);
    const ok = l.apply({ type: 'replayed', ids: ['failed', 'cancelled'], reason: 'r', atMs: 5 });
    expect(ok.map((r) => r.ok && r.state)).toEqual([TaskState.TASK_STATE_QUEUED, TaskState.TASK_STATE_QUEUED]);
  });

  it('a replayed task is no longer in the eviction order, and goes back in it when it ends again', () => {
    const l = ledger(1);
    accept(l, 'a');
    accept(l, 'b');
    l.apply({ type: 'deadLettered', id: 'a', reason: 'x', atMs: 2 });
    l.apply({ type: 'replayed', ids: ['a'], reason: 'r', atMs: 3 });
    l.apply({ type: 'deadLettered', id: 'b', reason: 'x', atMs: 4 });
    expect(l.get('a')?.state).toBe(TaskState.TASK_STATE_QUEUED); // not evicted for b (retention 1)
    l.apply({ type: 'cancelled', id: 'a', reason: 'x', atMs: 5 });
    expect(l.get('b')).toBeUndefined(); // b was the oldest terminal one
    expect(l.get('a')?.state).toBe(TaskState.TASK_STATE_CANCELLED);
  });

  it('tells change listeners (watchers) of the reopened task', () => {
    const l = ledger();
    accept(l, 't');
    l.apply({ type: 'deadLettered', id: 't', reason: 'x', atMs: 2 });
    const seen: TaskState[] = [];
    l.onChange((r) => seen.push(r.state));
    l.apply({ type: 'replayed', ids: ['t'], reason: 'r', atMs: 3 });
    expect(seen).toEqual([TaskState.TASK_STATE_QUEUED]);
  });
});

describe('ledger cell config', () => {
  it('drain, policy and cordons apply in order, tell listeners, and round-trip through the codec', () => {
    const l = ledger();
    const seen: CellConfig[] = [];
    l.onConfig((c) => seen.push({ ...c, cordoned: new Set(c.cordoned) }));
    const cmds: LedgerCommand[] = [
      { type: 'cellDrained', drain: true, reason: 'maintenance', atMs: 1 },
      { type: 'policySet', policy: 'p2c', configJson: '{}', atMs: 2 },
      { type: 'agentCordoned', agentId: 'a-1', cordon: true, atMs: 3 },
      { type: 'agentCordoned', agentId: 'a-2', cordon: true, atMs: 3 },
      { type: 'agentCordoned', agentId: 'a-1', cordon: false, atMs: 4 },
      { type: 'cellDrained', drain: false, reason: 'ignored when lifting', atMs: 5 },
    ];
    for (const c of decodeCommands(encodeCommands(cmds))) l.apply(c);
    expect(seen).toHaveLength(6);
    expect(seen[0]).toMatchObject({ draining: true, drainReason: 'maintenance', policy: '' });
    expect(l.config).toEqual({
      draining: false,
      drainReason: '',
      policy: 'p2c',
      policyConfigJson: '{}',
      cordoned: new Set(['a-2']),
      versionRamps: new Map(),
    });
    l.apply({ type: 'policySet', policy: '', configJson: 'dropped with the policy', atMs: 6 });
    expect(l.config).toMatchObject({ policy: '', policyConfigJson: '' });
  });

  it('holds at most MAX_CORDONED agents, answering `full` past it', () => {
    const l = ledger();
    for (let i = 0; i < MAX_CORDONED; i++) l.apply({ type: 'agentCordoned', agentId: `a${i}`, cordon: true, atMs: 1 });
    expect(l.apply({ type: 'agentCordoned', agentId: 'one-more', cordon: true, atMs: 1 })[0]).toEqual({
      ok: false,
      id: 'one-more',
      why: 'full',
    });
    // Cordoning one already cordoned is not growth.
    expect(l.apply({ type: 'agentCordoned', agentId: 'a0', cordon: true, atMs: 1 })[0]?.ok).toBe(true);
    expect(l.config.cordoned.size).toBe(MAX_CORDONED);
  });

  it('is in the snapshot: a restored ledger has the config and tells config listeners', () => {
    const a = ledger();
    a.apply({ type: 'cellDrained', drain: true, reason: 'why', atMs: 1 });
    a.apply({ type: 'policySet', policy: 'least-loaded', configJson: '', atMs: 1 });
    a.apply({ type: 'agentCordoned', agentId: 'x', cordon: true, atMs: 1 });
    const b = ledger();
    let told: CellConfig | undefined;
    b.onConfig((c) => (told = c));
    b.restore(a.snapshot());
    expect(b.config).toEqual(a.config);
    expect(told).toBe(b.config);
  });
});
