// A replica's security, built from the topology's `security:` section
// (docs/security.md): TLS from its certificate files (reloaded when they
// change), the guard with its authenticator and the tenants' quotas. The
// replica (src/mesh/replica.ts) only asks it for credentials and
// interceptors; `meshlb serve` builds it.
//
// Relative paths in the section are relative to the topology file's
// directory; {cell} and {replica} in the certificate paths are the cell's
// slug ("root", "eu-west-1a") and the replica number.
import * as grpc from '@grpc/grpc-js';
import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import { isAbsolute, resolve } from 'node:path';
import { cellSlug } from '../topology/paths.js';
import type { Topology } from '../topology/types.js';
import { logger, type Logger } from '../util/log.js';
import { guardInterceptor, type GuardOptions } from './guard.js';
import { rsaPublicKey, type JwtKeys } from './jwt.js';
import { ReplicaTls } from './tls.js';
import { Authenticator } from './tokens.js';
import { TenantQuotas } from './quotas.js';
import type { TaskRecord } from '../mesh/ledger-record.js';

/** What a replica needs of its security (src/mesh/replica.ts takes this). */
export interface ReplicaSecurity {
  /** The server's credentials (plaintext ones when the section has no tls: quotas alone). */
  serverCredentials(): grpc.ServerCredentials;
  /** Credentials for channels to replicas of `cell` (the parent, Raft peers, the leader); plaintext without tls. */
  channelCredentials(cell: string): grpc.ChannelCredentials;
  /** The same as node:tls options (the lean link client, src/util/grpc-h2-client.ts); undefined without tls. */
  tlsConnectOptions?(cell: string): ConnectionOptions | undefined;
  /** The guard for this replica's server. */
  interceptors(ctx: GuardContext): grpc.ServerInterceptor[];
  close(): void;
}

/** What the guard needs of the replica's cell. */
export interface GuardContext extends Pick<GuardOptions, 'cell' | 'children' | 'taskTenant'> {
  /** This replica decides for its cell now (quotas are counted there). */
  leading(): boolean;
  /** The cell's ledger: every replica applies the same changes (unfinished tasks per tenant). */
  readonly ledger: {
    onChange(l: (rec: TaskRecord) => void): void;
    onRestored(l: () => void): void;
    /** The unfinished tasks' records (ended ones are held compact and not counted). */
    liveRecords(): Iterable<TaskRecord>;
  };
}

export interface ReplicaSecurityOptions {
  readonly topology: Topology;
  readonly cell: string;
  readonly replica: number;
  /** The topology file's directory, for relative paths (default: the working directory). */
  readonly baseDir?: string;
  readonly log?: Logger;
}

/** Fill a certificate path pattern for one replica, relative to baseDir. */
export function certPath(pattern: string, cell: string, replica: number, baseDir = '.'): string {
  const p = pattern.replaceAll('{cell}', cellSlug(cell)).replaceAll('{replica}', String(replica));
  return isAbsolute(p) ? p : resolve(baseDir, p);
}

/** The replica's security, or undefined when the topology has no `security:` section. */
export function replicaSecurity(o: ReplicaSecurityOptions): ReplicaSecurity | undefined {
  const spec = o.topology.security;
  if (!spec) return undefined;
  const log = o.log ?? logger({ component: 'security', cell: o.cell, replica: o.replica });
  const base = o.baseDir ?? '.';
  const at = (p: string): string => certPath(p, o.cell, o.replica, base);
  if (spec.auth && !spec.tls) throw new Error('security.auth needs security.tls: tokens are never sent in plaintext');
  const tls = spec.tls
    ? new ReplicaTls({
        files: { ca: at(spec.tls.ca), cert: at(spec.tls.cert), key: at(spec.tls.key) },
        self: { meshId: o.topology.id, cell: o.cell, replica: o.replica },
        reloadIntervalMs: spec.tls.reloadIntervalMs,
        log,
      })
    : undefined;
  let auth: Authenticator | undefined;
  try {
    if (spec.auth) {
      const j = spec.auth.jwt;
      const jwt: JwtKeys | undefined = j && {
        ...(j.hs256SecretFile ? { hs256Secret: readFileSync(at(j.hs256SecretFile)) } : {}),
        ...(j.rs256PublicKeyFile ? { rs256PublicKey: rsaPublicKey(readFileSync(at(j.rs256PublicKeyFile))) } : {}),
        issuer: j.issuer,
        audience: j.audience,
      };
      auth = new Authenticator({
        ...(spec.auth.tokens ? { tokensFile: at(spec.auth.tokens) } : {}),
        ...(jwt ? { jwt } : {}),
        // One knob for every security file: certificates and tokens are looked at equally often.
        ...(spec.tls ? { reloadIntervalMs: spec.tls.reloadIntervalMs } : {}),
        log,
      });
    }
  } catch (err) {
    tls?.close();
    throw err;
  }
  log.info(
    {
      tls: tls !== undefined,
      auth: auth ? (spec.auth?.tokens ? 'tokens' : '') + (spec.auth?.jwt ? '+jwt' : '') : 'off',
      quotas: spec.quotas !== undefined,
    },
    'security on',
  );
  return {
    serverCredentials: () => tls?.serverCredentials() ?? grpc.ServerCredentials.createInsecure(),
    channelCredentials: (cell) => tls?.channelCredentials(cell) ?? grpc.credentials.createInsecure(),
    tlsConnectOptions: (cell) => tls?.connectOptions(cell),
    interceptors: (ctx) => {
      let quotas: TenantQuotas | undefined;
      if (spec.quotas) {
        const q = (quotas = new TenantQuotas(spec.quotas));
        q.rebuild(ctx.ledger.liveRecords());
        ctx.ledger.onChange((rec) => q.changed(rec));
        ctx.ledger.onRestored(() => q.rebuild(ctx.ledger.liveRecords()));
      }
      const { ledger: _ledger, ...guard } = ctx;
      return [guardInterceptor({ ...guard, meshId: o.topology.id, auth, tls: tls !== undefined, quotas, log })];
    },
    close: () => {
      tls?.close();
      auth?.close();
    },
  };
}
