// Kinds that share an agent's slots take turns by age, not by which kind first entered the queue
// (src/mesh/kind-order.ts; docs/policies.md, finding 6). Before, a pump served kinds in the order they
// first entered its queue, so the first kind took every shared slot it freed while it had work: here
// `a` entered first, and `b`'s older task waited behind `a`'s newer one.
import { describe, expect, it } from 'vitest';
import { TaskSpec, TaskState } from '../../src/gen/meshlb/v1/task.js';
import { VirtualScheduler } from '../../src/mesh/virtual-scheduler.js';
import { parseTopology } from '../../src/topology/parse.js';
import { Rng } from '../../src/util/rng.js';
import { SimAgent } from './sim/agent.js';
import { Checker } from './sim/invariants.js';
import { SimMesh } from './sim/mesh.js';
import { SimNet } from './sim/net.js';
import { settle, SIM_CELL_OPTIONS } from './sim/sim.js';

const TOPO = parseTopology(`
name: kinds
tiers: { node: { policy: least-loaded } }
addressing: { host: 127.0.0.1, basePort: 20000 }
cells: { name: /, children: [{ name: r, children: [{ name: z, children: [{ name: n }] }] }] }
`);

describe('a pump over kinds that share slots', () => {
  it('hands a freed slot to the kind whose task waited longest, not the kind that entered the queue first', async () => {
    const T0 = 1_000_000;
    const vs = new VirtualScheduler(T0);
    const rng = new Rng(11);
    const net = new SimNet(vs, rng.fork(), [1, 1]);
    const checker = new Checker(() => vs.now() - T0);
    const mesh = new SimMesh({ topology: TOPO, vs, net, rng: rng.fork(), cellOptions: SIM_CELL_OPTIONS });
    const shape = { id: 'x', node: '/r/z/n', kinds: ['a', 'b'], labels: [], slots: 1, serviceMs: 5000, failRate: 0 };
    const agent = new SimAgent(shape, net, rng.fork(), mesh.mesh, () => mesh.endpointsOf('/r/z/n'), checker);
    agent.start();
    const run = async (ms: number): Promise<void> => {
      for (let t = 0; t < ms; t += 5) {
        vs.advance(5);
        await settle(vs);
      }
    };
    await run(500); // linked, welcomed, summaries up
    const node = mesh.leaderOf('/r/z/n')!.cell;
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
