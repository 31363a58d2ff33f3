// mTLS between tiers and between the replicas of a cell, over real gRPC on
// 127.0.0.1 (TLS only: no tokens): a child links to its parent with a
// certificate the mesh CA signed; a replica whose certificate another CA
// signed never links; LinkService refuses a certificate of the wrong cell, of
// another CA, or none; a three-replica cell elects and forwards over mTLS and
// its Raft stream refuses a replica of another cell.
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import { MeshClient } from '../../src/client/index.js';
import { LinkServiceClient, type OpenResponse } from '../../src/gen/meshlb/v1/link.js';
import { RaftServiceClient } from '../../src/gen/meshlb/v1/raft.js';
import { Replica } from '../../src/mesh/replica.js';
import { makeCerts } from '../../src/security/certs.js';
import { replicaSecurity } from '../../src/security/replica-security.js';
import { waitFor } from '../helpers/wait.js';
import { secureTopology, type SecureTopology } from './fixture.js';

const R = 'replicas: [{ address: "127.0.0.1:{port}" }]';
const started: Replica[] = [];
afterAll(async () => {
  await Promise.all(started.map((r) => r.close(100)));
});

function replica(
  t: SecureTopology,
  cell: string,
  o: { certsDir?: string; parent?: Replica; n?: number; dataDir?: string } = {},
): Replica {
  // A replica whose files come from another directory: the same topology, its `dir` swapped.
  const topology = o.certsDir
    ? {
        ...t.topology,
        security: {
          tls: {
            ...t.topology.security!.tls!,
            ca: `${o.certsDir}/ca.pem`,
            cert: `${o.certsDir}/{cell}-{replica}.pem`,
            key: `${o.certsDir}/{cell}-{replica}.key`,
          },
        },
      }
    : t.topology;
  const r = new Replica({
    topology,
    cell,
    replica: o.n ?? 1,
    summaryIntervalMs: 100,
    ...(o.parent ? { parentAddresses: () => [o.parent!.address], host: '127.0.0.1', port: 0 } : {}),
    ...(o.dataDir ? { dataDir: o.dataDir } : {}),
    security: replicaSecurity({ topology, cell, replica: o.n ?? 1, baseDir: t.dir })!,
  });
  started.push(r);
  return r;
}

/** Open a link stream with `creds`, send a hello for `cell`; resolves with the status it ends with. */
function openLink(address: string, creds: grpc.ChannelCredentials, cell: string): Promise<grpc.StatusObject> {
  const client = new LinkServiceClient(address, creds);
  const call = client.open();
  return new Promise((resolve) => {
    call.on('data', (_m: OpenResponse) => call.cancel());
    call.on('error', () => undefined);
    call.on('status', (s: grpc.StatusObject) => {
      client.close();
      resolve(s);
    });
    call.write({
      msg: {
        $case: 'hello',
        value: {
          cell,
          replicaId: `${cell}#1`,
          term: 1,
          holding: [],
          mesh: '',
          meshId: '',
          parentCell: '',
          sendNumbers: false,
        },
      },
    });
  });
}

const pem = (dir: string, f: string) => readFileSync(join(dir, f));
const sslWith = (t: SecureTopology, certsDir: string | undefined, who: string) =>
  certsDir
    ? grpc.credentials.createSsl(pem(t.certs, 'ca.pem'), pem(certsDir, `${who}.key`), pem(certsDir, `${who}.pem`))
    : grpc.credentials.createSsl(pem(t.certs, 'ca.pem'));

describe('links between tiers', () => {
  let t: SecureTopology;
  let rogue: string;
  let root: Replica;
  beforeAll(async () => {
    t = await secureTopology(`name: /\n${R}\nchildren:\n  - { name: r, ${R} }\n  - { name: s, ${R} }\n`, {
      auth: false,
    });
    rogue = join(t.dir, 'rogue');
    await makeCerts({ topology: t.topology, outDir: rogue }); // same names, another CA
    root = await replica(t, '/').start();
  }, 60_000);

  it('a child with a certificate signed by the mesh CA links', async () => {
    const r = await replica(t, '/r', { parent: root }).start();
    await waitFor(() => r.cell.parent?.connected && root.cell.children?.links.has('/r'), { what: '/r linked' });
  });

  it('a replica whose certificate another CA signed cannot link; the same cell with the mesh CA then can', async () => {
    const bad = await replica(t, '/s', { parent: root, certsDir: rogue }).start();
    await waitFor(() => (bad.cell.parent?.stats.opened ?? 0) >= 3, { timeoutMs: 15_000, what: 'three link attempts' });
    expect(bad.cell.parent?.connected).toBe(false);
    expect(root.cell.children?.links.has('/s')).toBe(false);
    await bad.close(0);
    const good = await replica(t, '/s', { parent: root }).start();
    await waitFor(() => good.cell.parent?.connected && root.cell.children?.links.has('/s'), { what: '/s linked' });
  });

  it('LinkService refuses no certificate, another CA, a cell that is not a child, and a hello for another cell', async () => {
    const noCert = await openLink(root.address, sslWith(t, undefined, ''), '/r');
    expect(noCert.code).toBe(grpc.status.UNAUTHENTICATED);
    expect(noCert.details).toContain('no client certificate signed by the mesh CA');
    const otherCa = await openLink(root.address, sslWith(t, rogue, 'r-1'), '/r');
    expect(otherCa.code).toBe(grpc.status.UNAUTHENTICATED);
    const notChild = await openLink(root.address, sslWith(t, t.certs, 'root-1'), '/r');
    expect(notChild.code).toBe(grpc.status.UNAUTHENTICATED);
    expect(notChild.details).toContain('names /#1 of mesh');
    const wrongHello = await openLink(root.address, sslWith(t, t.certs, 'r-1'), '/s');
    expect(wrongHello.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(wrongHello.details).toContain("the peer's certificate is for /r#1");
  });

  it('a child refuses a parent whose certificate is not a replica of its parent cell', async () => {
    // /r dialling /s's address: the TLS handshake fails on the identity check (the cell dialled is "/").
    const s = started.find((x) => x.cell.spec.path === '/s' && x.cell.parent?.connected)!;
    const r2 = await replica(t, '/r', { parent: s }).start();
    await waitFor(() => (r2.cell.parent?.stats.opened ?? 0) >= 2, { timeoutMs: 15_000, what: 'two link attempts' });
    expect(r2.cell.parent?.connected).toBe(false);
    await r2.close(0);
  });
});

describe('the replicas of a cell', () => {
  it('a three-replica cell elects, replicates and forwards over mTLS; Raft refuses a replica of another cell', async () => {
    const t = await secureTopology(
      `name: /\nreplicas: [{ address: "127.0.0.1:{port}" }, { address: "127.0.0.1:{port}" }, { address: "127.0.0.1:{port}" }]\nchildren:\n  - { name: r, ${R} }\n`,
      { auth: false },
    );
    const group = [1, 2, 3].map((n) => replica(t, '/', { n, dataDir: join(t.dir, `data-${n}`) }));
    await Promise.all(group.map((r) => r.start()));
    const leader = await waitFor(() => group.find((r) => r.cell.leading), { timeoutMs: 20_000, what: 'a leader' });
    const follower = group.find((r) => r !== leader)!;
    const client = new MeshClient({
      address: follower.address,
      tls: { caFile: join(t.certs, 'ca.pem') },
      maxRedirects: 0,
    });
    try {
      const { taskId } = await client.submit({ kind: 'k' });
      // Forwarded to the leader over mTLS, committed, and read back at the follower.
      expect((await client.get(taskId)).id).toBe(taskId);
      await waitFor(() => group.every((r) => r.cell.home.ledger.get(taskId)), { what: 'replicated to all three' });
    } finally {
      client.close();
    }
    const raft = new RaftServiceClient(follower.address, sslWith(t, t.certs, 'r-1'));
    const s = await new Promise<grpc.StatusObject>((resolve) => {
      const call = raft.stream();
      call.on('error', () => undefined);
      call.on('status', resolve);
    });
    raft.close();
    expect(s.code).toBe(grpc.status.UNAUTHENTICATED);
    expect(s.details).toContain('takes only a replica of cell /');
  }, 60_000);
});
