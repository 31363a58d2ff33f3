// Reflection and health name exactly the services a replica serves (issue 9,
// item 2). Before, reflection listed every service in the descriptor pool: a
// node replica offered LinkService (nodes have no children), a global one
// AgentService, a replica with no data dir RaftService, and each answered
// UNIMPLEMENTED. Here, over real gRPC: a node replica, a global replica
// without a data dir and one with (a one-voter Raft group, which serves the
// Raft stream) each list exactly their services; health says SERVING for
// each of those and NOT_FOUND for the others.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createRequire } from 'node:module';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { service as healthService } from 'grpc-health-check';
import { afterEach, describe, expect, it } from 'vitest';
import { descriptorPool } from '../../src/admin/reflection.js';
import { Replica } from '../../src/mesh/replica.js';
import { parseTopology } from '../../src/topology/parse.js';
import type { Topology } from '../../src/topology/types.js';
import { freePort } from '../helpers/process.js';

const require = createRequire(import.meta.url);
type Any = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const ALWAYS = [
  'grpc.health.v1.Health',
  'grpc.reflection.v1.ServerReflection',
  'grpc.reflection.v1alpha.ServerReflection',
  'meshlb.v1.AdminService',
  'meshlb.v1.TaskService',
];

async function topology(): Promise<Topology> {
  const p = await Promise.all([0, 1, 2, 3].map(() => freePort()));
  const a = (i: number) => `[{ address: "127.0.0.1:${p[i]}" }]`;
  return parseTopology(`
name: served
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

const replicas: Replica[] = [];
const clients: grpc.Client[] = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await Promise.all(replicas.splice(0).map((r) => r.close(100)));
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function start(cell: string, dataDir?: string): Promise<Replica> {
  const r = await new Replica({ topology: await topology(), cell, seed: 3, ...(dataDir ? { dataDir } : {}) }).start();
  replicas.push(r);
  return r;
}

/** listServices over grpc.reflection.v1, as grpcurl `list` asks it. */
async function listed(address: string): Promise<string[]> {
  const dir = join(dirname(require.resolve('@grpc/reflection')), '..', 'proto');
  const def = protoLoader.loadSync('grpc/reflection/v1/reflection.proto', { includeDirs: [dir], keepCase: true });
  const Ctor = (grpc.loadPackageDefinition(def) as Any).grpc.reflection.v1.ServerReflection as typeof grpc.Client;
  const client = new Ctor(address, grpc.credentials.createInsecure()) as grpc.Client & Any;
  clients.push(client);
  const call = client.ServerReflectionInfo({ deadline: Date.now() + 5000 });
  const answer = new Promise<Any>((resolve, reject) => {
    call.on('data', resolve);
    call.on('error', reject);
  });
  call.write({ list_services: '' });
  const res = await answer;
  call.end();
  return (res.list_services_response.service as Any[]).map((s) => s.name as string).sort();
}

/** Health/Check of each name: its status, or the gRPC code name when refused. */
async function health(address: string, names: readonly string[]): Promise<Record<string, string>> {
  const Health = grpc.makeGenericClientConstructor(healthService as grpc.ServiceDefinition, 'Health');
  const client = new Health(address, grpc.credentials.createInsecure()) as unknown as grpc.Client & Any;
  clients.push(client);
  const out: Record<string, string> = {};
  for (const service of names) {
    out[service] = await new Promise<string>((resolve) =>
      client.check({ service }, { deadline: Date.now() + 5000 }, (err: grpc.ServiceError | null, res: Any) =>
        resolve(err ? grpc.status[err.code] : (res.status as string)),
      ),
    );
  }
  return out;
}

/** Reflection lists exactly `expected`; health says SERVING for those, NOT_FOUND for every other pool service. */
async function expectServes(r: Replica, expected: string[]): Promise<void> {
  expect(await listed(r.address)).toEqual([...expected].sort());
  const all = descriptorPool().services;
  const want = Object.fromEntries(all.map((s) => [s, expected.includes(s) ? 'SERVING' : 'NOT_FOUND']));
  expect(await health(r.address, all)).toEqual(want);
  expect((await health(r.address, ['']))['']).toBe('SERVING');
}

describe('reflection and health list exactly the services served', () => {
  it('a node replica: AgentService, no LinkService, no RaftService', async () => {
    await expectServes(await start('/r/z/n1'), [...ALWAYS, 'meshlb.v1.AgentService']);
  });

  it('a global replica with no data dir: LinkService, no AgentService, no RaftService', async () => {
    await expectServes(await start('/'), [...ALWAYS, 'meshlb.v1.LinkService']);
  });

  it('a global replica on a data dir (a one-voter Raft group): LinkService and RaftService', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'meshlb-served-'));
    dirs.push(dir);
    await expectServes(await start('/', dir), [...ALWAYS, 'meshlb.v1.LinkService', 'meshlb.v1.RaftService']);
  });
});
