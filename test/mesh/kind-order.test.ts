// Kinds that share an agent's slots take turns by age, not by which kind first entered the queue
// (src/mesh/kind-order.ts; docs/policies.md, finding 6). Before, a pump served kinds in the order they
// first entered its queue, so the first kind took every shared slot it freed while it had work: here
// `a` entered first, and `b`'s older task waited behind `a`'s newer one.
import { describe, expect, it } from 'vitest';
import { TaskSpec, TaskState } from '../../src/gen/meshlb/v1/task.js';
import { twoKindAgent } from './sim/two-kind-agent.js';

describe('a pump over kinds that share slots', () => {
  it('hands a freed slot to the kind whose task waited longest, not the kind that entered the queue first', async () => {
    const { node, checker, mesh, run } = await twoKindAgent(11); // linked, welcomed, summaries up
    const state = (id: string) => node.ledger.get(id)!.state;
    const submit = async (kind: string): Promise<string> =>
      (await node.submit([TaskSpec.fromPartial({ kind })]))[0]!.id;
    // `running` takes the one slot (it runs 1-9 s); `first` queues behind it, so kind a enters the queue
    // before kind b, and is cancelled there: kind a stays known to the queue, with nothing queued.
    const running = await submit('a');
    await run(20);
    expect(state(running)).toBe(TaskState.TASK_STATE_DISPATCHED);
    const first = await submit('a');
    await run(20);
    expect(state(first)).toBe(TaskState.TASK_STATE_QUEUED);
    await node.cancel(first, 'test');
    await run(20);
    // b's task queues, then a newer one of a.
    const older = await submit('b');
    await run(50);
    const newer = await submit('a');
    await run(50);
    expect([state(older), state(newer)]).toEqual([TaskState.TASK_STATE_QUEUED, TaskState.TASK_STATE_QUEUED]);
    // The slot comes free (`running` cancelled: the agent stops it within ~20 ms): the older task takes it.
    await node.cancel(running, 'test');
    await run(60);
    expect(state(running)).toBe(TaskState.TASK_STATE_CANCELLED);
    expect(state(older)).toBe(TaskState.TASK_STATE_DISPATCHED);
    expect(state(newer)).toBe(TaskState.TASK_STATE_QUEUED);
    expect(checker.violations).toEqual([]);
    mesh.close();
  });
});
