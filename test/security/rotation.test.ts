// Certificate rotation without a restart: re-issuing the files (meshlb certs
// again, same CA) is picked up by the running server (a new connection sees
// the new certificate) and by the replica's outgoing channels (a new
// connection presents the new client certificate); connections already open
// keep working. A half-done rotation (a key that does not match) is refused
// and the previous files stay in use.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import { startReplicaServer, type ReplicaServer } from '../../src/admin/grpc-server.js';
import { checkHealth } from '../../src/cli/health-check.js';
import { makeCerts } from '../../src/security/certs.js';
import { ReplicaTls } from '../../src/security/tls.js';
import { waitFor } from '../helpers/wait.js';
import { secureTopology, type SecureTopology } from './fixture.js';

let t: SecureTopology;
let rootTls: ReplicaTls;
let childTls: ReplicaTls;
let server: ReplicaServer;
/** Serial numbers of the client certificates the server saw, in call order. */
const seen: string[] = [];

const files = (who: string) => ({
  ca: join(t.certs, 'ca.pem'),
  cert: join(t.certs, `${who}.pem`),
  key: join(t.certs, `${who}.key`),
});

beforeAll(async () => {
  t = await secureTopology(
    'name: /\nreplicas: [{ address: "127.0.0.1:{port}" }]\nchildren:\n  - { name: r, replicas: [{ address: "127.0.0.1:{port}" }] }\n',
    { auth: false },
  );
  const meshId = t.topology.id;
  rootTls = new ReplicaTls({ files: files('root-1'), self: { meshId, cell: '/', replica: 1 }, reloadIntervalMs: 100 });
  childTls = new ReplicaTls({ files: files('r-1'), self: { meshId, cell: '/r', replica: 1 }, reloadIntervalMs: 100 });
  const record: grpc.ServerInterceptor = (_m, call) =>
    new grpc.ServerInterceptingCall(call, {
      start: (next) => {
        const c = call.getAuthContext().sslPeerCertificate;
        seen.push(c?.serialNumber ?? 'none');
        next();
      },
    });
  server = await startReplicaServer({ services: [], credentials: rootTls.serverCredentials(), interceptors: [record] });
}, 60_000);

afterAll(async () => {
  await server?.close(0);
  rootTls?.close();
  childTls?.close();
});

/** The serial of the certificate a new TLS connection to the server gets. */
function serverSerial(): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(
      {
        host: '127.0.0.1',
        port: server.port,
        ca: readFileSync(join(t.certs, 'ca.pem')),
        servername: 'localhost',
        ALPNProtocols: ['h2'],
      },
      () => {
        const serial = s.getPeerCertificate().serialNumber;
        s.destroy();
        resolve(serial);
      },
    );
    s.on('error', reject);
  });
}

const HealthClient = grpc.makeGenericClientConstructor(
  {
    check: {
      path: '/grpc.health.v1.Health/Check',
      requestStream: false,
      responseStream: false,
      requestSerialize: (b: Buffer) => b,
      requestDeserialize: (b: Buffer) => b,
      responseSerialize: (b: Buffer) => b,
      responseDeserialize: (b: Buffer) => b,
    },
  },
  'Health',
);
type Health = grpc.Client & { check(req: Buffer, cb: (e: Error | null) => void): void };
// A private subchannel: a new channel would otherwise share the connection an earlier one opened.
const childClient = () =>
  new HealthClient(server.address, childTls.channelCredentials('/'), {
    'grpc.use_local_subchannel_pool': 1,
  }) as unknown as Health;

/** A health Check with the child's replica credentials (over a new channel unless given one): the serial the server saw. */
async function childCall(client?: Health): Promise<string> {
  const c = client ?? childClient();
  const n = seen.length;
  await new Promise<void>((resolve, reject) => c.check(Buffer.alloc(0), (e) => (e ? reject(e) : resolve())));
  if (!client) c.close();
  return seen[n]!;
}

const reissue = () => makeCerts({ topology: t.topology, outDir: t.certs });

describe('rotation', () => {
  it('the server presents re-issued files to new connections, with no restart', async () => {
    const before = await serverSerial();
    expect(await checkHealth(server.address, '', 2000, { tls: { caFile: join(t.certs, 'ca.pem') } })).toBe('SERVING');
    const reloads = rootTls.provider.reloads;
    await reissue();
    await waitFor(() => rootTls.provider.reloads > reloads, { what: 'the server reloaded its files' });
    const after = await serverSerial();
    expect(after).not.toBe(before);
    expect(after).toBe(
      new (await import('node:crypto')).X509Certificate(readFileSync(files('root-1').cert)).serialNumber,
    );
  });

  it("a replica's new outgoing connection presents its re-issued certificate; an open one keeps working", async () => {
    const kept = childClient();
    const first = await childCall(kept);
    expect(first).not.toBe('none');
    const reloads = childTls.provider.reloads;
    await reissue();
    await waitFor(() => childTls.provider.reloads > reloads, { what: 'the child reloaded its files' });
    const second = await childCall();
    expect(second).not.toBe(first);
    expect(second).toBe(childTls.provider.certs.leaf!.serialNumber);
    expect(await childCall(kept)).toBe(first); // the connection made before the rotation, still up
    kept.close();
  });

  it('a key that does not match its certificate is refused; the previous files stay in use', async () => {
    const good = childTls.provider.certs.leaf!.serialNumber;
    writeFileSync(files('r-1').key, readFileSync(files('root-1').key));
    expect(await childTls.provider.check()).toBe(false);
    expect(childTls.provider.certs.leaf!.serialNumber).toBe(good);
    expect(await childCall()).toBe(good);
  });
});
