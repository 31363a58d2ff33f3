// A preempted attempt its agent has not answered within the grace keeps its
// slot until the agent answers, even when a load says the agent runs nothing:
// the agent may not have read the assignment yet when it wrote that load.
// Found by the mesh simulator (npm run sim:mesh -- --seed 49 --no-raft, with
// the preemption workload on): an agent paused with the victim's assignment unread
// woke, sent loads saying 0 before reading it, the node freed the victim's
// slot and filled it, and the agent was given more than its slots. Nor does
// the slot stay held for good when the agent never answers: its lease ends.
import { describe, expect, it } from 'vitest';
import { ConnectRequest, ConnectResponse } from '../../src/gen/meshlb/v1/agent.js';
import { Priority, TaskSpec } from '../../src/gen/meshlb/v1/task.js';
import { VirtualScheduler } from '../../src/mesh/virtual-scheduler.js';
import { parseTopology } from '../../src/topology/parse.js';
import { Rng } from '../../src/util/rng.js';
import { SimMesh } from './sim/mesh.js';
import { SimNet } from './sim/net.js';
import { settle, SIM_CELL_OPTIONS } from './sim/sim.js';

const TOPO = parseTopology(`
name: preempt-carry
tiers: { node: { policy: node-score } }
preemption: { minPriority: critical, graceMs: 200, maxPerSecond: 10 }
addressing: { host: 127.0.0.1, basePort: 20000 }
cells: { name: /, children: [{ name: r, children: [{ name: z, children: [{ name: n }] }] }] }
`);
const NODE = '/r/z/n';

describe('a preempted attempt past its grace', () => {
  it('holds its slot through a load that does not count it: nothing is assigned beside it', async () => {
    const T0 = 1_000_000;
    const vs = new VirtualScheduler(T0);
    const rng = new Rng(5);
    const net = new SimNet(vs, rng.fork(), [1, 1]);
    const mesh = new SimMesh({ topology: TOPO, vs, net, rng: rng.fork(), cellOptions: SIM_CELL_OPTIONS });
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
    // A hand-driven agent of one slot: it reads nothing it is sent (paused), it only sends loads.
    const assigned: string[] = [];
    let preempted = 0;
    let welcomed = false;
    const call = net.open('x', mesh.endpointsOf(NODE)[0]!, 'agent', ConnectRequest, ConnectResponse);
    call.on('data', (m: ConnectResponse) => {
      if (m.msg?.$case === 'welcome') welcomed = true;
      if (m.msg?.$case === 'assignments') for (const d of m.msg.value.tasks) assigned.push(d.taskId);
      if (m.msg?.$case === 'preemptions') preempted += m.msg.value.items.length;
    });
    const { name, id: meshId } = mesh.mesh;
    call.write({
      msg: {
        $case: 'hello',
        value: {
          agentId: 'x',
          kinds: ['k'],
          labels: [],
          slots: 1,
          version: 'sim',
          mesh: name,
          meshId,
          nodeCell: NODE,
          running: [],
        },
      },
    });
    const load = (inFlight: number): boolean =>
      call.write({ msg: { $case: 'load', value: { inFlight, cpu: 0.5, memory: 0.5, gpu: 0, draining: false } } });
    await runUntil(() => welcomed, 1000, 'the welcome');
    const node = mesh.leaderOf(NODE)!.cell;
    const [low] = await node.submit([TaskSpec.fromPartial({ kind: 'k', priority: Priority.PRIORITY_LOW })]);
    await runUntil(() => assigned.length === 1, 1000, 'the low task assigned');
    expect(assigned[0]).toBe(low!.id);
    const [crit] = await node.submit([TaskSpec.fromPartial({ kind: 'k', priority: Priority.PRIORITY_CRITICAL })]);
    await runUntil(() => preempted === 1, 1000, 'the low task preempted');
    // The grace (200 ms) and its slack (500 ms) pass unanswered: the node stops waiting for the low
    // task, but the agent may run it. Heartbeats meanwhile, as a paused agent's would be, then loads
    // written before it read anything: they say it runs nothing.
    const session = node.agents!.byId.get('x')!;
    for (let t = 0; t < 1000; t += 100) {
      if (t < 700) load(1);
      else load(0);
      for (let i = 0; i < 20; i++) await step();
    }
    expect(session.carried.size).toBe(1);
    expect(session.inFlight).toBe(1);
    expect(assigned).toEqual([low!.id]); // the critical task waits for the slot
    // Its agent never answers: the slot is held until the low task's lease would have ended (3 s + 0.5 s
    // slack from its assignment), then freed, and the critical task gets it.
    await runUntil(
      () => {
        if (vs.now() % 100 === 0) load(1);
        return assigned.length === 2;
      },
      4000,
      'the slot freed at the lease end',
    );
    expect(assigned).toEqual([low!.id, crit!.id]);
    expect(session.carried.size).toBe(0);
    call.end();
    mesh.close();
  });
});
