// One node path (/ → r → z → n) on virtual time with one agent of kinds `a`
// and `b` and one slot: the fixture of tests about kinds that share an
// agent's slots (test/mesh/shared-slots, kind-order).
import type { Cell } from '../../../src/mesh/cell.js';
import { VirtualScheduler } from '../../../src/mesh/virtual-scheduler.js';
import { parseTopology } from '../../../src/topology/parse.js';
import { Rng } from '../../../src/util/rng.js';
import { SimAgent } from './agent.js';
import { Checker } from './invariants.js';
import { SimMesh } from './mesh.js';
import { SimNet } from './net.js';
import { settle, SIM_CELL_OPTIONS } from './sim.js';

const TOPO = parseTopology(`
name: two-kinds
tiers: { node: { policy: least-loaded } }
addressing: { host: 127.0.0.1, basePort: 20000 }
cells: { name: /, children: [{ name: r, children: [{ name: z, children: [{ name: n }] }] }] }
`);

export interface TwoKindAgent {
  /** The node cell's leader, once linked and welcomed. */
  readonly node: Cell;
  readonly checker: Checker;
  readonly mesh: SimMesh;
  /** Advance virtual time by `ms`, settling every 5 ms. */
  run(ms: number): Promise<void>;
}

/** The mesh and its agent (its tasks run 1-9 s), after 500 ms of virtual time: linked, welcomed, summaries up. */
export async function twoKindAgent(seed: number): Promise<TwoKindAgent> {
  const T0 = 1_000_000;
  const vs = new VirtualScheduler(T0);
  const rng = new Rng(seed);
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
  await run(500);
  return { node: mesh.leaderOf('/r/z/n')!.cell, checker, mesh, run };
}
