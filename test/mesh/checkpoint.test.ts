// Checkpoints in the home: the ledger's `checkpointed` transition (only the
// current attempt, seq only grows, data dropped at the end, kept through a
// snapshot and the log codec) and the home leader's coalescing (at most one
// log entry per task per interval, the latest winning, flushed ahead of the
// next attempt's dispatch).
import { describe, expect, it } from 'vitest';
import { Durability, TaskSpec, TaskState, type TaskCheckpoint } from '../../src/gen/meshlb/v1/task.js';
import { HomeCheckpoints, resumableOf, type CheckpointHost } from '../../src/mesh/home-checkpoints.js';
import { decodeCommands, encodeCommands } from '../../src/mesh/ledger-codec.js';
import { Ledger, toProtoTask, type LedgerCommand } from '../../src/mesh/ledger.js';
import { resolveSettings } from '../../src/mesh/settings.js';
import { VirtualScheduler } from '../../src/mesh/virtual-scheduler.js';
import { DEFAULTS } from '../../src/topology/defaults.js';
import { logger } from '../../src/util/log.js';
import type { WorkItem } from '../../src/mesh/types.js';

const spec = (p: Partial<TaskSpec> = {}): TaskSpec => TaskSpec.fromPartial({ kind: 'k', ...p });
const cp = (id: string, attempt: number, seq: number, data = `d${seq}`): TaskCheckpoint => ({
  taskId: id,
  attempt,
  data: Buffer.from(data),
  progress: seq / 10,
  seq,
  atUnixMs: 0,
  sizeBytes: 0,
});
const ledger = () => new Ledger({ retention: 100, defaultMaxAttempts: 3 });
const accept = (l: Ledger, id: string, s = spec()) =>
  l.apply({ type: 'accepted', tasks: [{ id, spec: s, homeCell: '/', atMs: 1 }] })[0]!;
const dispatch = (l: Ledger, id: string, attempt: number) =>
  l.apply({ type: 'dispatched', refs: [{ id, attempt }], atMs: 2 })[0]!;
const save = (l: Ledger, c: TaskCheckpoint, atMs = 10) => l.apply({ type: 'checkpointed', checkpoint: c, atMs })[0]!;

describe('the ledger keeps the latest checkpoint of the current attempt', () => {
  it('refuses one before any attempt, of an older attempt, or older within the attempt; keeps it through a retry', () => {
    const l = ledger();
    accept(l, 't');
    expect(save(l, cp('t', 0, 1))).toMatchObject({ ok: false, why: 'stale' });
    expect(save(l, cp('nope', 1, 1))).toMatchObject({ ok: false, why: 'unknown' });
    dispatch(l, 't', 1);
    expect(save(l, cp('t', 1, 2), 100)).toMatchObject({ ok: true });
    expect(save(l, cp('t', 1, 1))).toMatchObject({ ok: false, why: 'stale' }); // older seq: never overwrites
    expect(l.get('t')!.checkpoint).toMatchObject({ attempt: 1, seq: 2, sizeBytes: 2, atUnixMs: 100 });
    // The attempt failed: while the task waits for its next attempt, that attempt's late checkpoint still counts.
    l.apply({ type: 'attemptFailed', id: 't', attempt: 1, reason: 'lost', counted: true, lapse: true, atMs: 3 });
    expect(l.get('t')!.state).toBe(TaskState.TASK_STATE_QUEUED);
    expect(save(l, cp('t', 1, 3))).toMatchObject({ ok: true });
    dispatch(l, 't', 2);
    // Attempt 2 is out: attempt 1 can no longer write.
    expect(save(l, cp('t', 1, 9))).toMatchObject({ ok: false, why: 'stale' });
    expect(l.get('t')!.checkpoint).toMatchObject({ attempt: 1, seq: 3 });
    expect(save(l, cp('t', 2, 1))).toMatchObject({ ok: true });
    expect(l.get('t')!.checkpoint).toMatchObject({ attempt: 2, seq: 1 });
  });

  it('drops the data when the task ends, keeps its figures; refuses checkpoints after', () => {
    const l = ledger();
    accept(l, 't');
    dispatch(l, 't', 1);
    save(l, cp('t', 1, 1, 'x'.repeat(1000)));
    l.apply({ type: 'cancelled', id: 't', reason: 'no', atMs: 5 });
    const c = l.get('t')!.checkpoint!;
    expect(c.data.length).toBe(0);
    expect(c.sizeBytes).toBe(1000);
    expect(save(l, cp('t', 1, 2))).toMatchObject({ ok: false, why: 'terminal' });
    expect(resumableOf(l.get('t'))).toBeUndefined();
    // Replayed, it starts over: no checkpoint to resume from, until its new attempt saves one.
    l.apply({ type: 'replayed', ids: ['t'], reason: 'again', atMs: 6 });
    expect(resumableOf(l.get('t'))).toBeUndefined();
    dispatch(l, 't', 2);
    save(l, cp('t', 2, 1, ''));
    expect(resumableOf(l.get('t'))).toMatchObject({ attempt: 2, seq: 1, sizeBytes: 0 }); // empty data is data
  });

  it('goes through a snapshot and the log codec unchanged; the public record shows no bytes', () => {
    const l = ledger();
    accept(l, 't');
    dispatch(l, 't', 1);
    const cmd: LedgerCommand = { type: 'checkpointed', checkpoint: cp('t', 1, 4, 'state'), atMs: 42 };
    const [decoded] = decodeCommands(encodeCommands([cmd]));
    expect(decoded).toEqual(cmd);
    l.apply(decoded!);
    const copy = ledger();
    copy.restore(l.snapshot());
    expect(copy.get('t')!.checkpoint).toEqual(l.get('t')!.checkpoint);
    expect(Buffer.from(copy.get('t')!.checkpoint!.data).toString()).toBe('state');
    const pub = toProtoTask(copy.get('t')!).checkpoint!;
    expect(pub).toMatchObject({ attempt: 1, seq: 4, sizeBytes: 5, atUnixMs: 42 });
    expect(pub.data.length).toBe(0);
  });
});

/** A home leader with a log that commits after `commitMs` (virtual time), counting proposals. */
function home(opts: { intervalMs?: number; maxBytes?: number; commitMs?: number } = {}) {
  const scheduler = new VirtualScheduler(1000);
  const l = ledger();
  const settings = resolveSettings(DEFAULTS, {
    checkpointIntervalMs: opts.intervalMs ?? 500,
    ...(opts.maxBytes !== undefined ? { checkpointMaxBytes: opts.maxBytes } : {}),
  });
  const proposed: LedgerCommand[] = [];
  const host: CheckpointHost = {
    ledger: l,
    settings,
    scheduler,
    log: logger({ component: 'test' }),
    d: { leading: () => true },
    commit(cmd, logged, then) {
      expect(logged).toBe(true);
      proposed.push(cmd);
      scheduler.setTimer(opts.commitMs ?? 5, () => then?.(l.apply(cmd)));
    },
  };
  const h = new HomeCheckpoints(host);
  const run = (ms: number) => {
    scheduler.advance(ms);
    scheduler.runDeferred();
  };
  return { scheduler, l, h, proposed, run };
}

describe('the home logs at most one checkpoint per task per interval, the latest winning', () => {
  it('coalesces a fast agent: 1 entry at once, then 1 per interval carrying the newest', () => {
    const { l, h, proposed, run } = home();
    accept(l, 't');
    dispatch(l, 't', 1);
    // 50 checkpoints, one every 10 ms, over 500 ms.
    for (let i = 1; i <= 50; i++) {
      h.offer(cp('t', 1, i));
      run(10);
    }
    run(1000);
    // The first at once, then at 500 ms the newest waiting one (seq 50 came at 490 ms).
    expect(proposed.map((c) => (c.type === 'checkpointed' ? c.checkpoint.seq : -1))).toEqual([1, 50]);
    expect(l.get('t')!.checkpoint!.seq).toBe(50);
    expect(h.stats).toMatchObject({ received: 50, recorded: 2, coalesced: 48 });
    expect(h.waiting).toBe(0);
  });

  it('hands what waits to the next dispatch (logged ahead of it), and drops stale and oversize ones', () => {
    const { l, h, proposed, run } = home({ maxBytes: 100 });
    accept(l, 't');
    dispatch(l, 't', 1);
    h.offer(cp('t', 1, 1));
    h.offer(cp('t', 1, 2));
    h.offer(cp('t', 1, 3, 'y'.repeat(101))); // over the home's limit
    h.offer(cp('t', 2, 1)); // not the current attempt
    expect(h.stats).toMatchObject({ oversize: 1, stale: 1 });
    const item = { taskId: 't' } as WorkItem;
    const before = h.takePending([item, { taskId: 'other' } as WorkItem]);
    expect(before).toHaveLength(1);
    expect(before[0]).toMatchObject({ type: 'checkpointed', checkpoint: { seq: 2 } });
    expect(h.takePending([item])).toEqual([]);
    run(2000);
    expect(proposed).toHaveLength(1); // seq 1 only: seq 2 went with the dispatch
  });

  it('applies checkpoints of durability NONE tasks at once, without the log', () => {
    const { l, h, proposed } = home();
    accept(l, 'n', spec({ durability: Durability.DURABILITY_NONE }));
    dispatch(l, 'n', 1);
    for (let i = 1; i <= 5; i++) h.offer(cp('n', 1, i));
    expect(proposed).toHaveLength(0);
    expect(l.get('n')!.checkpoint!.seq).toBe(5);
  });
});
