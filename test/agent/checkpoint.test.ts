// The agent SDK's checkpoints against a fake node: task.checkpoint() resolves
// on the node's ack and rejects with its reason; an attempt starts from the
// checkpoint its Dispatch carries (resumeFrom); a hand-back the node asks for
// (a preemption, a drain with migration) aborts task.handBack and ends the
// attempt RESULT_STATUS_HANDED_BACK, by the handler or past the grace.
import { afterEach, describe, expect, it } from 'vitest';
import {
  Agent,
  CheckpointError,
  HandBackRequest,
  ResultStatus,
  resultStatusName,
  type AgentTask,
} from '../../src/agent/index.js';
import { dispatch, FakeNode } from '../helpers/fake-node.js';
import { waitFor } from '../helpers/wait.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(handler: (t: AgentTask) => unknown) {
  const node = await FakeNode.start();
  cleanups.push(() => node.stop());
  const agent = new Agent({ address: node.address, agentId: 'a1', slots: 2 }).handle('long', async (t) => handler(t));
  cleanups.push(() => agent.close());
  await agent.start();
  return { node, agent, s: node.session('a1')! };
}

describe('agent checkpoints', () => {
  it('sends a checkpoint and resolves on the node’s ack; rejects with the node’s reason when refused', async () => {
    const outcomes: string[] = [];
    const { s, agent } = await setup(async (t) => {
      await t.checkpoint({ step: 1 }, { progress: 0.5 });
      outcomes.push('first acked');
      try {
        await t.checkpoint(Buffer.alloc(64));
      } catch (err) {
        outcomes.push(err instanceof CheckpointError ? `refused: ${err.message}` : 'other');
      }
      return 'done';
    });
    s.assign([dispatch('t1', 'long')]);
    const first = await waitFor(() => s.checkpoints[0], { what: 'the first checkpoint' });
    expect(first).toMatchObject({ taskId: 't1', attempt: 1, seq: 1, progress: 0.5 });
    expect(JSON.parse(Buffer.from(first.data).toString())).toEqual({ step: 1 });
    s.ackCheckpoints([{ taskId: 't1', attempt: 1, seq: 1, accepted: true, error: '' }]);
    const second = await waitFor(() => s.checkpoints[1], { what: 'the second checkpoint' });
    expect(second.seq).toBe(2);
    s.ackCheckpoints([{ taskId: 't1', attempt: 1, seq: 2, accepted: false, error: 'over the limit of 32 bytes' }]);
    await waitFor(() => s.resultFor('t1'), { what: 'the result' });
    expect(outcomes).toEqual(['first acked', 'refused: over the limit of 32 bytes']);
    expect(agent.stats).toMatchObject({ checkpointsSent: 2, checkpointsAccepted: 1, checkpointsRefused: 1 });
  });

  it('starts an attempt from the checkpoint its dispatch carries', async () => {
    const seen: (string | undefined)[] = [];
    const { s } = await setup((t) => {
      seen.push(t.resumeFrom?.toString());
      return t.resumeProgress;
    });
    const d = dispatch('t2', 'long', '', 3);
    d.checkpoint = {
      taskId: 't2',
      attempt: 2,
      data: Buffer.from('step=7'),
      progress: 0.7,
      seq: 9,
      atUnixMs: 1,
      sizeBytes: 6,
    };
    s.assign([dispatch('t1', 'long'), d]);
    await waitFor(() => (s.results.length === 2 ? true : undefined), { what: 'two results' });
    expect(seen.sort()).toEqual(['step=7', undefined].sort());
    expect(Buffer.from(s.resultFor('t2')!.output).toString()).toBe('0.7');
  });

  it('a hand-back asked by the node aborts task.handBack; a handler that then throws hands the attempt back', async () => {
    let reason: unknown;
    const { s, agent } = await setup(
      (t) =>
        new Promise((_resolve, reject) => {
          t.handBack.addEventListener('abort', () => {
            reason = t.handBack.reason;
            void t.checkpoint('saved').catch(() => undefined);
            reject(new Error('stopping'));
          });
        }),
    );
    const statuses: string[] = [];
    agent.on('taskEnd', (_t, _st, name) => statuses.push(name));
    s.assign([dispatch('t1', 'long')]);
    await waitFor(() => (agent.inFlight === 1 ? true : undefined), { what: 'the task running' });
    s.handBack([{ taskId: 't1', attempt: 1, slots: 0 }], 'preempted', 10_000);
    const r = await waitFor(() => s.resultFor('t1'), { what: 'the hand-back' });
    expect(r.status).toBe(ResultStatus.RESULT_STATUS_HANDED_BACK);
    expect(r.error).toBe('handed back: preempted');
    expect(reason).toBeInstanceOf(HandBackRequest);
    expect(reason).toMatchObject({ why: 'preempted', graceMs: 10_000 });
    expect(s.checkpoints.map((c) => Buffer.from(c.data).toString())).toEqual(['saved']);
    expect(statuses).toEqual(['handed_back']);
    expect(resultStatusName(ResultStatus.RESULT_STATUS_HANDED_BACK)).toBe('handed_back');
    expect(agent.stats).toMatchObject({ tasksHandedBack: 1, tasksFailed: 0 });
  });

  it('past the grace the agent hands the attempt back itself and aborts its signal; a handler that returns completes', async () => {
    let aborted = false;
    const { s } = await setup(
      (t) =>
        new Promise((resolve) => {
          if (t.id === 'slow') t.signal.addEventListener('abort', () => (aborted = true));
          // 'quick' finishes its work when asked: a value is a completion, not a hand-back.
          else t.handBack.addEventListener('abort', () => resolve('finished anyway'));
        }),
    );
    s.assign([dispatch('slow', 'long'), dispatch('quick', 'long')]);
    await waitFor(() => (s.started.length === 2 ? true : undefined), { what: 'both started' });
    s.handBack(
      [
        { taskId: 'slow', attempt: 1, slots: 0 },
        { taskId: 'quick', attempt: 1, slots: 0 },
      ],
      'preempted',
      50,
    );
    const slow = await waitFor(() => s.resultFor('slow'), { what: 'the hand-back after the grace' });
    expect(slow.status).toBe(ResultStatus.RESULT_STATUS_HANDED_BACK);
    expect(aborted).toBe(true);
    expect(s.resultFor('quick')!.status).toBe(ResultStatus.RESULT_STATUS_OK);
  });

  it('a preemption (docs/agent-protocol.md 7a) aborts task.handBack too: a migrating handler checkpoints first', async () => {
    const order: string[] = [];
    const { s } = await setup(
      (t) =>
        new Promise((_resolve, reject) => {
          t.handBack.addEventListener('abort', () => {
            order.push(`handBack: ${(t.handBack.reason as HandBackRequest).why}`);
            void t.checkpoint('before preemption').catch(() => undefined);
          });
          t.signal.addEventListener('abort', () => {
            order.push(`signal: ${t.preempted?.byTaskId}`);
            reject(new Error('preempted'));
          });
        }),
    );
    s.assign([dispatch('t1', 'long')]);
    await waitFor(() => (s.started.length === 1 ? true : undefined), { what: 'the task started' });
    const ref = { taskId: 't1', attempt: 1, slots: 0 };
    s.send({
      msg: {
        $case: 'preemptions',
        value: { items: [{ ref, reason: 'preempted by task c', graceMs: 1000, byTaskId: 'c' }] },
      },
    });
    const r = await waitFor(() => s.resultFor('t1'), { what: 'the answer' });
    expect(order).toEqual(['handBack: preempted by task c', 'signal: c']);
    expect(s.checkpoints.map((c) => Buffer.from(c.data).toString())).toEqual(['before preemption']);
    // Not an error of the task: the node reports it home as preempted, uncounted.
    expect(r.status).toBe(ResultStatus.RESULT_STATUS_HANDED_BACK);
  });

  it('a drain with migration hands every running attempt back, then the agent leaves', async () => {
    const { s, agent } = await setup(
      (t) =>
        new Promise((_resolve, reject) => {
          t.handBack.addEventListener('abort', () => reject(new Error('migrating')));
        }),
    );
    s.assign([dispatch('t1', 'long'), dispatch('t2', 'long')]);
    await waitFor(() => (agent.inFlight === 2 ? true : undefined), { what: 'both running' });
    s.drain('node maintenance', true, 5000);
    await waitFor(() => (s.results.length === 2 ? true : undefined), { what: 'both handed back' });
    expect(s.results.every((r) => r.status === ResultStatus.RESULT_STATUS_HANDED_BACK)).toBe(true);
    expect(s.results[0]!.error).toBe('handed back: node maintenance');
    await waitFor(() => (agent.state === 'closed' ? true : undefined), { what: 'the agent closed' });
  });
});
