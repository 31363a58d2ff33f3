// A node cell of three replicas (a Raft group on temp data dirs) in this one process over real gRPC, for the
// agent tests that need a follower and a leader: the cells above it are addresses in the topology only.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Replica } from '../../src/mesh/replica.js';
import { parseTopology } from '../../src/topology/parse.js';
import { freePort } from './process.js';

/** Starts /r/z/n1's three replicas (seeds seed+1..3); `cleanups` gets their close and the data dirs' removal. */
export async function startNodeCell(
  name: string,
  seed: number,
  cleanups: Array<() => Promise<void> | void>,
): Promise<Replica[]> {
  const p = await Promise.all([0, 1, 2, 3, 4, 5].map(() => freePort()));
  const a = (i: number) => `{ address: "127.0.0.1:${p[i]}" }`;
  const topo = parseTopology(`
name: ${name}
cells:
  name: /
  replicas: [${a(3)}]
  children:
    - name: r
      replicas: [${a(4)}]
      children:
        - name: z
          replicas: [${a(5)}]
          children: [{ name: n1, replicas: [${a(0)}, ${a(1)}, ${a(2)}] }]
`);
  const dirs = mkdtempSync(join(tmpdir(), `meshlb-${name}-`));
  cleanups.push(() => rmSync(dirs, { recursive: true, force: true }));
  const nodes: Replica[] = [];
  for (const n of [1, 2, 3]) {
    const r = await new Replica({
      topology: topo,
      cell: '/r/z/n1',
      replica: n,
      dataDir: join(dirs, `n1-${n}`),
      seed: seed + n,
    }).start();
    nodes.push(r);
    cleanups.push(() => r.close(0));
  }
  return nodes;
}
