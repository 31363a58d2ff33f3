// A cell as a Raft group, in one process over real gRPC and lmdb: the root
// cell has three replicas (each with its own data directory), one region, one
// zone and one node cell with simulated agents. Tasks submitted at the
// leader run; the leader's replica is closed mid-run and a new leader takes
// over from the replicated ledger; every acknowledged task ends COMPLETED
// exactly once; the whole cell stopped and started again keeps every task.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { credentials } from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { AgentServiceClient } from '../../src/gen/meshlb/v1/agent.js';
import { TaskSpec, TaskState } from '../../src/gen/meshlb/v1/task.js';
import { SimAgent } from '../../src/dev/sim-agent.js';
import { Replica } from '../../src/mesh/replica.js';
import { seededRandom } from '../../src/util/rng.js';
import { parseTopology } from '../../src/topology/parse.js';
import type { Topology } from '../../src/topology/types.js';
import { freePort } from '../helpers/process.js';
import { waitFor } from '../helpers/wait.js';

const SEED = Number(process.env.MESHLB_TEST_SEED ?? 20261206);

async function topology(): Promise<Topology> {
  const p = await Promise.all([0, 1, 2, 3, 4, 5].map(() => freePort()));
  const a = (i: number) => `{ address: "127.0.0.1:${p[i]}" }`;
  return parseTopology(`
name: raftcell
defaults: { summaryIntervalMs: 100, heartbeatIntervalMs: 100, heartbeatTimeoutMs: 1500 }
cells:
  name: /
  replicas: [${a(0)}, ${a(1)}, ${a(2)}]
  children:
    - name: r
      replicas: [${a(3)}]
      children:
        - name: z
          replicas: [${a(4)}]
          children: [{ name: n1, replicas: [${a(5)}] }]
`);
}

const spec = (i: number): TaskSpec =>
  TaskSpec.fromPartial({ kind: 'echo', payload: Buffer.from(`t${i}`), idempotencyKey: `k${i}` });

interface Mesh {
  roots: Map<number, Replica>;
  others: Replica[];
  agents: SimAgent[];
  dirs: string;
}

let mesh: Mesh | undefined;

afterEach(async () => {
  if (!mesh) return;
  for (const a of mesh.agents) a.end();
  await Promise.all([...mesh.roots.values(), ...mesh.others].map((r) => r.close(100)));
  rmSync(mesh.dirs, { recursive: true, force: true });
  mesh = undefined;
});

async function startRoot(topo: Topology, dirs: string, n: number): Promise<Replica> {
  return new Replica({
    topology: topo,
    cell: '/',
    replica: n,
    dataDir: join(dirs, `root-${n}`),
    seed: SEED + n,
  }).start();
}

async function start(topo: Topology): Promise<Mesh> {
  const dirs = mkdtempSync(join(tmpdir(), 'meshlb-raftcell-'));
  const roots = new Map<number, Replica>();
  for (const n of [1, 2, 3]) roots.set(n, await startRoot(topo, dirs, n));
  const others: Replica[] = [];
  for (const path of ['/r', '/r/z', '/r/z/n1']) {
    others.push(await new Replica({ topology: topo, cell: path, seed: SEED + others.length + 10 }).start());
  }
  const node = others[2]!;
  const client = new AgentServiceClient(node.address, credentials.createInsecure());
  const rnd = seededRandom(SEED);
  const agents = [1, 2].map(
    (i) =>
      new SimAgent({
        address: node.address,
        client,
        agentId: `a${i}`,
        kinds: ['echo'],
        slots: 4,
        serviceTimeMs: 40,
        random: rnd,
      }),
  );
  await Promise.all(agents.map((a) => a.start()));
  mesh = { roots, others, agents, dirs };
  return mesh;
}

function leaderOf(m: Mesh): Replica | undefined {
  return [...m.roots.values()].find((r) => r.cell.leading);
}

describe('a 3-replica root cell on Raft (seed ' + SEED + ')', () => {
  it('elects one leader, runs tasks, and a new leader finishes every acknowledged task after the old one closes', async () => {
    const topo = await topology();
    const m = await start(topo);
    const leader = await waitFor(() => leaderOf(m), { timeoutMs: 10_000, what: 'a root leader' });
    expect([...m.roots.values()].filter((r) => r.cell.leading)).toHaveLength(1);
    await waitFor(() => leader.cell.children?.links.size === 1 || undefined, {
      timeoutMs: 10_000,
      what: 'the region linked to the root leader',
    });

    const ids: string[] = [];
    const first = await leader.cell.submit(Array.from({ length: 50 }, (_, i) => spec(i)));
    ids.push(...first.map((o) => o.id));
    await waitFor(
      () => ids.every((id) => leader.cell.ledger.get(id)?.state === TaskState.TASK_STATE_COMPLETED) || undefined,
      { timeoutMs: 15_000, what: 'the first 50 tasks completed' },
    );
    // Followers hold the same outcomes (applied from the log).
    for (const r of m.roots.values()) {
      await waitFor(
        () => ids.every((id) => r.cell.ledger.get(id)?.state === TaskState.TASK_STATE_COMPLETED) || undefined,
        { timeoutMs: 10_000, what: `replica ${r.cell.replicaId} applied every outcome` },
      );
    }

    // More tasks, then the leader goes away mid-run.
    const second = await leader.cell.submit(Array.from({ length: 200 }, (_, i) => spec(100 + i)));
    ids.push(...second.map((o) => o.id));
    // Some attempts are out (dispatched, running at agents) when the leader goes.
    await waitFor(
      () =>
        ids.filter((id) => {
          const st = leader.cell.ledger.get(id)?.state;
          return st === TaskState.TASK_STATE_DISPATCHED || st === TaskState.TASK_STATE_RUNNING;
        }).length >= 4 || undefined,
      { timeoutMs: 10_000, intervalMs: 1, what: 'attempts out at agents' },
    );
    const oldId = leader.cell.replicaId;
    const oldN = [...m.roots.entries()].find(([, r]) => r === leader)![0];
    m.roots.delete(oldN);
    await leader.close(0);

    const next = await waitFor(() => leaderOf(m), { timeoutMs: 10_000, what: 'a new root leader' });
    expect(next.cell.replicaId).not.toBe(oldId);
    await waitFor(
      () => ids.every((id) => next.cell.ledger.get(id)?.state === TaskState.TASK_STATE_COMPLETED) || undefined,
      {
        timeoutMs: 40_000,
        what: 'every acknowledged task completed under the new leader',
      },
    );
    // Exactly one terminal record per task, and the same idempotency key is the same task.
    const again = await next.cell.submit([spec(0), spec(150)]);
    expect(again.map((o) => o.id)).toEqual([ids[0], ids[50 + 50]]);
    expect(again.every((o) => o.existing)).toBe(true);
  });

  it('a whole cell stopped and started again on its data dirs resumes every accepted unfinished task', async () => {
    const topo = await topology();
    const m = await start(topo);
    // No agents: everything accepted stays unfinished.
    for (const a of m.agents) a.end();
    m.agents.length = 0;
    const leader = await waitFor(() => leaderOf(m), { timeoutMs: 10_000, what: 'a root leader' });
    const ids = (await leader.cell.submit(Array.from({ length: 40 }, (_, i) => spec(i)))).map((o) => o.id);
    await Promise.all([...m.roots.values()].map((r) => r.close(0)));
    m.roots.clear();
    for (const n of [1, 2, 3]) m.roots.set(n, await startRoot(topo, m.dirs, n));
    const next = await waitFor(() => leaderOf(m), { timeoutMs: 15_000, what: 'a leader after the restart' });
    for (const id of ids) expect(next.cell.ledger.get(id)?.state, id).toBe(TaskState.TASK_STATE_QUEUED);
    // Agents come back: every task runs to completion under the restarted cell.
    const node = m.others[2]!;
    const agent = new SimAgent({ address: node.address, agentId: 'late', kinds: ['echo'], slots: 8, serviceTimeMs: 5 });
    m.agents.push(agent);
    await agent.start();
    await waitFor(
      () => ids.every((id) => next.cell.ledger.get(id)?.state === TaskState.TASK_STATE_COMPLETED) || undefined,
      { timeoutMs: 30_000, what: 'every task completed after the whole cell restarted' },
    );
  });
});
