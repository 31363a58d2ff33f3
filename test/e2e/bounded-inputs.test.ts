// Bounded inputs over real gRPC (issue 9, item 1): every oversize field gets
// INVALID_ARGUMENT naming the field and its limit, within the call's deadline,
// with a short status message. Before the limits, a Get with an 80 KB+ id was
// never answered: its NOT_FOUND message echoed the id, and trailers over the
// HTTP/2 header-list limit never reach the client. No log line carries more
// than a few hundred bytes of caller input either (checked at the end).
import { Writable } from 'node:stream';
import * as grpc from '@grpc/grpc-js';
import { service as healthService } from 'grpc-health-check';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMesh, type MeshHarness } from '../../src/dev/harness.js';
import { SimAgent } from '../../src/dev/sim-agent.js';
import { AdminServiceClient } from '../../src/gen/meshlb/v1/admin.js';
import { AgentServiceClient, type AgentHello } from '../../src/gen/meshlb/v1/agent.js';
import { LinkServiceClient, type LinkHello } from '../../src/gen/meshlb/v1/link.js';
import { TaskServiceClient, TaskSpec } from '../../src/gen/meshlb/v1/task.js';
import { seededRandom } from '../../src/policies/index.js';
import { parseTopology } from '../../src/topology/parse.js';
import { LIMITS } from '../../src/util/limits.js';
import { setRootLogger } from '../../src/util/log.js';
import { waitFor } from '../helpers/wait.js';

const lines: string[] = [];
setRootLogger(
  pino(
    { level: 'info' },
    new Writable({
      write(chunk, _enc, cb) {
        lines.push(String(chunk));
        cb();
      },
    }),
  ),
);

const TOPOLOGY = parseTopology(`
name: bounded
addressing: { host: 127.0.0.1, basePort: 7300 }
cells:
  name: /
  children:
    - name: eu
      children:
        - { name: west, children: [{ name: n1 }] }
`);
const NODE = '/eu/west/n1';
const KB = 1024;
const DEADLINE_MS = 3000;

interface Answer {
  code: grpc.status;
  details: string;
}

type Unary<Req> = (
  req: Req,
  md: grpc.Metadata,
  opts: Partial<grpc.CallOptions>,
  cb: (err: grpc.ServiceError | null) => void,
) => unknown;

/** A unary call with a deadline: its status (OK as 0), never a hang. */
function unary<Req>(client: grpc.Client, fn: Unary<Req>, req: Req): Promise<Answer> {
  return new Promise((resolve) =>
    fn.call(client, req, new grpc.Metadata(), { deadline: Date.now() + DEADLINE_MS }, (err) =>
      resolve({ code: err?.code ?? grpc.status.OK, details: err?.details ?? '' }),
    ),
  );
}

/** A stream's final status (a deadline bounds it). */
function streamStatus(call: grpc.ClientReadableStream<unknown> | grpc.ClientDuplexStream<unknown, unknown>) {
  return new Promise<Answer>((resolve) => {
    call.on('data', () => undefined);
    call.on('error', () => undefined);
    call.on('status', (s: grpc.StatusObject) => resolve({ code: s.code, details: s.details }));
  });
}

/** INVALID_ARGUMENT naming the field and its limit, in a short message. */
function expectRefused(a: Answer, field: string, limit: number): void {
  expect(a.code, a.details.slice(0, 300)).toBe(grpc.status.INVALID_ARGUMENT);
  expect(a.details).toContain(field);
  expect(a.details).toContain(String(limit));
  expect(a.details.length).toBeLessThan(LIMITS.statusMessage);
}

const big = (n: number, ch = 'x') => ch.repeat(n);
const deadline = () => ({ deadline: Date.now() + DEADLINE_MS });

describe('bounded inputs (real gRPC)', () => {
  let mesh: MeshHarness;
  let task: TaskServiceClient;
  let nodeTask: TaskServiceClient;
  let admin: AdminServiceClient;
  let nodeAdmin: AdminServiceClient;
  const clients: grpc.Client[] = [];
  const agents: SimAgent[] = [];

  beforeAll(async () => {
    mesh = await startMesh(TOPOLOGY, { seed: 9, heartbeatIntervalMs: 100, heartbeatTimeoutMs: 1500 });
    await mesh.ready();
    const opts = { 'grpc.max_send_message_length': 8 << 20 };
    const creds = grpc.credentials.createInsecure();
    task = new TaskServiceClient(mesh.address('/'), creds, opts);
    nodeTask = new TaskServiceClient(mesh.address(NODE), creds, opts);
    admin = new AdminServiceClient(mesh.address('/'), creds, opts);
    nodeAdmin = new AdminServiceClient(mesh.address(NODE), creds, opts);
    clients.push(task, nodeTask, admin, nodeAdmin);
    const a = new SimAgent({
      address: mesh.address(NODE),
      agentId: 'good',
      kinds: ['echo'],
      slots: 2,
      heartbeatIntervalMs: 100,
      random: seededRandom(9),
    });
    agents.push(a);
    await a.start();
  });

  afterAll(async () => {
    for (const a of agents) a.kill();
    for (const c of clients) c.close();
    await mesh?.close();
  });

  it('Get with a 100 KB and a 3 MB task id → INVALID_ARGUMENT naming task_id and its limit', async () => {
    for (const size of [100 * KB, 3 * KB * KB]) {
      expectRefused(await unary(task, task.get, { taskId: big(size) }), 'task_id', LIMITS.taskId);
    }
    // At the limit it is looked up, and the NOT_FOUND message is short.
    const at = await unary(task, task.get, { taskId: big(LIMITS.taskId) });
    expect(at.code).toBe(grpc.status.NOT_FOUND);
    expect(at.details.length).toBeLessThan(LIMITS.statusMessage);
    expectRefused(await unary(task, task.get, { taskId: big(LIMITS.taskId + 1) }), 'task_id', LIMITS.taskId);
  });

  it('Watch and Cancel with a 1 MB task id, Cancel with a 1 MB reason → INVALID_ARGUMENT', async () => {
    const w = task.watch({ taskId: big(KB * KB) }, deadline());
    expectRefused(await streamStatus(w), 'task_id', LIMITS.taskId);
    expectRefused(await unary(task, task.cancel, { taskId: big(KB * KB), reason: '' }), 'task_id', LIMITS.taskId);
    expectRefused(await unary(task, task.cancel, { taskId: 'x', reason: big(KB * KB) }), 'reason', LIMITS.reason);
  });

  it('Submit with an oversize kind, key, tenant, label key or value, or too many labels → INVALID_ARGUMENT', async () => {
    const cases: [Partial<TaskSpec>, string, number][] = [
      [{ kind: big(KB * KB) }, 'task.kind', LIMITS.kind],
      [{ idempotencyKey: big(KB * KB) }, 'task.idempotency_key', LIMITS.idempotencyKey],
      [{ tenant: big(KB * KB) }, 'task.tenant', LIMITS.tenant],
      [{ labels: [{ key: big(KB * KB), value: 'v' }] }, 'task.labels', LIMITS.labelKey],
      [{ affinity: [{ key: 'k', value: big(KB * KB) }] }, 'task.affinity', LIMITS.labelValue],
      [{ labels: Array.from({ length: 65 }, (_, i) => ({ key: `k${i}`, value: '' })) }, 'task.labels', 64],
    ];
    for (const [spec, field, limit] of cases) {
      const a = await unary(task, task.submit, { task: TaskSpec.fromPartial({ kind: 'echo', ...spec }) });
      expectRefused(a, field, limit);
    }
  });

  it('GetCell with a 1 MB path; DrainAgent with a 1 MB agent id or reason → INVALID_ARGUMENT', async () => {
    expectRefused(await unary(admin, admin.getCell, { path: big(KB * KB) }), 'path', LIMITS.cellPath);
    expectRefused(
      await unary(nodeAdmin, nodeAdmin.drainAgent, { agentId: big(KB * KB), reason: '', migrate: false, graceMs: 0 }),
      'agent_id',
      LIMITS.agentId,
    );
    expectRefused(
      await unary(nodeAdmin, nodeAdmin.drainAgent, {
        agentId: 'good',
        reason: big(KB * KB),
        migrate: false,
        graceMs: 0,
      }),
      'reason',
      LIMITS.reason,
    );
    expectRefused(await unary(admin, admin.transferLeader, { to: big(KB * KB) }), 'to', LIMITS.replicaId);
    expectRefused(
      await unary(admin, admin.addReplica, { replica: '', address: big(KB * KB) }),
      'address',
      LIMITS.address,
    );
    expectRefused(await unary(admin, admin.removeReplica, { replica: big(KB * KB) }), 'replica', LIMITS.replicaId);
  });

  it('a link hello with a 1 MB cell, replica id or mesh name → INVALID_ARGUMENT', async () => {
    const link = new LinkServiceClient(mesh.address('/eu'), grpc.credentials.createInsecure());
    clients.push(link);
    const hello: LinkHello = {
      cell: '/eu/west',
      replicaId: '/eu/west#1',
      term: 0,
      holding: [],
      mesh: '',
      meshId: '',
      parentCell: '',
      sendNumbers: false,
    };
    const cases: [Partial<LinkHello>, string, number][] = [
      [{ cell: big(KB * KB) }, 'hello.cell', LIMITS.cellPath],
      [{ replicaId: big(KB * KB) }, 'hello.replica_id', LIMITS.replicaId],
      [{ mesh: big(KB * KB) }, 'hello.mesh', LIMITS.meshName],
      [{ parentCell: big(KB * KB) }, 'hello.parent_cell', LIMITS.cellPath],
    ];
    for (const [bad, field, limit] of cases) {
      const call = link.open(deadline());
      const st = streamStatus(call);
      call.write({ msg: { $case: 'hello', value: { ...hello, ...bad } } });
      expectRefused(await st, field, limit);
    }
  });

  it('an agent hello with a 1 MB agent id, node cell or kind, or too many kinds → INVALID_ARGUMENT', async () => {
    const c = new AgentServiceClient(mesh.address(NODE), grpc.credentials.createInsecure());
    clients.push(c);
    const hello: AgentHello = {
      agentId: 'a1',
      kinds: ['echo'],
      labels: [],
      slots: 1,
      version: '',
      mesh: '',
      meshId: '',
      nodeCell: '',
      running: [],
    };
    const cases: [Partial<AgentHello>, string, number][] = [
      [{ agentId: big(KB * KB) }, 'hello.agent_id', LIMITS.agentId],
      [{ nodeCell: big(KB * KB) }, 'hello.node_cell', LIMITS.cellPath],
      [{ meshId: big(KB * KB) }, 'hello.mesh_id', LIMITS.meshName],
      [{ kinds: [big(KB * KB)] }, 'hello.kinds', LIMITS.kind],
      [{ kinds: Array.from({ length: LIMITS.kindsPerAgent + 1 }, (_, i) => `k${i}`) }, 'hello.kinds', 256],
      [{ labels: [{ key: 'k', value: big(KB * KB) }] }, 'hello.labels', LIMITS.labelValue],
      [{ version: big(KB * KB) }, 'hello.version', LIMITS.agentVersion],
    ];
    for (const [bad, field, limit] of cases) {
      const call = c.connect(deadline());
      const st = streamStatus(call);
      call.write({ msg: { $case: 'hello', value: { ...hello, ...bad } } });
      expectRefused(await st, field, limit);
    }
  });

  it('health Check and Watch with a 1 MB service name → INVALID_ARGUMENT; unknown names stay NOT_FOUND', async () => {
    const Health = grpc.makeGenericClientConstructor(healthService as grpc.ServiceDefinition, 'Health');
    const h = new Health(mesh.address('/'), grpc.credentials.createInsecure(), {
      'grpc.max_send_message_length': 8 << 20,
    }) as unknown as grpc.Client & {
      check: Unary<{ service: string }>;
      watch(req: { service: string }, opts: Partial<grpc.CallOptions>): grpc.ClientReadableStream<unknown>;
    };
    clients.push(h);
    expectRefused(await unary(h, h.check, { service: big(KB * KB) }), 'service', LIMITS.healthService);
    expectRefused(await streamStatus(h.watch({ service: big(KB * KB) }, deadline())), 'service', LIMITS.healthService);
    const unknown = await unary(h, h.check, { service: big(LIMITS.healthService) });
    expect(unknown.code).toBe(grpc.status.NOT_FOUND);
    expect(unknown.details.length).toBeLessThan(LIMITS.statusMessage);
  });

  it('watchers per task and agents per node are bounded: RESOURCE_EXHAUSTED past the limit', async () => {
    const root = mesh.replicas.get('/')!;
    const { taskId } = await new Promise<{ taskId: string }>((resolve, reject) =>
      task.submit({ task: TaskSpec.fromPartial({ kind: 'nobody-serves-this' }) }, (err, res) =>
        err ? reject(err) : resolve(res!),
      ),
    );
    root.tasks.watchers.limits.perTask = 2;
    const open = [task.watch({ taskId }), task.watch({ taskId })];
    for (const w of open) w.on('error', () => undefined);
    await waitFor(() => root.tasks.watchers.streams === 2, { what: 'two watchers' });
    const third = await streamStatus(task.watch({ taskId }, deadline()));
    expect(third.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(third.details).toMatch(/limit per task/);
    for (const w of open) w.cancel();
    await waitFor(() => root.tasks.watchers.streams === 0, { what: 'watchers gone' });
    root.tasks.watchers.limits.perTask = LIMITS.watchersPerTask;
    await unary(task, task.cancel, { taskId, reason: 'test over' });

    const agentsHere = mesh.replicas.get(NODE)!.cell.agents!;
    agentsHere.maxAgents = agentsHere.byId.size; // 'good' fills it
    const c = new AgentServiceClient(mesh.address(NODE), grpc.credentials.createInsecure());
    clients.push(c);
    const refused = await streamStatus(c.connect(deadline()));
    expect(refused.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    agentsHere.maxAgents = LIMITS.agentsPerNode;
  });

  it('the mesh still serves, and no log line carried more than a few hundred bytes of caller input', async () => {
    const ok = await unary(nodeTask, nodeTask.submit, { task: TaskSpec.fromPartial({ kind: 'echo' }) });
    expect(ok.code).toBe(grpc.status.OK);
    expect(lines.length).toBeGreaterThan(10);
    const longest = Math.max(...lines.map((l) => l.length));
    expect(longest).toBeLessThan(4 * KB);
  });
});
