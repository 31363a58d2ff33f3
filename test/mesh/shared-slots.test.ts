// An agent serving several kinds shares its slots between them. A slot freed
// by one kind must be usable by another at once. Found by the mesh simulator
// (npm run sim:mesh, seed 57 with --faults 0): the node's picker counted each
// kind's credit from the shared free count at its last rebuild, a result of
// kind a gave its credit back to a only, and queued tasks of kind b waited
// beside the idle agent until some unrelated event rebuilt the picker.
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
name: shared
tiers: { node: { policy: least-loaded } }
addressing: { host: 127.0.0.1, basePort: 20000 }
cells: { name: /, children: [{ name: r, children: [{ name: z, children: [{ name: n }] }] }] }
`);

describe('an agent of two kinds with one slot', () => {
  it('takes the queued task of kind b as soon as its task of kind a ends', async () => {
    const T0 = 1_000_000;
    const vs = new VirtualScheduler(T0);
    const rng = new Rng(5);
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
