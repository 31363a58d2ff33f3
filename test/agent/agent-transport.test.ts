// The agent SDK's two transports (src/agent/transport.ts): which one an agent
// takes (the option, MESHLB_AGENT_TRANSPORT, what keeps grpc-js), and, over
// real sockets on 127.0.0.1 against a grpc-js server, that both behave the
// same: tasks run, the agent comes back after the node restarts on the same
// port, a refusal reaches helloRefused with the same code and details, and an
// address without AgentService makes start() reject with the same error.
import { credentials, Metadata, Server, ServerCredentials, status, type ServerDuplexStream } from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { Agent, AgentChannelPool, seededRandom } from '../../src/agent/index.js';
import {
  AGENT_TRANSPORTS,
  DEFAULT_AGENT_TRANSPORT,
  agentTransport,
  type AgentTransport,
} from '../../src/agent/transport.js';
import {
  AgentServiceService,
  Welcome,
  type ConnectRequest,
  type ConnectResponse,
} from '../../src/gen/meshlb/v1/agent.js';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { dispatch, FakeNode } from '../helpers/fake-node.js';
import { waitFor } from '../helpers/wait.js';
import { secureTopology } from '../security/fixture.js';

const SEED = Number(process.env.MESHLB_TEST_SEED ?? 20261206);
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function newAgent(opts: Partial<ConstructorParameters<typeof Agent>[0]> & { address: string | string[] }): Agent {
  const agent = new Agent({ agentId: 'a1', slots: 4, random: seededRandom(SEED), ...opts });
  cleanups.push(() => agent.close());
  return agent;
}

/** A grpc-js server on 127.0.0.1:0 with `services` (none: nothing implements AgentService). */
async function serve(
  connect?: (call: ServerDuplexStream<ConnectRequest, ConnectResponse>) => void,
  creds = ServerCredentials.createInsecure(),
): Promise<string> {
  const server = new Server();
  if (connect) server.addService(AgentServiceService, { connect });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', creds, (err, p) => (err ? reject(err) : resolve(p))),
  );
  cleanups.push(() => void server.forceShutdown());
  return `127.0.0.1:${port}`;
}

describe('agent transport selection', () => {
  it('names: the default when unset or empty, both names, an unknown MESHLB_AGENT_TRANSPORT refused, a proxy', () => {
    expect(agentTransport(undefined)).toBe(DEFAULT_AGENT_TRANSPORT);
    expect(agentTransport('')).toBe(DEFAULT_AGENT_TRANSPORT);
    for (const t of AGENT_TRANSPORTS) expect(agentTransport(t)).toBe(t);
    expect(() => agentTransport('h2')).toThrow(RangeError);
    const before = process.env.MESHLB_AGENT_TRANSPORT;
    const proxy = process.env.http_proxy;
    try {
      process.env.MESHLB_AGENT_TRANSPORT = 'http3';
      expect(() => new Agent({ address: '127.0.0.1:1', agentId: 'x', slots: 1 })).toThrow(/one of grpc-js, http2/);
      process.env.MESHLB_AGENT_TRANSPORT = 'http2';
      expect(newAgent({ address: '127.0.0.1:1' }).transport).toBe('http2');
      // The option wins over the environment.
      expect(newAgent({ address: '127.0.0.1:1', transport: 'grpc-js' }).transport).toBe('grpc-js');
      process.env.MESHLB_AGENT_TRANSPORT = 'grpc-js';
      expect(newAgent({ address: '127.0.0.1:1' }).transport).toBe('grpc-js');
      expect(newAgent({ address: '127.0.0.1:1', transport: 'http2' }).transport).toBe('http2');
      delete process.env.MESHLB_AGENT_TRANSPORT;
      expect(newAgent({ address: '127.0.0.1:1' }).transport).toBe(DEFAULT_AGENT_TRANSPORT);
      // A proxy grpc-js would use keeps grpc-js unless a transport is named.
      process.env.http_proxy = 'http://127.0.0.1:9';
      expect(newAgent({ address: '127.0.0.1:1' }).transport).toBe('grpc-js');
      expect(newAgent({ address: '127.0.0.1:1', transport: 'http2' }).transport).toBe('http2');
    } finally {
      if (before === undefined) delete process.env.MESHLB_AGENT_TRANSPORT;
      else process.env.MESHLB_AGENT_TRANSPORT = before;
      if (proxy === undefined) delete process.env.http_proxy;
      else process.env.http_proxy = proxy;
    }
  });

  it('what only grpc-js honours keeps it: credentials, channelOptions, clientFor, a token function, a unix address', () => {
    const a = '127.0.0.1:1';
    const transport = 'http2' as const;
    expect(newAgent({ address: a, transport, tls: true, token: 'static' }).transport).toBe('http2');
    expect(newAgent({ address: a, transport, credentials: credentials.createInsecure() }).transport).toBe('grpc-js');
    expect(newAgent({ address: a, transport, channelOptions: {} }).transport).toBe('grpc-js');
    expect(newAgent({ address: a, transport, tls: true, token: () => 'fresh' }).transport).toBe('grpc-js');
    expect(newAgent({ address: 'unix:/tmp/meshlb-no-such.sock', transport }).transport).toBe('grpc-js');
    const pool = new AgentChannelPool({ transport });
    cleanups.push(() => pool.close());
    expect(pool.transport).toBe('http2');
    expect(newAgent({ address: a, openStream: pool.openStream }).transport).toBe('pool');
    // Credentials the pool cannot see into keep grpc-js; with the security they came from, the lean client.
    const opaque = new AgentChannelPool({ transport, credentials: credentials.createInsecure() });
    const known = new AgentChannelPool({ transport, credentials: credentials.createSsl(), security: { tls: true } });
    cleanups.push(
      () => opaque.close(),
      () => known.close(),
    );
    expect(opaque.transport).toBe('grpc-js');
    expect(known.transport).toBe('http2');
    expect(new AgentChannelPool({ transport: 'grpc-js' }).transport).toBe('grpc-js');
  });
});

describe(`the agent over each transport (seed ${SEED})`, () => {
  for (const transport of AGENT_TRANSPORTS) {
    it(`${transport}: runs tasks, comes back after the node restarts on the same port`, async () => {
      const node = await FakeNode.start({ heartbeatIntervalMs: 50 });
      cleanups.push(() => node.stop());
      const agent = newAgent({ address: node.address, transport, backoff: { initialMs: 10, maxMs: 50 } });
      agent.handle('echo', (t) => `${t.text()}!`);
      await agent.start();
      expect(agent.transport).toBe(transport);
      const s1 = node.session('a1')!;
      s1.assign(Array.from({ length: 50 }, (_, i) => dispatch(`t${i}`, 'echo', `p${i}`)));
      await waitFor(() => s1.results.length >= 50, { what: '50 results' });
      expect(new TextDecoder().decode(s1.resultFor('t7')!.output)).toBe('p7!');
      await waitFor(() => s1.loads.length >= 2, { what: 'heartbeats' });

      const port = node.port;
      await node.stop();
      await waitFor(() => agent.state === 'connecting', { what: 'the agent notices the node gone' });
      // The server's forceShutdown resets the stream (CANCEL) and drops the connection: grpc-js reads the
      // reset first (CANCELLED), the lean client the dropped connection (UNAVAILABLE); the agent reconnects alike.
      expect([status.UNAVAILABLE, status.CANCELLED]).toContain(agent.lastStatus?.code);
      const node2 = await FakeNode.start({}, port);
      cleanups.push(() => node2.stop());
      await waitFor(() => agent.state === 'connected' && node2.session('a1'), {
        what: 'reconnect to the restarted node',
      });
      node2.session('a1')!.assign([dispatch('after')]);
      await waitFor(() => node2.session('a1')!.resultFor('after'), { what: 'a task after the reconnect' });
      expect(agent.stats.connects).toBe(2);
      expect(agent.stats.refusedOverSlots).toBe(0);
    }, 30_000);
  }

  it('a refusal reaches helloRefused, and a server without AgentService rejects start(), alike on both', async () => {
    const details = 'caller needs the role agent';
    const refusing = await serve((call) => {
      const md = new Metadata();
      md.set('meshlb-reason', 'role');
      call.emit('error', { code: status.PERMISSION_DENIED, details, metadata: md });
    });
    const notNode = await serve();
    const seen: Record<string, unknown> = {};
    for (const transport of AGENT_TRANSPORTS as readonly AgentTransport[]) {
      const a = newAgent({ address: refusing, transport, kinds: ['echo'], backoff: { initialMs: 10, maxMs: 50 } });
      const refusal = new Promise((resolve) => a.once('helloRefused', resolve));
      void a.start().catch(() => undefined);
      const r = await refusal;
      a.close();
      const b = newAgent({ address: notNode, transport, kinds: ['echo'], backoff: { initialMs: 10, maxMs: 50 } });
      const err = await b.start().then(
        () => undefined,
        (e: unknown) => e as Error & { code?: number },
      );
      seen[transport] = { refusal: r, rejected: { message: err?.message, code: err?.code } };
    }
    expect(seen['grpc-js']).toEqual(seen.http2);
    expect(seen.http2).toMatchObject({
      refusal: { code: status.PERMISSION_DENIED, codeName: 'PERMISSION_DENIED', details, address: refusing },
      rejected: { code: status.UNIMPLEMENTED },
    });
  });

  it('mTLS: with the CA and a client certificate (files) both connect; without the certificate neither does', async () => {
    const R = 'replicas: [{ address: "127.0.0.1:{port}" }]';
    const t = await secureTopology(`name: /\n${R}\nchildren:\n  - { name: r, ${R} }\n`, { auth: false });
    const [server, client] = readdirSync(t.certs)
      .filter((f) => f.endsWith('.pem') && f !== 'ca.pem')
      .map((f) => join(t.certs, f.slice(0, -4)));
    const address = await serve(
      (call) => {
        call.on('error', () => undefined);
        call.write({
          msg: { $case: 'welcome', value: Welcome.fromPartial({ nodeCell: '/r', heartbeatIntervalMs: 1000 }) },
        });
      },
      ServerCredentials.createSsl(
        readFileSync(join(t.certs, 'ca.pem')),
        [{ private_key: readFileSync(`${server}.key`), cert_chain: readFileSync(`${server}.pem`) }],
        true,
      ),
    );
    const caFile = join(t.certs, 'ca.pem');
    for (const transport of AGENT_TRANSPORTS) {
      const a = newAgent({
        address,
        transport,
        kinds: ['echo'],
        tls: { caFile, certFile: `${client}.pem`, keyFile: `${client}.key` },
      });
      await a.start();
      expect([transport, a.transport, a.welcome?.nodeCell]).toEqual([transport, transport, '/r']);
      a.close();
      const anon = newAgent({
        address,
        transport,
        kinds: ['echo'],
        tls: { caFile },
        backoff: { initialMs: 10, maxMs: 50 },
      });
      void anon.start().catch(() => undefined);
      await waitFor(() => anon.lastStatus !== undefined, { what: `${transport}: the handshake refused` });
      expect([transport, anon.lastStatus!.code, anon.state]).toEqual([transport, status.UNAVAILABLE, 'connecting']);
    }
  }, 30_000);
});
