// The durable mesh of `npm run bench` (phase (f)): the bench's chain topology
// with the root cell given 3 replicas, each its own OS process with its own
// data directory, so the root's ledger runs on Raft over gRPC with lmdb and
// fsync (the default storage; nothing turns the sync off). The other cells
// keep one replica each and no data dir (their ledgers stay in memory): they
// only relay, and the home cell is the one whose log a LOGGED task waits for,
// so the comparison with the NONE run differs only there.
//
// Every replica listens on a free 127.0.0.1 port written into the topology
// (the Raft peers and the parent links read their addresses from it). The
// client submits to the root's leader, found with AdminService.GetCell.
// Data directories live under os.tmpdir() and are removed on stop, on a
// failed start, and when the bench exits or is interrupted.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { credentials, Metadata, type ServiceError } from '@grpc/grpc-js';
import { open } from 'lmdb';
import { parse, stringify } from 'yaml';
import { AdminServiceClient, type GetCellResponse } from '../src/gen/meshlb/v1/admin.js';
import { LatencyHistogram, type LatencySummary } from './lib/histogram.js';
import type { Mesh } from './lib/phases.js';
import { sleep } from './lib/phases.js';
import { Proc } from './lib/proc.js';

export const ROOT_REPLICAS = 3;

/** The root's leader as GetCell reports it. */
export interface LeaderInfo {
  readonly id: string;
  readonly term: number;
  readonly address: string;
}

/** Free loopback ports, all distinct: the listeners stay open until every port is taken. */
async function freePorts(n: number): Promise<number[]> {
  const servers: Server[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const s = createServer();
      await new Promise<void>((res, rej) => {
        s.once('error', rej);
        s.listen(0, '127.0.0.1', () => res());
      });
      servers.push(s);
    }
    return servers.map((s) => (s.address() as { port: number }).port);
  } finally {
    await Promise.all(servers.map((s) => new Promise((res) => s.close(res))));
  }
}

interface CellDoc {
  name: string;
  replicas?: { address: string }[];
  children?: CellDoc[];
}

/**
 * `base` (a chain topology's YAML) with every replica's address spelled out:
 * the root with ROOT_REPLICAS replicas, every other cell with one, on `ports`
 * in file order (depth first). Same defaults, labels and policies as `base`.
 */
export function durableTopologyYaml(base: string, ports: readonly number[]): string {
  const doc = parse(base) as { name: string; addressing?: unknown; cells: CellDoc | CellDoc[] };
  let next = 0;
  const take = (k: number): { address: string }[] =>
    Array.from({ length: k }, () => {
      const p = ports[next++];
      if (p === undefined) throw new Error('durableTopologyYaml: not enough ports');
      return { address: `127.0.0.1:${p}` };
    });
  const walk = (c: CellDoc, depth: number): void => {
    c.replicas = take(depth === 0 ? ROOT_REPLICAS : 1);
    for (const child of c.children ?? []) walk(child, depth + 1);
  };
  const root = Array.isArray(doc.cells) ? doc.cells[0]! : doc.cells;
  walk(root, 0);
  doc.name = `${doc.name}-durable`;
  delete doc.addressing;
  return stringify(doc);
}

const dirs = new Set<string>();
let hooked = false;

/** Remove the data dirs at exit, on every path out of the bench (a failed phase exits through process.exit). */
function removeAtExit(dir: string): void {
  dirs.add(dir);
  if (hooked) return;
  hooked = true;
  const removeAll = (): void => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
    dirs.clear();
  };
  process.on('exit', removeAll);
  for (const sig of ['SIGINT', 'SIGTERM'] as const)
    process.once(sig, () => {
      removeAll();
      process.exit(130);
    });
}

/**
 * The disk's floor under the figures: `count` synchronous fsync'd lmdb
 * transactions of one 100-byte put each, one after another (the way the Raft
 * log writes: LmdbStorage commits each Ready with transactionSync), in a temp
 * dir on the same file system as the replicas' data dirs. Bounded by `maxMs`.
 */
export async function fsyncBaseline(count: number, maxMs: number): Promise<LatencySummary> {
  const dir = mkdtempSync(join(tmpdir(), 'meshlb-bench-fsync-'));
  removeAtExit(dir);
  try {
    const db = open({ path: join(dir, 'probe.lmdb'), overlappingSync: false, noSync: false, mapSize: 1 << 26 });
    const value = Buffer.alloc(100, 0x61);
    const h = new LatencyHistogram();
    const by = performance.now() + maxMs;
    for (let k = 0; k < count && performance.now() < by; k++) {
      const t = performance.now();
      db.transactionSync(() => db.putSync(k, value));
      h.recordMs(performance.now() - t);
    }
    await db.close();
    return h.summary();
  } finally {
    rmSync(dir, { recursive: true, force: true });
    dirs.delete(dir);
  }
}

function getCell(address: string): Promise<GetCellResponse | undefined> {
  const c = new AdminServiceClient(address, credentials.createInsecure());
  return new Promise((resolve) => {
    c.getCell(
      { path: '' },
      new Metadata(),
      { deadline: Date.now() + 2000 },
      (err: ServiceError | null, res?: GetCellResponse) => {
        c.close();
        resolve(err ? undefined : res);
      },
    );
  });
}

export class DurableMesh implements Mesh {
  root: Proc;
  address: string;
  private constructor(
    readonly cells: Proc[],
    readonly agents: Proc,
    /** Root replica processes and their addresses, replica 1..ROOT_REPLICAS. */
    readonly roots: readonly { proc: Proc; address: string }[],
    readonly dataRoot: string,
  ) {
    this.root = roots[0]!.proc;
    this.address = roots[0]!.address;
  }

  /** Start the topology's processes; `agents` no-op agents of `slots` each on the node. */
  static async start(baseTopology: string, agents: number, slots: number): Promise<DurableMesh> {
    const dataRoot = mkdtempSync(join(tmpdir(), 'meshlb-bench-durable-'));
    removeAtExit(dataRoot);
    const started: Proc[] = [];
    const track = async (name: string, args: string[]): Promise<Proc> => {
      const [p] = await Proc.start(name, args);
      started.push(p);
      return p;
    };
    try {
      const yaml = durableTopologyYaml(baseTopology, await freePorts(ROOT_REPLICAS + 3));
      const doc = parse(yaml) as { cells: CellDoc };
      const addr = (c: CellDoc | undefined, i = 0): string => c!.replicas![i]!.address;
      const r = doc.cells.children![0]!;
      const z = r.children![0]!;
      const n = z.children![0]!;
      const roots = await Promise.all(
        Array.from({ length: ROOT_REPLICAS }, async (_, i) => {
          const dir = join(dataRoot, `root-${i + 1}`);
          mkdirSync(dir);
          const proc = await track(`cell /#${i + 1}`, [
            'cells',
            yaml,
            `/#${i + 1}`,
            `--data=${dir}`,
            '--topology-addresses',
          ]);
          return { proc, address: addr(doc.cells, i) };
        }),
      );
      const others: Proc[] = [];
      for (const path of ['/r', '/r/z', `/r/z/${n.name}`])
        others.push(await track(`cell ${path}`, ['cells', yaml, path, '--topology-addresses']));
      const agentsProc = await track('agents', ['agents', addr(n), String(agents), String(slots)]);
      const m = new DurableMesh([...roots.map((x) => x.proc), ...others], agentsProc, roots, dataRoot);
      await m.findLeader();
      // Linked and credited: the leader sees the agents' slots through three summaries.
      const by = Date.now() + 30_000;
      for (;;) {
        const rep = await m.root.report();
        if ((rep.rootFree as number) >= agents * slots) break;
        if (Date.now() > by) throw new Error(`durable mesh not ready: root sees ${String(rep.rootFree)} free slots`);
        await sleep(50);
      }
      return m;
    } catch (e) {
      for (const p of started.reverse()) await p.stop();
      rmSync(dataRoot, { recursive: true, force: true });
      dirs.delete(dataRoot);
      throw e;
    }
  }

  /** Ask every root replica (GetCell) until one is the leader (bounded); the client then goes to it. */
  async findLeader(maxMs = 30_000): Promise<LeaderInfo> {
    const by = Date.now() + maxMs;
    for (;;) {
      const answers = await Promise.all(this.roots.map((r) => getCell(r.address)));
      const i = answers.findIndex((a) => a?.leader);
      if (i >= 0) {
        const a = answers[i]!;
        this.root = this.roots[i]!.proc;
        this.address = this.roots[i]!.address;
        return { id: a.replicaId, term: Number(a.term), address: this.address };
      }
      if (Date.now() > by) throw new Error(`no root leader within ${maxMs} ms`);
      await sleep(100);
    }
  }

  async stop(): Promise<void> {
    try {
      await this.agents.stop();
      for (const c of [...this.cells].reverse()) await c.stop();
    } finally {
      rmSync(this.dataRoot, { recursive: true, force: true });
      dirs.delete(this.dataRoot);
    }
  }
}
