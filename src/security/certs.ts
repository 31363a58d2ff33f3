// `meshlb certs --topology FILE --out DIR`: a development CA and one
// certificate per replica, made by the openssl command line (no ASN.1 of our
// own). What it writes is what `security.tls.dir` expects:
//
//   ca.pem, ca.key                  the CA (kept on a re-run: re-running re-issues
//                                   every replica certificate under the same CA,
//                                   which is a rotation the replicas pick up live)
//   <cell slug>-<n>.pem / .key      each replica: the URI SAN naming it
//                                   (identity.ts), DNS/IP SANs for its host,
//                                   localhost and 127.0.0.1; serverAuth and clientAuth
//
// Keys are EC P-256, written 0600. This is a development CA: its key sits
// next to the certificates. Production uses the organisation's CA and only
// needs the same SANs (docs/security.md).
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { cellSlug, splitAddress } from '../topology/paths.js';
import type { Topology } from '../topology/types.js';
import { identityUri } from './identity.js';

const run = promisify(execFile);

export interface CertsOptions {
  readonly topology: Topology;
  readonly outDir: string;
  /** Validity of replica certificates (days); default 365. The CA gets ten years. */
  readonly days?: number;
  /** Extra DNS names or IPs put in every replica certificate (e.g. a wildcard of the cluster's DNS). */
  readonly extraSans?: readonly string[];
  /** Make a new CA even if DIR has one. */
  readonly newCa?: boolean;
  /** The openssl binary (default "openssl" on PATH). */
  readonly openssl?: string;
}

export interface CertsReport {
  readonly ca: string;
  readonly caReused: boolean;
  /** Replica id -> certificate file. */
  readonly replicas: ReadonlyArray<{ id: string; cert: string; key: string; sans: string[] }>;
}

export function replicaFileBase(cell: string, replica: number): string {
  return `${cellSlug(cell)}-${replica}`;
}

function sanOf(name: string): string {
  const bare = name.replace(/^\[|\]$/g, '');
  return isIP(bare) ? `IP:${bare}` : `DNS:${bare}`;
}

export async function makeCerts(o: CertsOptions): Promise<CertsReport> {
  const openssl = o.openssl ?? 'openssl';
  const ssl = async (args: string[]): Promise<void> => {
    try {
      await run(openssl, args, { timeout: 30_000 });
    } catch (err) {
      const e = err as { stderr?: string; message: string; code?: string };
      if (e.code === 'ENOENT')
        throw new Error(`meshlb certs needs the openssl command line (${openssl} not found)`, { cause: err });
      throw new Error(`openssl ${args[0]} failed: ${(e.stderr ?? e.message).trim()}`, { cause: err });
    }
  };
  await mkdir(o.outDir, { recursive: true });
  const caPem = join(o.outDir, 'ca.pem');
  const caKey = join(o.outDir, 'ca.key');
  const caReused = !o.newCa && existsSync(caPem) && existsSync(caKey);
  if (!caReused) {
    await ssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', caKey]);
    await chmod(caKey, 0o600);
    await ssl([
      'req',
      '-x509',
      '-new',
      '-key',
      caKey,
      '-sha256',
      '-days',
      '3650',
      '-subj',
      `/O=meshlb/CN=meshlb development CA for mesh ${o.topology.name} (${o.topology.id})`,
      '-addext',
      'basicConstraints=critical,CA:TRUE,pathlen:0',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
      '-out',
      caPem,
    ]);
  }
  const replicas: Array<{ id: string; cert: string; key: string; sans: string[] }> = [];
  for (const cell of o.topology.cells) {
    for (const r of cell.replicas) {
      const base = join(o.outDir, replicaFileBase(cell.path, r.replica));
      const host = splitAddress(r.address)?.host;
      const names = new Set(['localhost', '127.0.0.1', ...(host ? [host] : []), ...(o.extraSans ?? [])]);
      const sans = [
        `URI:${identityUri({ meshId: o.topology.id, cell: cell.path, replica: r.replica })}`,
        ...[...names].map(sanOf),
      ];
      const ext = `${base}.ext`;
      const csr = `${base}.csr`;
      await writeFile(
        ext,
        [
          'basicConstraints=critical,CA:FALSE',
          'keyUsage=critical,digitalSignature,keyEncipherment',
          'extendedKeyUsage=serverAuth,clientAuth',
          `subjectAltName=${sans.join(',')}`,
          '',
        ].join('\n'),
      );
      try {
        // Written under temporary names, then renamed: a replica watching the
        // files never reads a half-written one. Between the two renames it may
        // see the new key with the old certificate; the reloader refuses such
        // a pair and takes the set at its next look (cert-provider.ts).
        await ssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', `${base}.key.new`]);
        await chmod(`${base}.key.new`, 0o600);
        await ssl([
          'req',
          '-new',
          '-key',
          `${base}.key.new`,
          '-subj',
          `/O=meshlb/CN=${replicaFileBase(cell.path, r.replica)}`,
          '-out',
          csr,
        ]);
        await ssl([
          'x509',
          '-req',
          '-in',
          csr,
          '-CA',
          caPem,
          '-CAkey',
          caKey,
          '-set_serial',
          `0x${randomBytes(16).toString('hex')}`,
          '-days',
          String(o.days ?? 365),
          '-sha256',
          '-extfile',
          ext,
          '-out',
          `${base}.pem.new`,
        ]);
        await rename(`${base}.key.new`, `${base}.key`);
        await rename(`${base}.pem.new`, `${base}.pem`);
      } finally {
        await rm(ext, { force: true });
        await rm(csr, { force: true });
      }
      replicas.push({ id: r.id, cert: `${base}.pem`, key: `${base}.key`, sans });
    }
  }
  return { ca: caPem, caReused, replicas };
}
