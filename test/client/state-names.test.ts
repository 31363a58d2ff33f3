// The client SDK gives task states by name beside the protocol's numbers: a
// record printed or logged says `completed`, not 4 (submit's result, get,
// cancel, watch and waitForResult alike), and an agent's taskEnd names the
// result status.
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { resultStatusName, ResultStatus } from '../../src/agent/index.js';
import { TaskState } from '../../src/client/index.js';
import { useClientFixture } from '../helpers/client-fixture.js';
import { waitFor } from '../helpers/wait.js';

const { startNode, newClient } = useClientFixture(11);

describe('task states by name', () => {
  it('submit, get, watch, waitForResult and cancel name the state', async () => {
    const node = await startNode();
    const c = newClient({ address: node.address });
    const sub = await c.submit({ kind: 'echo' });
    expect(sub).toMatchObject({ state: TaskState.TASK_STATE_QUEUED, stateName: 'queued' });
    const got = await c.get(sub.taskId);
    expect(got.stateName).toBe('queued');
    expect(inspect(got)).toContain("stateName: 'queued'");
    const names: string[] = [];
    const watched = (async () => {
      for await (const t of c.watch(sub.taskId)) names.push(t.stateName);
    })();
    const waited = c.waitForResult(sub.taskId, { timeoutMs: 5000 });
    await waitFor(() => node.watcherCount(sub.taskId) === 2 && names.length === 1, { what: 'both watches open' });
    node.setState(sub.taskId, TaskState.TASK_STATE_RUNNING);
    node.setState(sub.taskId, TaskState.TASK_STATE_COMPLETED);
    await watched;
    expect(names).toEqual(['queued', 'running', 'completed']);
    expect((await waited).stateName).toBe('completed');
    const other = await c.submit({ kind: 'echo' });
    expect((await c.cancel(other.taskId, 'no longer needed')).stateName).toBe('cancelled');
  });

  it('result statuses by name', () => {
    expect(resultStatusName(ResultStatus.RESULT_STATUS_OK)).toBe('ok');
    expect(resultStatusName(ResultStatus.RESULT_STATUS_ERROR)).toBe('error');
    expect(resultStatusName(ResultStatus.RESULT_STATUS_FATAL)).toBe('fatal');
    expect(resultStatusName(99 as ResultStatus)).toBe('unspecified');
  });
});
