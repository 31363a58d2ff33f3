// docs/operations.md, "The admin API": every grpcurl line of its block, run
// in order against a live mesh (the example topology in one process, agents
// sim-0..sim-3 on /eu/west-1a/n1 as agent-sim names them). grpcurl cannot be
// installed here, so each line is parsed as grpcurl would take it: the
// address (the topology file's, mapped to the replica's live one), the method,
// and -d's JSON read with the request's proto3 JSON mapping; a field name the
// request does not have fails the test (grpcurl refuses those), and so does
// any call that is not answered OK. Placeholders (<id>, <token>, ...) are
// filled with real ids made for them.
import { readFileSync } from 'node:fs';
import { credentials, type ServiceError } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MeshClient } from '../../src/client/index.js';
import { startMesh, type MeshHarness } from '../../src/dev/harness.js';
import { SimAgent } from '../../src/dev/sim-agent.js';
import * as adminProto from '../../src/gen/meshlb/v1/admin.js';
import { AdminServiceClient, AdminServiceService } from '../../src/gen/meshlb/v1/admin.js';
import { TaskState } from '../../src/gen/meshlb/v1/task.js';
import { seededRandom } from '../../src/policies/index.js';
import { loadTopology } from '../../src/topology/parse.js';
import { waitFor } from '../helpers/wait.js';

const SEED = Number(process.env.MESHLB_TEST_SEED ?? 20261206);
const NODE = '/eu/west-1a/n1';

/** The sh block of the "## The admin API" section. */
function documentedLines(): string[] {
  const doc = readFileSync('docs/operations.md', 'utf8');
  const section = doc.slice(doc.indexOf('## The admin API'), doc.indexOf('### meshlb status'));
  const block = /```sh\n([\s\S]*?)```/.exec(section)?.[1];
  if (!block) throw new Error('no sh block in "The admin API"');
  return block.split('\n').filter((l) => l.trim() && !l.trim().startsWith('#'));
}

/** Shell words of one line: single quotes keep everything literally; a # outside quotes starts a comment. */
function words(line: string): string[] {
  const out: string[] = [];
  let cur: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i]!;
    if (ch === "'") {
      const end = line.indexOf("'", i + 1);
      cur = (cur ?? '') + line.slice(i + 1, end);
      i = end;
    } else if (ch === ' ') {
      if (cur !== undefined) out.push(cur);
      cur = undefined;
    } else if (ch === '#' && cur === undefined) break;
    else cur = (cur ?? '') + ch;
  }
  if (cur !== undefined) out.push(cur);
  return out;
}

type Json = Record<string, unknown>;
interface MessageType {
  fromJSON(o: unknown): unknown;
  fromPartial(o: object): object;
}

describe(`docs/operations.md admin calls, as written (seed ${SEED})`, () => {
  let mesh: MeshHarness;
  let client: MeshClient;
  const agents: SimAgent[] = [];
  const admins = new Map<string, AdminServiceClient>();

  beforeAll(async () => {
    const topology = loadTopology('deploy/topologies/example.yaml');
    mesh = await startMesh(topology, {
      seed: SEED,
      unplaceableTimeoutMs: 1000,
      heartbeatIntervalMs: 100,
      heartbeatTimeoutMs: 1500,
      summaryIntervalMs: 100,
    });
    const random = seededRandom(SEED);
    const add = async (node: string, agentId: string, kinds: string[], failureRate = 0): Promise<void> => {
      const a = new SimAgent({ address: mesh.address(node), agentId, kinds, slots: 2, failureRate, random });
      agents.push(a);
      await a.start();
    };
    for (let i = 0; i < 4; i++) await add(NODE, `sim-${i}`, ['default']);
    for (const n of mesh.nodes.filter((p) => p !== NODE)) await add(n, `${n}-a`, ['default']);
    await add('/us/east-1a/n1', 'flaky', ['flaky'], 1);
    await mesh.ready();
    client = new MeshClient({ address: mesh.address('/') });
  }, 30_000);

  afterAll(async () => {
    for (const a of admins.values()) a.close();
    for (const a of agents) a.kill();
    client?.close();
    await mesh?.close();
  });

  const rootState = (id: string): TaskState | undefined => mesh.replicas.get('/')!.cell.ledger.get(id)?.state;
  const submitAndWait = async (spec: Parameters<MeshClient['submit']>[0], until: TaskState): Promise<string> => {
    const s = await client.submit(spec);
    await waitFor(() => rootState(s.taskId) === until, { timeoutMs: 15_000, what: `${spec.kind} ${TaskState[until]}` });
    return s.taskId;
  };

  /** The live address for an address the docs give (the example topology's). */
  const live = (address: string): string => {
    const cell = mesh.topology.cells.find((c) => c.replicas.some((r) => r.address === address));
    if (!cell) throw new Error(`${address} is no replica of the example topology`);
    return mesh.address(cell.path);
  };

  const call = (address: string, method: string, body: Json): Promise<unknown> => {
    const name = (method[0]!.toLowerCase() + method.slice(1)) as keyof typeof AdminServiceService;
    const def = AdminServiceService[name];
    if (!def) throw new Error(`no AdminService method ${method}`);
    const type = (adminProto as unknown as Record<string, MessageType>)[`${method}Request`]!;
    const known = Object.keys(type.fromPartial({}));
    const unknown = Object.keys(body).filter((k) => !known.includes(k));
    if (unknown.length > 0) throw new Error(`${method}: unknown field(s) ${unknown.join(', ')}`);
    const req = type.fromJSON(body);
    let c = admins.get(address);
    if (!c) admins.set(address, (c = new AdminServiceClient(address, credentials.createInsecure())));
    return new Promise((resolve, reject) =>
      c.makeUnaryRequest(
        def.path,
        def.requestSerialize as (r: unknown) => Buffer,
        def.responseDeserialize as (b: Buffer) => unknown,
        req,
        { deadline: Date.now() + 10_000 },
        (err: ServiceError | null, res?: unknown) =>
          err ? reject(new Error(`${method}: ${err.code} ${err.details}`)) : resolve(res),
      ),
    );
  };

  it('runs every documented call OK against a live mesh', async () => {
    for (let i = 0; i < 6; i++)
      await submitAndWait({ kind: 'default', tenant: 'acme' }, TaskState.TASK_STATE_COMPLETED);
    const vars = new Map<string, string>();
    const lines = documentedLines();
    expect(lines.length).toBeGreaterThanOrEqual(20);
    let ran = 0;
    let lastPageRequest: Json | undefined;
    for (const line of lines) {
      const assign = /^([A-Z]+)=(\S+)/.exec(line);
      if (assign) {
        vars.set(assign[1]!, assign[2]!);
        continue;
      }
      const w = words(line).map((x) => x.replace(/^\$([A-Z]+)$/, (_, v: string) => vars.get(v) ?? `$${v}`));
      expect(w[0], line).toBe('grpcurl');
      let body = '{}';
      const rest: string[] = [];
      for (let k = 1; k < w.length; k++) {
        if (w[k] === '-d') body = w[++k]!;
        else if (!w[k]!.startsWith('-')) rest.push(w[k]!);
      }
      const [address, target] = rest;
      const method = target!.replace('meshlb.v1.AdminService/', '');
      // Placeholders, each made when a line first needs it.
      if (body.includes('<token>')) {
        const page = (await call(live(address!), method, lastPageRequest!)) as { nextPageToken: string };
        expect(page.nextPageToken, 'the page before has a next page').not.toBe('');
        body = body.replace('<token>', page.nextPageToken);
      }
      if (body.includes('<id>')) {
        const [any] = [...mesh.replicas.get('/')!.cell.ledger.records()];
        body = body.replace('<id>', any!.id);
      }
      if (body.includes('<queued-id>')) {
        const s = await client.submit({ kind: 'nobody-yet' });
        body = body.replace('<queued-id>', s.taskId);
      }
      if (body.includes('<failed-id>')) {
        body = body.replace(
          '<failed-id>',
          await submitAndWait({ kind: 'flaky', maxAttempts: 1 }, TaskState.TASK_STATE_FAILED),
        );
      }
      if (body.includes('<dead-id>')) {
        body = body.replace('<dead-id>', await submitAndWait({ kind: 'gpu' }, TaskState.TASK_STATE_DEAD_LETTERED));
      }
      const json = JSON.parse(body) as Json;
      if (method === 'ListTasks') lastPageRequest = json;
      const res = await call(live(address!), method, json);
      expect(res, line).toBeTruthy();
      if (method === 'GetMeshStatus') expect((res as adminProto.GetMeshStatusResponse).cells).toHaveLength(15);
      if (method === 'ReplayDeadLetters' && json.taskIds) {
        expect((res as adminProto.ReplayDeadLettersResponse).replayed).toHaveLength(1);
      }
      ran++;
    }
    expect(ran).toBe(lines.filter((l) => l.startsWith('grpcurl')).length);
  }, 60_000);
});
