// An attempt a reconnecting agent names in its hello holds its slot for a
// fresh lease's length, even when the node had it among the dead session's
// orphans with little of its lease left. Found by the mesh simulator
// (npm run sim:mesh, seed 49): the orphan's old deadline released the slot
// while the agent still ran the attempt, and the node filled it: the agent
// was given more than its slots.
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
name: carry-extend
tiers: { node: { policy: least-loaded } }
addressing: { host: 127.0.0.1, basePort: 20000 }
cells: { name: /, children: [{ name: r, children: [{ name: z, children: [{ name: n }] }] }] }
`);
const NODE = '/r/z/n';

describe('an orphaned attempt the reconnecting agent still runs', () => {
  it('keeps its slot past the old lease: nothing lands beside it', async () => {
    const T0 = 1_000_000;
    const vs = new VirtualScheduler(T0);
    const rng = new Rng(3);
    const net = new SimNet(vs, rng.fork(), [1, 1]);
    const checker = new Checker(() => vs.now() - T0);
    const mesh = new SimMesh({ topology: TOPO, vs, net, rng: rng.fork(), cellOptions: SIM_CELL_OPTIONS });
    // One slot; an attempt runs 4-36 s.
    const shape = { id: 'x', node: NODE, kinds: ['k'], labels: [], slots: 1, serviceMs: 20_000, failRate: 0 };
    const agent = new SimAgent(shape, net, rng.fork(), mesh.mesh, () => mesh.endpointsOf(NODE), checker);
    agent.start();
    const step = async (): Promise<void> => {
      vs.advance(5);
      await settle(vs);
    };
    const runUntil = async (cond: () => boolean, limitMs: number, what: string): Promise<void> => {
      for (let t = 0; !cond(); t += 5) {
        if (t > limitMs) throw new Error(`${limitMs} virtual ms passed waiting for ${what}`);
        await step();
      }
    };
    const node = mesh.leaderOf(NODE)!.cell;
    await runUntil(() => node.agents!.byId.get('x') !== undefined, 2000, 'the agent connected');
    // a's lease: 2 s + 0.5 s slack.
    const [a] = await node.submit([TaskSpec.fromPartial({ kind: 'k', timeoutMs: 2000 })]);
    const sentAt = vs.now();
    await runUntil(() => agent.held === 1, 500, 'a running');
    const [nodeId, zoneId] = [mesh.endpointsOf(NODE)[0]!, mesh.endpointsOf('/r/z')[0]!];
    // The agent drops off its node (declared dead after 1.2 s); the node is cut from its zone,
    // so what it cannot place waits there.
    net.partition('x', nodeId, true);
    net.partition(nodeId, zoneId, true);
    await runUntil(() => node.agents!.byId.get('x')?.dead ?? true, 3000, 'the agent declared dead');
    const [b] = await node.submit([TaskSpec.fromPartial({ kind: 'k' })]);
    // Its connection resets; it reconnects while a's orphan still has a little lease left.
    net.breakOne('x', nodeId, 'connection reset');
    net.partition('x', nodeId, false);
    net.partition(nodeId, zoneId, false);
    await runUntil(() => agent.stats.sessions === 2, 1000, 'the agent welcomed again');
    expect(vs.now() - sentAt).toBeLessThan(2500);
    // Past the old lease's end: the slot is still a's.
    await runUntil(() => vs.now() - sentAt > 3200, 2000, 'past the old lease');
    expect(agent.held).toBe(1);
    expect(node.agents!.byId.get('x')!.carried.size).toBe(1);
    expect(agent.stats.refused).toBe(0);
    expect(checker.violations).toEqual([]);
    expect(node.ledger.get(b!.id)!.state).not.toBe(TaskState.TASK_STATE_COMPLETED); // not run beside a
    expect(node.ledger.get(a!.id)!.state).not.toBe(TaskState.TASK_STATE_COMPLETED);
    mesh.close();
  });
});
