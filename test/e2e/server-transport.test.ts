// The server side's two transports (src/admin/grpc-server.ts with
// src/util/grpc-h2-server.ts) in real meshes over sockets on 127.0.0.1, each
// forced per replica (serverTransport). Four tiers: the links are dialled by
// grpc-js's client or the lean one, agents are a SimAgent (grpc-js client) and
// an SDK agent (lean client); tasks run, and on http2 every parent's links
// and the node's agent streams were served on the lean path (its call count),
// while health and reflection answer on the same port. With mTLS and tokens:
// links with replica certificates, an agent with an agent token runs a task,
// agents with no token or a submitter token are refused with the same codes,
// details and 'call refused' log lines on both.
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { service as healthService } from 'grpc-health-check';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { Agent } from '../../src/agent/index.js';
import { MeshClient } from '../../src/client/index.js';
import { startMesh, type MeshHarness } from '../../src/dev/harness.js';
import { SimAgent } from '../../src/dev/sim-agent.js';
import { TaskState } from '../../src/gen/meshlb/v1/task.js';
import { chainTopologyYaml } from '../../src/topology/chain.js';
import { parseTopology } from '../../src/topology/parse.js';
import { seededRandom } from '../../src/util/rng.js';
import { TRANSPORTS, type Transport } from '../../src/util/transport.js';
import { waitFor } from '../helpers/wait.js';
import { captureLogs, perCellSecurity, secureTopology, TOKENS } from '../security/fixture.js';

const SEED = Number(process.env.MESHLB_TEST_SEED ?? 20261207);
const CHAIN = parseTopology(
  chainTopologyYaml({
    name: 'server-transport-chain',
    defaults: { summaryIntervalMs: 100, heartbeatIntervalMs: 100, linkTimeoutMs: 1500 },
  }),
);
const require = createRequire(import.meta.url);
type Any = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** grpcurl's first two questions: is it serving (health), and what does it serve (reflection list). */
async function probe(address: string): Promise<{ health: string; services: string[] }> {
  const Health = grpc.makeGenericClientConstructor(healthService as grpc.ServiceDefinition, 'Health');
  const h = new Health(address, grpc.credentials.createInsecure()) as grpc.Client & Any;
  const dir = join(dirname(require.resolve('@grpc/reflection')), '..', 'proto');
  const def = protoLoader.loadSync('grpc/reflection/v1/reflection.proto', { includeDirs: [dir], keepCase: true });
  const pkg = grpc.loadPackageDefinition(def) as Any;
  const r = new pkg.grpc.reflection.v1.ServerReflection(address, grpc.credentials.createInsecure()) as Any;
  try {
    const health = await new Promise<Any>((res, rej) =>
      h.check({ service: '' }, (err: Error | null, out: Any) => (err ? rej(err) : res(out))),
    );
    const call = r.ServerReflectionInfo();
    const list = await new Promise<Any>((res, rej) => {
      call.on('data', res);
      call.on('error', rej);
      call.write({ list_services: '*' });
    });
    call.end();
    return {
      health: String(health.status),
      services: (list.list_services_response.service as Any[]).map((s) => String(s.name)),
    };
  } finally {
    h.close();
    r.close();
  }
}

describe(`the server transports in a mesh (seed ${SEED})`, () => {
  for (const server of TRANSPORTS) {
    for (const link of TRANSPORTS) {
      it(`${server} server, ${link} link client: tasks through four tiers, both agent clients`, async () => {
        const mesh: MeshHarness = await startMesh(CHAIN, {
          seed: SEED,
          perCell: () => ({ serverTransport: server, linkTransport: link }),
        });
        cleanups.push(() => mesh.close());
        await mesh.ready();
        const node = mesh.address(mesh.nodes[0]!);
        const sim = new SimAgent({
          address: node,
          agentId: 'sim',
          kinds: ['echo'],
          slots: 4,
          random: seededRandom(SEED),
        });
        cleanups.push(() => sim.kill());
        const sdk = new Agent({ address: node, agentId: 'sdk', slots: 4, transport: 'http2' });
        sdk.handle('echo', (task) => task.payload);
        cleanups.push(() => sdk.close());
        await Promise.all([sim.start(), sdk.start()]);
        const root = mesh.replicas.get('/')!;
        const client = new MeshClient({ address: mesh.address('/') });
        cleanups.push(() => client.close());
        const items = await client.submitBatch(
          Array.from({ length: 100 }, (_, i) => ({ kind: 'echo', payload: `t${i}` })),
        );
        await waitFor(
          () => items.every((i) => root.cell.ledger.get(i.taskId)?.state === TaskState.TASK_STATE_COMPLETED),
          { timeoutMs: 15_000, what: '100 tasks completed' },
        );
        for (const [path, r] of mesh.replicas) {
          const st = r.serverTransport;
          expect(st.transport, path).toBe(server);
          // Every cell but the node serves its child's link; the node serves its two agents.
          const hot = path === mesh.nodes[0] ? 2 : 1;
          expect(st.leanCalls, path).toBe(server === 'http2' ? hot : 0);
        }
        const p = await probe(node);
        expect(p.health).toBe('SERVING');
        expect(p.services).toEqual(expect.arrayContaining(['meshlb.v1.AgentService', 'grpc.health.v1.Health']));
      }, 60_000);
    }
  }
});

describe('mTLS and tokens: the guard on both server transports', () => {
  const logs = captureLogs();
  afterAll(() => logs.restore());

  const refusals = new Map<Transport, unknown[]>();
  for (const server of TRANSPORTS) {
    it(`${server}: replica links, an agent token runs a task, no token and a submitter token are refused`, async () => {
      const R = 'replicas: [{ address: "127.0.0.1:{port}" }]';
      const t = await secureTopology(
        `name: /\n${R}\nchildren:\n  - name: r\n    ${R}\n    children:\n      - name: z\n        ${R}\n` +
          `        children:\n          - { name: n, ${R} }\n`,
      );
      const sec = perCellSecurity(t);
      const mesh = await startMesh(t.topology, {
        seed: SEED,
        summaryIntervalMs: 100,
        heartbeatIntervalMs: 100,
        perCell: (path) => ({ ...sec(path), serverTransport: server }),
      });
      cleanups.push(() => mesh.close());
      await mesh.ready(15_000);
      expect(mesh.replicas.get('/r/z/n')!.cell.parent!.connected).toBe(true);
      const tls = { caFile: join(t.certs, 'ca.pem') };
      const agent = (id: string, token?: string): Agent => {
        const a = new Agent({
          address: mesh.address('/r/z/n'),
          agentId: id,
          slots: 2,
          tls,
          ...(token ? { token } : {}),
          backoff: { initialMs: 20, maxMs: 200 },
        });
        a.handle('echo', (task) => task.payload);
        cleanups.push(() => a.close());
        return a;
      };
      const seen = new Map<string, { code: number; details: string }>();
      const bad = [agent('no-token'), agent('submitter-token', TOKENS.acme[0])];
      for (const a of bad) a.on('helloRefused', (r) => seen.set(a.agentId, { code: r.code, details: r.details }));
      const mark = logs.lines.length;
      for (const a of bad) void a.start();
      await waitFor(() => seen.size === 2, { timeoutMs: 10_000, what: 'two refusals' });
      for (const a of bad) a.close();
      expect(seen.get('no-token')!.code).toBe(grpc.status.UNAUTHENTICATED);
      expect(seen.get('submitter-token')).toMatchObject({
        code: grpc.status.PERMISSION_DENIED,
        details: expect.stringContaining('needs the role agent'),
      });
      const refusedLines = logs.lines
        .slice(mark)
        .map((l) => JSON.parse(l) as Any)
        .filter((l) => l.msg === 'call refused')
        .map((l) => ({ method: l.method, code: l.code, principal: l.principal, err: l.err }));
      expect(refusedLines.length).toBeGreaterThanOrEqual(2);
      refusals.set(server, [[...seen].sort(), [...new Set(refusedLines.map((l) => JSON.stringify(l)))].sort()]);

      const good = agent('worker', TOKENS.agent[0]);
      await good.start();
      const client = new MeshClient({ address: mesh.address('/'), tls, token: TOKENS.acme[0] });
      cleanups.push(() => client.close());
      const { taskId } = await client.submit({ kind: 'echo', tenant: 'acme', payload: Buffer.from('hi') });
      expect((await client.waitForResult(taskId, { timeoutMs: 15_000 })).state).toBe(TaskState.TASK_STATE_COMPLETED);
      const leanCalls = mesh.replicas.get('/r/z/n')!.serverTransport.leanCalls;
      expect(leanCalls > 0).toBe(server === 'http2');
    }, 60_000);
  }

  it('the refusals and their log lines are the same on both', () => {
    expect(refusals.size).toBe(2);
    expect(refusals.get('http2')).toEqual(refusals.get('grpc-js'));
  });
});
