// Tokens and roles on a secured mesh (mTLS between the four tiers, tokens for
// everyone else), over real gRPC on 127.0.0.1: an agent without a valid token
// is refused, a submitter only submits and reads for its tenants, admin roles
// are separate, JWTs work, refusals are logged naming the principal and never
// the token, and a token added to the file works without a restart.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { status } from '@grpc/grpc-js';
import { Agent } from '../../src/agent/index.js';
import { MeshClient, MeshClientError } from '../../src/client/index.js';
import { startMesh, type MeshHarness } from '../../src/dev/harness.js';
import { AdminServiceClient, DrainAgentRequest } from '../../src/gen/meshlb/v1/admin.js';
import { callerCredentials } from '../../src/security/caller.js';
import { signJwt } from '../../src/security/jwt.js';
import { TaskState } from '../../src/gen/meshlb/v1/task.js';
import { waitFor } from '../helpers/wait.js';
import { captureLogs, perCellSecurity, secureTopology, TOKENS, tokensYaml, type SecureTopology } from './fixture.js';

let t: SecureTopology;
let mesh: MeshHarness;
const logs = captureLogs();
const closers: Array<{ close(): void }> = [];

const R = 'replicas: [{ address: "127.0.0.1:{port}" }]';
const CHAIN = `
name: /
${R}
children:
  - name: r
    ${R}
    children:
      - name: z
        ${R}
        children:
          - name: n
            ${R}
`;

beforeAll(async () => {
  t = await secureTopology(CHAIN);
  mesh = await startMesh(t.topology, {
    heartbeatIntervalMs: 100,
    heartbeatTimeoutMs: 1500,
    summaryIntervalMs: 100,
    perCell: perCellSecurity(t),
  });
  await mesh.ready(15_000);
}, 60_000);

afterAll(async () => {
  for (const c of closers) c.close();
  await mesh?.close();
  logs.restore();
});

const tls = () => ({ caFile: join(t.certs, 'ca.pem') });
const client = (token?: string) => {
  const c = new MeshClient({
    address: mesh.address('/'),
    tls: tls(),
    ...(token ? { token } : {}),
    submitRetry: false,
  });
  closers.push(c);
  return c;
};
const agent = (id: string, token?: string) => {
  const a = new Agent({
    address: mesh.address('/r/z/n'),
    agentId: id,
    slots: 2,
    tls: tls(),
    ...(token ? { token } : {}),
    backoff: { initialMs: 20, maxMs: 200 },
  });
  a.handle('echo', (task) => task.payload);
  closers.push(a);
  return a;
};
async function refusal(p: Promise<unknown>): Promise<MeshClientError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e, 'expected a refusal').toBeInstanceOf(MeshClientError);
  return e as MeshClientError;
}

describe('agents', () => {
  it('an agent without a valid token is refused UNAUTHENTICATED; one with a submitter token PERMISSION_DENIED', async () => {
    const none = agent('no-token');
    const bad = agent('bad-token', 'not-a-real-token-0123456789');
    const wrongRole = agent('submitter-token', TOKENS.acme[0]);
    const seen = new Map<string, { code: number; details: string }>();
    for (const a of [none, bad, wrongRole]) a.on('helloRefused', (r) => seen.set(a.agentId, r));
    for (const a of [none, bad, wrongRole]) void a.start();
    await waitFor(() => seen.size === 3, { timeoutMs: 10_000, what: 'three refusals' });
    expect(seen.get('no-token')).toMatchObject({ code: status.UNAUTHENTICATED });
    expect(seen.get('no-token')!.details).toContain('no bearer token');
    expect(seen.get('bad-token')).toMatchObject({
      code: status.UNAUTHENTICATED,
      details: expect.stringContaining('unknown token'),
    });
    expect(seen.get('submitter-token')).toMatchObject({ code: status.PERMISSION_DENIED });
    expect(seen.get('submitter-token')!.details).toContain('acme (roles submitter');
    expect(seen.get('submitter-token')!.details).toContain('needs the role agent');
    expect(mesh.replicas.get('/r/z/n')!.cell.agents!.byId.size).toBe(0);
    for (const a of [none, bad, wrongRole]) a.close();
  });

  it('an agent with an agent token connects and runs tasks', async () => {
    const a = agent('worker-1', TOKENS.agent[0]);
    await a.start();
    await waitFor(() => a.state === 'connected', { what: 'agent connected' });
    const c = client(TOKENS.acme[0]);
    const { taskId } = await c.submit({ kind: 'echo', tenant: 'acme', payload: Buffer.from('hi') });
    const done = await c.waitForResult(taskId, { timeoutMs: 15_000 });
    expect(done.state).toBe(TaskState.TASK_STATE_COMPLETED);
  });
});

describe('clients and tenants', () => {
  it('no token is UNAUTHENTICATED; a token of another role PERMISSION_DENIED', async () => {
    const e1 = await refusal(client().submit({ kind: 'echo', tenant: 'acme' }));
    expect(e1.code).toBe(status.UNAUTHENTICATED);
    const e2 = await refusal(client(TOKENS.agent[0]).submit({ kind: 'echo', tenant: 'acme' }));
    expect(e2.code).toBe(status.PERMISSION_DENIED);
    expect(e2.message).toContain('needs the role submitter');
  });

  it('a client submitting for another tenant is refused; its own tenant is accepted', async () => {
    const acme = client(TOKENS.acme[0]);
    const e = await refusal(acme.submit({ kind: 'echo', tenant: 'beta' }));
    expect(e.code).toBe(status.PERMISSION_DENIED);
    expect(e.message).toContain('tenant "beta"');
    const eb = await refusal(
      acme.submitBatch([
        { kind: 'echo', tenant: 'acme' },
        { kind: 'echo', tenant: 'beta' },
      ]),
    );
    expect(eb.code).toBe(status.PERMISSION_DENIED);
    expect(eb.message).toContain('tasks[1]');
    const ok = await acme.submit({ kind: 'echo', tenant: 'acme' });
    expect(ok.taskId).not.toBe('');
    // A spec naming no tenant takes the token's only tenant.
    const implicit = await acme.submit({ kind: 'echo' });
    expect((await acme.get(implicit.taskId)).spec?.tenant).toBe('acme');
  });

  it("another tenant's task cannot be read, watched or cancelled; admin roles may", async () => {
    const acme = client(TOKENS.acme[0]);
    const beta = client(TOKENS.beta[0]);
    const { taskId } = await acme.submit({ kind: 'nobody-runs-this', tenant: 'acme' });
    expect((await refusal(beta.get(taskId))).code).toBe(status.PERMISSION_DENIED);
    expect((await refusal(beta.cancel(taskId))).code).toBe(status.PERMISSION_DENIED);
    const watched = (async () => {
      for await (const x of beta.watch(taskId)) void x;
    })();
    expect((await refusal(watched)).code).toBe(status.PERMISSION_DENIED);
    // Waiting on the shared WatchMany stream: the guard refuses the id, and the wait says why.
    expect((await refusal(beta.waitForResult(taskId, { timeoutMs: 20_000 }))).code).toBe(status.PERMISSION_DENIED);
    const acmeWaits = acme.waitForResult(taskId, { timeoutMs: 20_000 });
    // admin-read reads any tenant's task but may not cancel it; admin-write may.
    expect((await client(TOKENS.ops[0]).get(taskId)).id).toBe(taskId);
    expect((await refusal(client(TOKENS.ops[0]).cancel(taskId))).code).toBe(status.PERMISSION_DENIED);
    expect((await client(TOKENS.root[0]).cancel(taskId)).state).toBe(TaskState.TASK_STATE_CANCELLED);
    expect((await acmeWaits).state).toBe(TaskState.TASK_STATE_CANCELLED);
    expect(acme.results!.stats.broken).toBe(0); // served by WatchMany, not one Watch per task
    // An unknown task is still NOT_FOUND (no tenant to check).
    expect((await refusal(beta.get('no-such-task'))).code).toBe(status.NOT_FOUND);
  });

  it('admin methods: a token is needed; admin-read may read, not drain', async () => {
    const admin = (token: string) => {
      const c = new AdminServiceClient(mesh.address('/r/z/n'), callerCredentials({ tls: tls(), token })!);
      closers.push(c);
      return c;
    };
    const call = <R>(f: (cb: (err: { code: number; details: string } | null, r?: R) => void) => void) =>
      new Promise<{ err: { code: number; details: string } | null; r?: R }>((res) => f((err, r) => res({ err, r })));
    const ops = admin(TOKENS.ops[0]);
    // Past the guard: answered by AdminService itself (whatever it answers, not a refusal).
    const got = await call((cb) => ops.getTopology({}, cb));
    expect([status.UNAUTHENTICATED, status.PERMISSION_DENIED]).not.toContain(got.err?.code);
    const anon = new AdminServiceClient(mesh.address('/r/z/n'), callerCredentials({ tls: tls() })!);
    closers.push(anon);
    const refused = await call((cb) => anon.getTopology({}, cb));
    expect(refused.err?.code).toBe(status.UNAUTHENTICATED);
    const drain = await call((cb) =>
      ops.drainAgent(DrainAgentRequest.fromPartial({ agentId: 'worker-1', reason: 'x' }), cb),
    );
    expect(drain.err?.code).toBe(status.PERMISSION_DENIED);
    expect(drain.err?.details).toContain('needs the role admin-write');
  });
});

describe('JWTs and the tokens file', () => {
  const secret = () => readFileSync(join(t.dir, 'jwt.secret'));
  it('an HS256 JWT with roles and tenants works; an expired or wrongly signed one is UNAUTHENTICATED', async () => {
    const now = Math.floor(Date.now() / 1000);
    const good = signJwt(
      { sub: 'svc-a', roles: ['submitter'], tenants: ['acme'], exp: now + 600 },
      { hs256Secret: secret() },
    );
    expect((await client(good).submit({ kind: 'echo', tenant: 'acme' })).taskId).not.toBe('');
    expect((await refusal(client(good).submit({ kind: 'echo', tenant: 'beta' }))).code).toBe(status.PERMISSION_DENIED);
    const expired = signJwt(
      { sub: 'svc-a', roles: ['submitter'], tenants: ['acme'], exp: now - 3600 },
      { hs256Secret: secret() },
    );
    const e = await refusal(client(expired).submit({ kind: 'echo', tenant: 'acme' }));
    expect(e.code).toBe(status.UNAUTHENTICATED);
    expect(e.message).toContain('expired');
    const forged = signJwt(
      { sub: 'svc-a', roles: ['submitter'], tenants: ['*'], exp: now + 600 },
      { hs256Secret: Buffer.from('guess') },
    );
    expect((await refusal(client(forged).submit({ kind: 'echo' }))).message).toContain('signature does not verify');
  });

  it('refusals are logged naming the principal, never the token', () => {
    const refused = logs.lines.filter((l) => l.includes('"call refused"'));
    expect(refused.some((l) => l.includes('"principal":"beta"') && l.includes('PERMISSION_DENIED'))).toBe(true);
    expect(refused.some((l) => l.includes('"principal":"anonymous"') && l.includes('UNAUTHENTICATED'))).toBe(true);
    for (const [token] of Object.values(TOKENS)) expect(logs.lines.join('\n')).not.toContain(token);
  });

  it('a token added to the file works without a restart', async () => {
    const fresh = 'fresh-token-0123456789abcdef';
    const c = client(fresh);
    expect((await refusal(c.submit({ kind: 'echo', tenant: 'acme' }))).code).toBe(status.UNAUTHENTICATED);
    writeFileSync(join(t.dir, 'tokens.yaml'), tokensYaml({ ...TOKENS, fresh: [fresh, ['submitter'], ['acme']] }));
    await waitFor(
      async () =>
        await c.submit({ kind: 'echo', tenant: 'acme' }).then(
          () => true,
          () => false,
        ),
      { timeoutMs: 15_000, intervalMs: 100, what: 'the new token accepted' },
    );
  });

  it('the SDK never sends a token in plaintext', () => {
    expect(() => new MeshClient({ address: mesh.address('/'), token: 'x' })).toThrow(/only over TLS/);
  });
});
