// TLS credentials for one replica: its server (every service on one port)
// and its outgoing channels to other replicas (the parent link, Raft peers,
// the leader a follower forwards to), all from one set of reloading files.
//
// The server asks every peer for a certificate but does not require one:
// agents, clients and operators connect with TLS and no certificate (they
// authenticate with tokens), while replicas present theirs; the guard
// (guard.ts) takes a link or a Raft stream only from a peer whose certificate
// chains to the mesh CA and names a replica of the right cell.
//
// Outgoing channels to replicas check the server's certificate against the
// mesh CA and its replica identity (identity.ts), not its hostname: the CA is
// the mesh's own, and the identity says more than a name (a replica of
// exactly the cell we dialled). Addresses then may be anything the network
// calls them (container names, pod DNS, NAT), with no certificate per name.
import * as grpc from '@grpc/grpc-js';
import type { ConnectionOptions, PeerCertificate } from 'node:tls';
import type { Logger } from '../util/log.js';
import { ReloadingCertificateProvider, type CertFiles } from './cert-provider.js';
import { describeIdentity, identitiesOf, replicaOf, type ReplicaIdentity } from './identity.js';

export interface ReplicaTlsOptions {
  readonly files: CertFiles;
  /** This replica: its certificate must name it. */
  readonly self: ReplicaIdentity;
  readonly reloadIntervalMs?: number;
  readonly log?: Logger;
}

export class ReplicaTls {
  readonly provider: ReloadingCertificateProvider;
  private readonly channels = new Map<string, grpc.ChannelCredentials>();
  private server: grpc.ServerCredentials | undefined;

  constructor(private readonly o: ReplicaTlsOptions) {
    if (!o.files.cert || !o.files.key) throw new Error('a replica needs its own certificate and key');
    this.provider = new ReloadingCertificateProvider(o.files, {
      ...(o.reloadIntervalMs !== undefined ? { intervalMs: o.reloadIntervalMs } : {}),
      ...(o.log ? { log: o.log } : {}),
    });
    const leaf = this.provider.certs.leaf;
    const mine = identitiesOf({ subjectaltname: leaf?.subjectAltName ?? '' });
    const ok = mine.some(
      (id) => id.meshId === o.self.meshId && id.cell === o.self.cell && id.replica === o.self.replica,
    );
    if (!ok) {
      const has = mine.length ? mine.map(describeIdentity).join(', ') : 'no meshlb replica identity';
      throw new Error(
        `the certificate ${o.files.cert} is not for replica ${describeIdentity(o.self)} (it names ${has}); ` +
          'make certificates with `meshlb certs --topology FILE --out DIR`',
      );
    }
  }

  /** The server's credentials: the replica's certificate, and the mesh CA for peers that present one. */
  serverCredentials(): grpc.ServerCredentials {
    this.server ??= grpc.experimental.createCertificateProviderServerCredentials(this.provider, this.provider, false);
    return this.server;
  }

  /** Credentials for channels to replicas of `cell`: our certificate, theirs checked against the CA and `cell`. */
  channelCredentials(cell: string): grpc.ChannelCredentials {
    let c = this.channels.get(cell);
    if (!c) {
      const meshId = this.o.self.meshId;
      c = grpc.experimental.createCertificateProviderChannelCredentials(this.provider, this.provider, {
        checkServerIdentity: (_host: string, cert: PeerCertificate) => checkReplica(cert, meshId, cell),
      });
      this.channels.set(cell, c);
    }
    return c;
  }

  /**
   * The same as node:tls options for one new connection (the lean link
   * client): the files as loaded now, so a rotation reaches the next connection.
   */
  connectOptions(cell: string): ConnectionOptions {
    const c = this.provider.certs;
    const meshId = this.o.self.meshId;
    return {
      ca: c.ca,
      ...(c.cert && c.key ? { cert: c.cert, key: c.key } : {}),
      checkServerIdentity: (_host: string, cert: PeerCertificate) => checkReplica(cert, meshId, cell),
    };
  }

  close(): void {
    this.provider.close();
  }
}

/** Undefined when `cert` names a replica of `cell` in mesh `meshId`, else the error that ends the handshake. */
export function checkReplica(cert: PeerCertificate, meshId: string, cell: string): Error | undefined {
  if (replicaOf(cert, meshId, [cell])) return undefined;
  const has = identitiesOf(cert);
  return new Error(
    `the server's certificate is not a replica of cell ${cell} in mesh ${meshId} ` +
      `(it names ${has.length ? has.map(describeIdentity).join(', ') : 'no meshlb replica identity'})`,
  );
}
