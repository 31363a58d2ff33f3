// AdminService on single replicas, over gRPC: GetCell on a replica with no
// Raft group (SOLE, leads, counts what it dispatches) and on a one-voter
// group; the group calls refused with the right status on each; replica names
// parsed; the SIGTERM path (stopReplica) on a replica with nobody to hand to.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { credentials, status, type ServiceError } from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { replicaId } from '../../src/admin/group-admin.js';
import { stopReplica } from '../../src/cli/serve.js';
import { SimAgent } from '../../src/dev/sim-agent.js';
import { AdminServiceClient, ReplicaRole, type GetCellResponse } from '../../src/gen/meshlb/v1/admin.js';
import { AgentServiceClient } from '../../src/gen/meshlb/v1/agent.js';
import { TaskSpec, TaskState } from '../../src/gen/meshlb/v1/task.js';
import { Replica } from '../../src/mesh/replica.js';
import { parseTopology } from '../../src/topology/parse.js';
import type { Topology } from '../../src/topology/types.js';
import { logger } from '../../src/util/log.js';
import { freePort } from '../helpers/process.js';
import { waitFor } from '../helpers/wait.js';

/** Root, region, zone and node, one replica each, on free loopback ports. */
async function topology(): Promise<Topology> {
  const p = await Promise.all([0, 1, 2, 3].map(() => freePort()));
  const a = (i: number) => `[{ address: "127.0.0.1:${p[i]}" }]`;
  return parseTopology(`
name: adm
cells:
  name: /
  replicas: ${a(0)}
  children:
    - name: r
      replicas: ${a(1)}
      children:
        - name: z
          replicas: ${a(2)}
          children: [{ name: n1, replicas: ${a(3)} }]
`);
}

let replicas: Replica[] = [];
let clients: AdminServiceClient[] = [];
let dirs: string[] = [];
const agents: SimAgent[] = [];

afterEach(async () => {
  for (const a of agents.splice(0)) a.end();
  for (const c of clients) c.close();
  await Promise.all(replicas.map((r) => r.close(100)));
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  replicas = [];
  clients = [];
  dirs = [];
});

async function start(cell: string, dataDir?: string): Promise<{ r: Replica; admin: AdminServiceClient }> {
  const r = await new Replica({ topology: await topology(), cell, seed: 7, ...(dataDir ? { dataDir } : {}) }).start();
  replicas.push(r);
  const admin = new AdminServiceClient(r.address, credentials.createInsecure());
  clients.push(admin);
  return { r, admin };
}

function unary<Req, Res>(
  fn: (req: Req, cb: (err: ServiceError | null, res: Res) => void) => unknown,
  req: Req,
): Promise<Res> {
  return new Promise((resolve, reject) => fn(req, (err, res) => (err ? reject(err) : resolve(res))));
}

const getCell = (c: AdminServiceClient) =>
  unary<{ path: string }, GetCellResponse>((req, cb) => c.getCell(req, cb), { path: '' });

async function refusedCode(p: Promise<unknown>): Promise<{ code: number; details: string }> {
  const err = (await p.then(
    () => undefined,
    (e: unknown) => e,
  )) as ServiceError | undefined;
  if (!err) throw new Error('expected a refusal');
  return { code: err.code, details: err.details };
}

function groupCalls(c: AdminServiceClient): Promise<unknown>[] {
  return [
    unary((req, cb) => c.transferLeader(req, cb), { to: '' }),
    unary((req, cb) => c.addReplica(req, cb), { replica: '2', address: '127.0.0.1:1' }),
    unary((req, cb) => c.removeReplica(req, cb), { replica: '2' }),
  ];
}

describe('replicaId', () => {
  it('takes a number or an id of the cell and refuses anything else', () => {
    expect(replicaId('/eu', '2')).toBe('/eu#2');
    expect(replicaId('/eu', ' /eu#3 ')).toBe('/eu#3');
    expect(replicaId('/', '/#1')).toBe('/#1');
    for (const bad of ['', '0', '-1', 'x', '/us#2', '/eu#', '/eu#2x', '1000', '2.5']) {
      expect(() => replicaId('/eu', bad), bad).toThrow(/does not name a replica/);
    }
  });
});

describe('AdminService on one replica', () => {
  it('GetCell on a replica with no Raft group: SOLE, leads, counts what it dispatches; group calls refused', async () => {
    const { r, admin } = await start('/r/z/n1');
    const v = await getCell(admin);
    expect(v).toMatchObject({
      replicaId: '/r/z/n1#1',
      leader: true,
      leaderId: '/r/z/n1#1',
      role: ReplicaRole.REPLICA_ROLE_SOLE,
      term: 0,
      commitIndex: 0,
      members: [],
      dispatched: 0,
    });
    for (const p of groupCalls(admin)) {
      const e = await refusedCode(p);
      expect(e.code).toBe(status.FAILED_PRECONDITION);
      expect(e.details).toMatch(/not replicated/);
    }

    const agentClient = new AgentServiceClient(r.address, credentials.createInsecure());
    const agent = new SimAgent({
      address: r.address,
      client: agentClient,
      agentId: 'a1',
      kinds: ['echo'],
      slots: 2,
      serviceTimeMs: 5,
    });
    agents.push(agent);
    await agent.start();
    const out = await r.cell.submit(Array.from({ length: 5 }, () => TaskSpec.fromPartial({ kind: 'echo' })));
    await waitFor(
      () => out.every((o) => r.cell.ledger.get(o.id)?.state === TaskState.TASK_STATE_COMPLETED) || undefined,
      { what: 'the tasks completed' },
    );
    expect((await getCell(admin)).dispatched).toBe(5);
  });

  it('a one-voter Raft group: GetCell shows its log; nobody to hand over to, so SIGTERM just stops it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'meshlb-admin-'));
    dirs.push(dir);
    const { r, admin } = await start('/', join(dir, 'root'));
    await waitFor(() => r.cell.leading || undefined, { what: 'the one voter leading' });
    const v = await getCell(admin);
    expect(v).toMatchObject({ leader: true, role: ReplicaRole.REPLICA_ROLE_LEADER, leaderId: '/#1' });
    expect(v.term).toBeGreaterThan(0);
    expect(v.appliedIndex).toBe(v.commitIndex);
    expect(v.logEntries).toBeGreaterThan(0);
    expect(v.members).toEqual([{ id: '/#1', address: r.address, voter: true, matchIndex: v.commitIndex }]);

    const transfer = await refusedCode(unary((req, cb) => admin.transferLeader(req, cb), { to: '' }));
    expect(transfer).toMatchObject({
      code: status.FAILED_PRECONDITION,
      details: 'no other voter to hand leadership to',
    });
    // Leading already is a no-op.
    const self = await unary((req, cb) => admin.transferLeader(req, cb), { to: '1' });
    expect(self).toMatchObject({ from: '/#1', leaderId: '/#1', term: v.term });
    const bad = [
      unary((req, cb) => admin.addReplica(req, cb), { replica: '2', address: 'nope' }),
      unary((req, cb) => admin.addReplica(req, cb), { replica: '2', address: '' }),
      unary((req, cb) => admin.addReplica(req, cb), { replica: 'x', address: '127.0.0.1:1' }),
      unary((req, cb) => admin.removeReplica(req, cb), { replica: '2' }),
      unary((req, cb) => admin.removeReplica(req, cb), { replica: '' }),
    ];
    for (const p of bad) expect(await refusedCode(p)).toMatchObject({ code: status.INVALID_ARGUMENT });
    const last = await refusedCode(unary((req, cb) => admin.removeReplica(req, cb), { replica: '1' }));
    expect(last.code).toBe(status.FAILED_PRECONDITION);

    const report = await stopReplica(r, { log: logger({ component: 'test' }), drainTimeoutMs: 1000, graceMs: 100 });
    expect(report.handedOver).toBeUndefined();
    expect(report.left).toBe(0);
  });
});
