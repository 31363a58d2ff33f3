// Credentials for callers of the mesh (the client SDK, the agent SDK, the
// CLI): TLS to the replica, optionally a client certificate, and a bearer
// token sent with every call. A token is only ever sent over TLS (grpc-js
// refuses call credentials on a plaintext channel, and so do we, up front,
// with a clearer message).
import * as grpc from '@grpc/grpc-js';
import { readFileSync } from 'node:fs';
import { ReloadingCertificateProvider } from './cert-provider.js';

/** TLS to a replica. Files are re-read when they change (rotation); buffers are fixed. */
export interface CallerTlsOptions {
  /** CA bundle the replica's certificate must chain to (PEM file); default: the system's roots. */
  caFile?: string;
  /** A client certificate and its key (PEM files), for replicas that check them. */
  certFile?: string;
  keyFile?: string;
  /** The same as PEM contents. */
  ca?: Buffer | string;
  cert?: Buffer | string;
  key?: Buffer | string;
  /** How often changed files are picked up (ms, default 5000). */
  reloadIntervalMs?: number;
}

export interface CallerSecurity {
  /** TLS: `true` for the system's roots, or a CA (and a client certificate). Default: plaintext. */
  tls?: true | CallerTlsOptions | undefined;
  /** A bearer token (static or a JWT), or a function asked before every call (refreshing tokens). Needs tls. */
  token?: string | (() => string | Promise<string>) | undefined;
}

/** Metadata key of the bearer token (`authorization: Bearer <token>`). */
export const AUTHORIZATION = 'authorization';

const buf = (v: Buffer | string | undefined): Buffer | null => (v === undefined ? null : Buffer.from(v));

/** Channel credentials for `s`, or undefined for plaintext (the caller's default). Throws on a token without TLS. */
export function callerCredentials(s: CallerSecurity): grpc.ChannelCredentials | undefined {
  if (s.token !== undefined && !s.tls)
    throw new TypeError('a token is sent only over TLS: give tls too (tls: true for the system roots)');
  if (!s.tls) return undefined;
  let channel: grpc.ChannelCredentials;
  if (s.tls === true) channel = grpc.credentials.createSsl();
  else if (s.tls.caFile !== undefined || s.tls.certFile !== undefined) {
    const t = s.tls;
    if (t.caFile === undefined) {
      // grpc-js's provider credentials need a CA: read the system default once instead of guessing a path.
      const ca = buf(t.ca);
      channel = grpc.credentials.createSsl(
        ca,
        t.keyFile ? readFileSync(t.keyFile) : null,
        t.certFile ? readFileSync(t.certFile) : null,
      );
    } else {
      const files = {
        ca: t.caFile,
        ...(t.certFile !== undefined ? { cert: t.certFile } : {}),
        ...(t.keyFile !== undefined ? { key: t.keyFile } : {}),
      };
      const provider = new ReloadingCertificateProvider(files, {
        ...(t.reloadIntervalMs !== undefined ? { intervalMs: t.reloadIntervalMs } : {}),
      });
      channel = grpc.experimental.createCertificateProviderChannelCredentials(
        provider,
        t.certFile !== undefined ? provider : null,
      );
    }
  } else channel = grpc.credentials.createSsl(buf(s.tls.ca), buf(s.tls.key), buf(s.tls.cert));
  const token = s.token;
  if (token === undefined) return channel;
  const call = grpc.credentials.createFromMetadataGenerator((_params, cb) => {
    Promise.resolve(typeof token === 'function' ? token() : token).then(
      (t) => {
        const md = new grpc.Metadata();
        md.set(AUTHORIZATION, `Bearer ${t}`);
        cb(null, md);
      },
      (err: unknown) => cb(err instanceof Error ? err : new Error(String(err))),
    );
  });
  return grpc.credentials.combineChannelCredentials(channel, call);
}
