// A mesh in one process for the Raft cell tests: a 3-replica root
// (each replica with its own data directory, so the root is a Raft group over
// gRPC and lmdb), one region, one zone and one node cell with SimAgents.
// Replicas of the root can be stopped the way SIGTERM stops them
// (stopReplica) and started again from the same data directory.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { credentials, type ServiceError } from '@grpc/grpc-js';
import { AgentServiceClient } from '../../src/gen/meshlb/v1/agent.js';
import {
  AdminServiceClient,
  type AddReplicaRequest,
  type AddReplicaResponse,
  type GetCellRequest,
  type GetCellResponse,
  type RemoveReplicaRequest,
  type RemoveReplicaResponse,
  type TransferLeaderRequest,
  type TransferLeaderResponse,
} from '../../src/gen/meshlb/v1/admin.js';
import { TaskSpec, TaskState } from '../../src/gen/meshlb/v1/task.js';
import { SimAgent } from '../../src/dev/sim-agent.js';
import { stopReplica, type StopReport } from '../../src/cli/serve.js';
import { Replica } from '../../src/mesh/replica.js';
import { logger } from '../../src/util/log.js';
import { seededRandom } from '../../src/util/rng.js';
import { parseTopology } from '../../src/topology/parse.js';
import type { Topology } from '../../src/topology/types.js';
import { freePort } from './process.js';

export const SEED = Number(process.env.MESHLB_TEST_SEED ?? 20261207);

/** The root with `rootReplicas` replicas (3, or 5 for a replica being added), the rest with one each. */
export function topologyText(ports: readonly number[], rootReplicas: number): string {
  const a = (p: number | undefined) => `{ address: "127.0.0.1:${p}" }`;
  const roots = [0, 1, 2, 6, 7].slice(0, rootReplicas).map((i) => a(ports[i]));
  return `
name: raftops
defaults: { summaryIntervalMs: 100, heartbeatIntervalMs: 100, heartbeatTimeoutMs: 1500 }
cells:
  name: /
  replicas: [${roots.join(', ')}]
  children:
    - name: r
      replicas: [${a(ports[3])}]
      children:
        - name: z
          replicas: [${a(ports[4])}]
          children: [{ name: n1, replicas: [${a(ports[5])}] }]
`;
}

export const spec = (key: string): TaskSpec =>
  TaskSpec.fromPartial({ kind: 'echo', payload: Buffer.from(key), idempotencyKey: key });

export class OpsMesh {
  readonly roots = new Map<number, Replica>();
  readonly others: Replica[] = [];
  readonly agents: SimAgent[] = [];
  private readonly clients: AdminServiceClient[] = [];
  readonly log = logger({ component: 'test' });
  private starts = 0;

  private constructor(
    readonly topology: Topology,
    readonly ports: readonly number[],
    readonly dirs: string,
  ) {}

  static async start(o: { slots?: number; serviceTimeMs?: number } = {}): Promise<OpsMesh> {
    const ports = await Promise.all([0, 1, 2, 3, 4, 5, 6, 7].map(() => freePort()));
    const m = new OpsMesh(parseTopology(topologyText(ports, 3)), ports, mkdtempSync(join(tmpdir(), 'meshlb-raftops-')));
    for (const n of [1, 2, 3]) await m.startRoot(n);
    for (const path of ['/r', '/r/z', '/r/z/n1']) {
      m.others.push(await new Replica({ topology: m.topology, cell: path, seed: SEED + m.others.length + 10 }).start());
    }
    const node = m.others[2]!;
    const client = new AgentServiceClient(node.address, credentials.createInsecure());
    const rnd = seededRandom(SEED);
    for (const i of [1, 2]) {
      m.agents.push(
        new SimAgent({
          address: node.address,
          client,
          agentId: `a${i}`,
          kinds: ['echo'],
          slots: o.slots ?? 4,
          serviceTimeMs: o.serviceTimeMs ?? 30,
          random: rnd,
        }),
      );
    }
    await Promise.all(m.agents.map((a) => a.start()));
    return m;
  }

  /** Start (or start again, from its data dir) root replica `n`, with `topology` (default: the 3-replica one). */
  async startRoot(n: number, opts: { topology?: Topology; join?: boolean } = {}): Promise<Replica> {
    const r = await new Replica({
      topology: opts.topology ?? this.topology,
      cell: '/',
      replica: n,
      dataDir: join(this.dirs, `root-${n}`),
      // A new seed per start: task ids come from the seeded random source, and
      // a restarted replica with the same seed would hand out ids it already used.
      seed: SEED + n + 100 * this.starts++,
      ...(opts.join ? { join: true } : {}),
    }).start();
    this.roots.set(n, r);
    return r;
  }

  /** Stop root replica `n` the way SIGTERM does (hand-over, drain, close). */
  async stopRoot(n: number): Promise<StopReport> {
    const r = this.roots.get(n);
    if (!r) throw new Error(`root replica ${n} is not running`);
    const report = await stopReplica(r, { log: this.log, drainTimeoutMs: 2000, graceMs: 200 });
    this.roots.delete(n);
    return report;
  }

  leader(): Replica | undefined {
    return [...this.roots.values()].find((r) => r.cell.leading);
  }

  numberOf(r: Replica): number {
    return [...this.roots.entries()].find(([, x]) => x === r)![0];
  }

  admin(address: string): Admin {
    const c = new AdminServiceClient(address, credentials.createInsecure());
    this.clients.push(c);
    return promised(c);
  }

  /** Every task in `ids` ended COMPLETED in `r`'s ledger. */
  allCompleted(r: Replica, ids: readonly string[]): boolean {
    return ids.every((id) => r.cell.ledger.get(id)?.state === TaskState.TASK_STATE_COMPLETED);
  }

  async close(): Promise<void> {
    for (const c of this.clients) c.close();
    for (const a of this.agents) a.end();
    await Promise.all([...this.roots.values(), ...this.others].map((r) => r.close(100)));
    rmSync(this.dirs, { recursive: true, force: true });
  }
}

/** The admin calls the tests use, as promises; a refusal rejects with the ServiceError (code, details, trailers). */
export interface Admin {
  getCell(req: GetCellRequest): Promise<GetCellResponse>;
  transferLeader(req: TransferLeaderRequest): Promise<TransferLeaderResponse>;
  addReplica(req: AddReplicaRequest): Promise<AddReplicaResponse>;
  removeReplica(req: RemoveReplicaRequest): Promise<RemoveReplicaResponse>;
}

function promised(c: AdminServiceClient): Admin {
  const p = <Res>(start: (cb: (err: ServiceError | null, res: Res) => void) => void): Promise<Res> =>
    new Promise((resolve, reject) => start((err, res) => (err ? reject(err) : resolve(res))));
  return {
    getCell: (req) => p((cb) => c.getCell(req, cb)),
    transferLeader: (req) => p((cb) => c.transferLeader(req, cb)),
    addReplica: (req) => p((cb) => c.addReplica(req, cb)),
    removeReplica: (req) => p((cb) => c.removeReplica(req, cb)),
  };
}

/** The ServiceError a call failed with. */
export async function refusal(p: Promise<unknown>): Promise<ServiceError> {
  try {
    await p;
  } catch (err) {
    return err as ServiceError;
  }
  throw new Error('the call succeeded; a refusal was expected');
}
