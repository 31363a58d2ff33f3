// Per-send numbers on a child link (Dispatch.send, echoed by DispatchAck.send): the
// link's bookkeeping (unacked, acked since the summary, several-slot sends) is keyed by
// the send, so when an attempt refused below is sent again under its number before the
// child's held ack of the first send came, the late ack settles the first send only. In
// session 14, keyed by `taskId#attempt`, the second send overwrote the first's entry and
// the mesh simulator found a link's unacked count above the dispatches awaiting an ack
// (`credits`). A child that predates the field (hello without send_numbers) is matched by
// attempt, as before.
import { describe, expect, it } from 'vitest';
import { Dispatch, MeshFailure, ResultStatus, TaskResult, TaskSpec } from '../../src/gen/meshlb/v1/task.js';
import { ResultKeeper } from '../../src/mesh/result-keeper.js';
import { OpenResponse, type DispatchAck, type Summary } from '../../src/gen/meshlb/v1/link.js';
import { DEFAULT_BATCHER_OPTIONS } from '../../src/mesh/batcher.js';
import { ChildLink } from '../../src/mesh/child-link.js';
import { realScheduler } from '../../src/mesh/scheduler.js';
import { FROM_PARENT, makeItem, sendCounter, type WorkItem } from '../../src/mesh/types.js';
import { decodeOpenResponse, encodeOpenResponse, relaysRaw, withSend } from '../../src/mesh/wire-codec.js';

/** A link whose writes are kept (the batcher flushes on a later turn: read them with `written()`). */
function link(numbered = true, next = sendCounter()): { l: ChildLink; out: OpenResponse[] } {
  const out: OpenResponse[] = [];
  const call = { write: (m: OpenResponse) => (out.push(m), true) };
  const l = new ChildLink(
    '/c',
    call as never,
    DEFAULT_BATCHER_OPTIONS,
    realScheduler,
    () => {},
    undefined,
    next,
    numbered,
  );
  return { l, out };
}

const summary = (free: number, seq: number): Summary =>
  ({
    cell: '/c',
    seq,
    kinds: [{ kind: 'k', freeSlots: free, totalSlots: 10, healthyAgents: 1, prefetchSlots: 0, queued: 0 }],
    queue: [],
    healthyAgents: 1,
    draining: false,
  }) as unknown as Summary;

function item(id: string, slots = 1): WorkItem {
  const spec = TaskSpec.fromPartial({ kind: 'k', slots });
  const it = makeItem(id, 1, '/', spec, FROM_PARENT, undefined, `${id}#1`, 1000, undefined, 0);
  it.via = { type: 'child', cell: '/c' };
  return it;
}

const ack = (it: WorkItem, send: number, accepted: boolean): DispatchAck => ({
  taskId: it.taskId,
  attempt: it.attempt,
  accepted,
  reason: accepted ? '' : 'buffer full',
  send,
});

/** The link's own counts agree with the sends awaiting an ack (the simulator's `credits` check). */
function consistent(l: ChildLink): void {
  expect(Object.fromEntries(l.unacked)).toEqual(Object.fromEntries(l.awaitingAck()));
}

describe('child link: per-send numbers', () => {
  it('a late accepted ack of an earlier send settles that send, not the attempt sent again since', () => {
    const { l } = link();
    l.applySummary(summary(4, 1), 0);
    const t = item('t');
    l.dispatch(t);
    const first = t.sendNo;
    // Refused below after the child accepted it (its ack held): the attempt is sent again, same number.
    l.dispatch(t);
    const second = t.sendNo;
    expect(second).not.toBe(first);
    expect(l.unacked.get('k')).toBe(2);
    consistent(l);
    expect(l.credits('k')).toBe(2);
    // The held ack of the first send comes now.
    expect(l.acked(ack(t, first, true))).toBe(t);
    expect(l.unacked.get('k')).toBe(1);
    expect(l.ackedSinceSummary.get('k')).toBe(1);
    consistent(l);
    // A duplicate or late answer to the first send changes nothing (before: it took the second's entry).
    expect(l.acked(ack(t, first, false))).toBeUndefined();
    expect(l.unacked.get('k')).toBe(1);
    consistent(l);
    // The second send's nack returns its credit only.
    expect(l.acked(ack(t, second, false))).toBe(t);
    expect(l.unacked.get('k')).toBeUndefined();
    expect(l.ackedSinceSummary.get('k')).toBe(1);
    expect(l.credits('k')).toBe(3);
    consistent(l);
  });

  it('an ack naming another attempt than its send, or an unknown send, is ignored', () => {
    const { l } = link();
    l.applySummary(summary(4, 1), 0);
    const t = item('t');
    const u = item('u');
    l.dispatch(t);
    expect(l.acked(ack(u, t.sendNo, true))).toBeUndefined();
    expect(l.acked(ack(t, t.sendNo + 1000, true))).toBeUndefined();
    expect(l.acked(ack(t, 0, true))).toBeUndefined();
    expect(l.unacked.get('k')).toBe(1);
    consistent(l);
  });

  it('sends of several slots: each send holds its own slots until its own ack', () => {
    const { l } = link();
    l.applySummary(summary(8, 1), 0);
    const t = item('t', 3);
    l.dispatch(t);
    const first = t.sendNo;
    l.dispatch(t);
    expect(l.unacked.get('k')).toBe(6);
    consistent(l);
    l.acked(ack(t, first, true));
    expect(l.unacked.get('k')).toBe(3);
    // A summary counts the acked send; the unacked one still counts against the roomiest agent.
    l.applySummary(summary(5, 2), 1);
    expect(l.largest('k').free).toBeLessThanOrEqual(2);
    l.acked(ack(t, t.sendNo, false));
    expect(l.unacked.get('k')).toBeUndefined();
    consistent(l);
  });

  it('numbers are unique across the links of one cell (one counter), and the written dispatch carries them', async () => {
    const next = sendCounter();
    const a = link(true, next);
    const b = link(true, next);
    a.l.applySummary(summary(4, 1), 0);
    b.l.applySummary(summary(4, 1), 0);
    const t = item('t');
    const u = item('u');
    a.l.dispatch(t);
    b.l.dispatch(u);
    a.l.dispatch(t);
    expect(new Set([t.sendNo, u.sendNo]).size).toBe(2);
    await new Promise<void>((r) => setImmediate(r));
    await new Promise<void>((r) => setImmediate(r));
    const sends = a.out.flatMap((m) => (m.msg?.$case === 'dispatches' ? m.msg.value.tasks.map((d) => d.send) : []));
    expect(sends).toHaveLength(2);
    expect(sends[1]).toBe(t.sendNo);
    expect(sends[0]).not.toBe(sends[1]);
  });

  it('a child that predates send numbers is answered by attempt; a re-send before its ack settles the earlier send', () => {
    const { l } = link(false);
    l.applySummary(summary(4, 1), 0);
    const t = item('t');
    l.dispatch(t);
    l.dispatch(t); // the earlier send counts as accepted (it was: refused past the child)
    expect(l.unacked.get('k')).toBe(1);
    expect(l.ackedSinceSummary.get('k')).toBe(1);
    consistent(l);
    expect(l.acked(ack(t, 0, false))).toBe(t);
    expect(l.unacked.get('k')).toBeUndefined();
    consistent(l);
  });
});

describe('result keeper: refusals are not written again after a break', () => {
  it('keeps results to re-send, but not a requeue: refusal (a second copy would refuse the next send)', () => {
    const keeper = new ResultKeeper(4000);
    const r = (taskId: string, meshFailure: MeshFailure): TaskResult =>
      TaskResult.fromPartial({ taskId, attempt: 1, status: ResultStatus.RESULT_STATUS_ERROR, meshFailure });
    keeper.wrote(r('refused', MeshFailure.MESH_FAILURE_REQUEUE), 0);
    keeper.wrote(r('lost', MeshFailure.MESH_FAILURE_LOST), 0);
    keeper.wrote(r('ran', MeshFailure.MESH_FAILURE_UNSPECIFIED), 0);
    keeper.broken();
    expect(keeper.takeForResend(1).recent.map((x) => x.taskId)).toEqual(['lost', 'ran']);
  });
});

describe('wire: a relayed dispatch with this link send number', () => {
  it('is written as the bytes it came as, then its new number, which wins on decode', () => {
    const sent = Dispatch.fromPartial({
      taskId: 't',
      attempt: 2,
      homeCell: '/',
      leaseMs: 5,
      send: 7,
      spec: { kind: 'k' },
    });
    const bytes = OpenResponse.encode({ msg: { $case: 'dispatches', value: { tasks: [sent] } } }).finish();
    const got = decodeOpenResponse(bytes);
    const d = got.msg?.$case === 'dispatches' ? got.msg.value.tasks[0]! : undefined;
    expect(d && relaysRaw(d)).toBe(true);
    const mine = withSend(d!, 42);
    expect(relaysRaw(mine)).toBe(true);
    expect(d!.send).toBe(7); // the decoded one is never changed in place
    const again = OpenResponse.decode(encodeOpenResponse({ msg: { $case: 'dispatches', value: { tasks: [mine] } } }));
    const back = again.msg?.$case === 'dispatches' ? again.msg.value.tasks[0]! : undefined;
    expect(Dispatch.toJSON(back!)).toEqual(Dispatch.toJSON(mine));
    expect(back!.send).toBe(42);
    expect(back!.attempt).toBe(2);
  });
});
