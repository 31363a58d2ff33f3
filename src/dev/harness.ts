// A whole topology in one process: every cell's replica on 127.0.0.1 port 0,
// parents first, each child linked to its parent's actual address. Used by
// `meshlb dev` and the integration tests.
import type { Topology } from '../topology/types.js';
import { Replica } from '../mesh/replica.js';
import type { CellOptions } from '../mesh/types.js';
import type { LinkTransport } from '../mesh/link-dialer.js';
import type { ReplicaSecurity } from '../security/replica-security.js';

export interface MeshHarness {
  readonly topology: Topology;
  readonly replicas: ReadonlyMap<string, Replica>;
  address(path: string): string;
  /** Paths of the node cells, in topology order. */
  readonly nodes: readonly string[];
  /** Resolves once every child is linked and every cell has reported a summary. */
  ready(timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export async function startMesh(
  topology: Topology,
  /**
   * `perCell` may give a cell a data dir (it then runs as a one-replica Raft
   * group on it) or its security (TLS and the guard, src/security).
   */
  opts: CellOptions & {
    perCell?: (path: string) => CellOptions & {
      dataDir?: string;
      security?: ReplicaSecurity;
      linkTransport?: LinkTransport;
      serverTransport?: LinkTransport;
    };
  } = {},
): Promise<MeshHarness> {
  const replicas = new Map<string, Replica>();
  const { perCell, ...common } = opts;
  try {
    for (const spec of topology.cells) {
      const parent = spec.parent ? replicas.get(spec.parent) : undefined;
      const r = new Replica({
        ...common,
        ...(perCell?.(spec.path) ?? {}),
        ...(opts.seed !== undefined ? { seed: opts.seed + replicas.size } : {}),
        topology,
        cell: spec.path,
        replica: 1,
        host: '127.0.0.1',
        port: 0,
        ...(parent ? { parentAddresses: () => [parent.address] } : {}),
      });
      replicas.set(spec.path, r);
      await r.start();
    }
  } catch (err) {
    await Promise.all([...replicas.values()].map((r) => r.close(0)));
    throw err;
  }
  const nodes = topology.cells.filter((c) => c.tier === 'node').map((c) => c.path);
  return {
    topology,
    replicas,
    nodes,
    address: (path) => {
      const r = replicas.get(path);
      if (!r) throw new Error(`no cell ${path}`);
      return r.address;
    },
    async ready(timeoutMs = 10_000) {
      const start = Date.now();
      for (;;) {
        let ok = true;
        for (const r of replicas.values()) {
          const c = r.cell;
          if (c.parent && !c.parent.connected) ok = false;
          if (c.children && c.children.links.size < c.spec.children.length) ok = false;
          if (c.children) for (const l of c.children.links.values()) if (!l.summary) ok = false;
        }
        if (ok) return;
        if (Date.now() - start > timeoutMs) throw new Error(`mesh not linked within ${timeoutMs} ms`);
        await new Promise((res) => setTimeout(res, 10));
      }
    },
    async close() {
      await Promise.all([...replicas.values()].map((r) => r.close(200)));
    },
  };
}
