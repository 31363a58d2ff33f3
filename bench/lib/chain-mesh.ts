// The mesh `npm run bench` measures, started for other benches (bench:peers):
// four tiers (/ → /r → /r/z → /r/z/n), one replica each, every cell its own
// process (bench/mesh-proc.ts), plus one process of no-op agents.
import { chainTopologyYaml } from '../../src/topology/chain.js';
import { sleep, type Mesh } from './phases.js';
import { Proc } from './proc.js';

export const CHAIN = ['/', '/r', '/r/z', '/r/z/n'];

export function chainTopology(basePort = 7600): string {
  return chainTopologyYaml({
    name: 'bench-chain',
    nodes: ['n'],
    basePort,
    defaults: { summaryIntervalMs: 150, heartbeatTimeoutMs: 3000 },
    regionLabels: { location: 'eu-west' },
  });
}

/** Start the chain, one process per cell, and `agents` no-op agents of `slots`; resolves once the root sees every slot. */
export async function startChainMesh(agents: number, slots: number): Promise<Mesh> {
  const topology = chainTopology();
  const cells: Proc[] = [];
  const stopAll = async (agentsProc?: Proc): Promise<void> => {
    await agentsProc?.stop();
    for (const c of [...cells].reverse()) await c.stop();
  };
  try {
    let parent = '';
    let rootAddr = '';
    for (const path of CHAIN) {
      const [p, m] = await Proc.start(`cell ${path}`, ['cells', topology, parent ? `${path}=${parent}` : path]);
      cells.push(p);
      parent = m.addresses[path] ?? '';
      if (path === '/') rootAddr = parent;
    }
    const [agentsProc] = await Proc.start('agents', ['agents', parent, String(agents), String(slots)]);
    const root = cells[0]!;
    // Linked and credited: the root sees the agents' slots through three summaries.
    const by = Date.now() + 30_000;
    for (;;) {
      const r = await root.report();
      if ((r.rootFree as number) >= agents * slots) break;
      if (Date.now() > by) {
        await stopAll(agentsProc);
        throw new Error(`mesh not ready: root sees ${String(r.rootFree)} free slots`);
      }
      await sleep(50);
    }
    return { cells, agents: agentsProc, root, address: rootAddr, stop: () => stopAll(agentsProc) };
  } catch (err) {
    await stopAll();
    throw err;
  }
}
