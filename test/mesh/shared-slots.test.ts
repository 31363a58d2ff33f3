// An agent serving several kinds shares its slots between them. A slot freed
// by one kind must be usable by another at once. Found by the mesh simulator
// (npm run sim:mesh, seed 57 with --faults 0): the node's picker counted each
// kind's credit from the shared free count at its last rebuild, a result of
// kind a gave its credit back to a only, and queued tasks of kind b waited
// beside the idle agent until some unrelated event rebuilt the picker.
import { describe, expect, it } from 'vitest';
import { TaskSpec, TaskState } from '../../src/gen/meshlb/v1/task.js';
import { twoKindAgent } from './sim/two-kind-agent.js';

describe('an agent of two kinds with one slot', () => {
  it('takes the queued task of kind b as soon as its task of kind a ends', async () => {
    const { node, checker, mesh, run } = await twoKindAgent(5); // linked, welcomed, summaries up
    const state = (id: string) => node.ledger.get(id)!.state;
    const [a] = await node.submit([TaskSpec.fromPartial({ kind: 'a' })]);
    // b comes while a runs (a takes 1-9 s) and after the picker's refresh period
    // (250 ms), so the node rebuilds its picker with the agent busy.
    await run(300);
    expect(state(a!.id)).toBe(TaskState.TASK_STATE_DISPATCHED);
    const [b] = await node.submit([TaskSpec.fromPartial({ kind: 'b' })]);
    await run(20);
    expect(state(b!.id)).toBe(TaskState.TASK_STATE_QUEUED);
    // a ends (cancelled: the agent stops it and answers within ~20 ms), well inside the refresh period.
    await node.cancel(a!.id, 'test');
    await run(60);
    expect(state(a!.id)).toBe(TaskState.TASK_STATE_CANCELLED);
    expect(state(b!.id)).toBe(TaskState.TASK_STATE_DISPATCHED);
    expect(checker.violations).toEqual([]);
    mesh.close();
  });
});
