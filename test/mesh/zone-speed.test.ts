// A zone over real cells on virtual time places by when a task would complete
// (issue 11, the zone tier): the nodes report their agents by speed in their
// summaries (src/mesh/node-completion.ts), and zone-least-conn sends work to
// the node whose free agents are fast, not to the node with the most free
// slots. Node n1 has one agent of 4 slots at 20 ms; n2 two of 4 slots at
// 160 ms. At 25 tasks/s the fast agent alone carries the load. By load per
// slot the zone sends n2 about a third (seed 11: 32 of 100); by expected
// completion none (0 of 100). With nodes that do not report speeds (older
// peers) the zone falls back to the load rule.
import { describe, expect, it } from 'vitest';
import { Durability, TaskSpec } from '../../src/gen/meshlb/v1/task.js';
import type { SubtreeLoad } from '../../src/mesh/port.js';
import { VirtualScheduler } from '../../src/mesh/virtual-scheduler.js';
import { parseTopology } from '../../src/topology/parse.js';
import { Rng } from '../../src/util/rng.js';
import { SimAgent } from './sim/agent.js';
import { Checker } from './sim/invariants.js';
import { SimMesh } from './sim/mesh.js';
import { SimNet } from './sim/net.js';
import { settle, SIM_CELL_OPTIONS } from './sim/sim.js';

const TOPO = parseTopology(`
name: zone-speed
addressing: { host: 127.0.0.1, basePort: 21000 }
cells: { name: /, children: [{ name: r, children: [{ name: z, children: [{ name: n1 }, { name: n2 }] }] }] }
`);
const SEED = 11;

async function run(reportSpeeds: boolean) {
  const T0 = 1_000_000;
  const vs = new VirtualScheduler(T0);
  const rng = new Rng(SEED);
  const net = new SimNet(vs, rng.fork(), [1, 1]);
  const checker = new Checker(() => vs.now() - T0);
  const mesh = new SimMesh({ topology: TOPO, vs, net, rng: rng.fork(), cellOptions: SIM_CELL_OPTIONS, raft: false });
  const shape = (id: string, node: string, serviceMs: number) => ({
    id,
    node,
    kinds: ['k'],
    labels: [],
    slots: 4,
    serviceMs,
    failRate: 0,
  });
  const agents = [shape('fast', '/r/z/n1', 20), shape('slow1', '/r/z/n2', 160), shape('slow2', '/r/z/n2', 160)].map(
    (s) => new SimAgent(s, net, rng.fork(), mesh.mesh, () => mesh.endpointsOf(s.node), checker),
  );
  for (const a of agents) a.start();
  const step = async (ms: number): Promise<void> => {
    vs.advance(ms);
    await settle(vs);
  };
  const node = (path: string) => mesh.leaderOf(path)!.cell;
  for (let t = 0; !agents.every((a) => node(a.shape.node).agents?.byId.get(a.shape.id) !== undefined); t += 10) {
    if (t > 3000) throw new Error(`seed ${SEED}: agents did not connect`);
    await step(10);
  }
  if (!reportSpeeds) {
    // Nodes that predate the speed groups: their summaries carry none.
    for (const path of ['/r/z/n1', '/r/z/n2']) {
      const sessions = node(path).agents!;
      const load = sessions.load.bind(sessions);
      sessions.load = (): SubtreeLoad => ({ ...load(), speed: undefined });
    }
  }
  // Each node measures its agents before the count starts (a node's first tasks try every agent).
  const zone = mesh.leaderOf('/r/z')!.cell;
  const submit = (i: number) =>
    zone.submit([
      TaskSpec.fromPartial({ kind: 'k', durability: Durability.DURABILITY_NONE, payload: Buffer.from(`${i}`) }),
    ]);
  for (let i = 0; i < 40; i++) {
    await submit(i);
    await step(40);
  }
  await step(1000);
  const before = agents.map((a) => a.stats.completed);
  for (let i = 0; i < 100; i++) {
    await submit(100 + i);
    await step(40);
  }
  await step(1000);
  const ran = agents.map((a, i) => a.stats.completed - before[i]!);
  // What the zone holds of its nodes' summaries: their agents by speed, as the nodes measured them.
  const seen = zone.links.children!.candidates(vs.now()).map((c) => [c.id, c.slots.get('k')?.speed] as const);
  mesh.close();
  return { fast: ran[0]!, slow: ran[1]! + ran[2]!, done: ran[0]! + ran[1]! + ran[2]!, seen };
}

describe('zone-least-conn with nodes that report their agents by speed', () => {
  it('sends work to the node whose free agents are fast, not the one with the most free slots', async () => {
    const r = await run(true);
    expect(r.done, `seed ${SEED}`).toBe(100);
    const speed = new Map(r.seen);
    // Each node's agents in its summary: n1 one agent of 4 slots, n2 two of 4 (as measured: one or two groups).
    expect(speed.get('/r/z/n1')?.slots).toEqual([4]);
    expect(speed.get('/r/z/n2')?.slots.reduce((x, y) => x + y, 0)).toBe(8);
    for (const g of speed.values()) for (const st of g!.serviceMs) expect(st).toBeGreaterThan(0);
    expect(r.slow, `seed ${SEED}: ${JSON.stringify(r)}`).toBeLessThanOrEqual(5);
  });

  it('falls back to load per slot when the nodes do not report speeds', async () => {
    const r = await run(false);
    expect(r.done, `seed ${SEED}`).toBe(100);
    expect(r.seen.map(([, s]) => s)).toEqual([undefined, undefined]);
    expect(r.slow, `seed ${SEED}: ${JSON.stringify(r)}`).toBeGreaterThanOrEqual(20);
  });
});
