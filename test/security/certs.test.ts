// `meshlb certs`: a development CA and per-replica certificates that openssl
// itself verifies, with the SANs the mesh needs; a re-run keeps the CA (a
// rotation); and the topology's `security:` section is checked like the rest
// of the file.
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { runCerts } from '../../src/cli/certs.js';
import { parseIdentityUri } from '../../src/security/identity.js';
import { certPath } from '../../src/security/replica-security.js';
import { parseTopology, TopologyError } from '../../src/topology/parse.js';

const TOPO = `
name: certs-test
cells:
  name: /
  replicas: [{ address: "127.0.0.1:7310" }, { address: "127.0.0.2:7311" }, { address: "mesh-root-3.example:7312" }]
  children:
    - name: eu
      replicas: [{ address: "[::1]:7313" }]
`;

function setup(): { dir: string; file: string } {
  const dir = mkdtempSync(join(tmpdir(), 'meshlb-certs-'));
  const file = join(dir, 'topology.yaml');
  writeFileSync(file, TOPO);
  return { dir, file };
}

const verify = (dir: string, pem: string): string =>
  execFileSync('openssl', ['verify', '-CAfile', join(dir, 'ca.pem'), join(dir, pem)], { encoding: 'utf8' }).trim();

describe('meshlb certs', () => {
  it('writes a CA and one certificate per replica that `openssl verify` accepts, with the identity and host SANs', async () => {
    const { dir, file } = setup();
    const out = join(dir, 'certs');
    const lines: string[] = [];
    expect(
      await runCerts({ topologyFile: file, outDir: out, extraSans: ['*.meshlb.svc'], stdout: (l) => lines.push(l) }),
    ).toBe(0);
    expect(lines.join('\n')).toContain('dir: certs');
    const id = parseTopology(TOPO).id;
    const want: Array<[string, string, string]> = [
      ['root-1', '/', 'IP Address:127.0.0.1'],
      ['root-2', '/', 'IP Address:127.0.0.2'],
      ['root-3', '/', 'DNS:mesh-root-3.example'],
      ['eu-1', '/eu', 'IP Address:0:0:0:0:0:0:0:1'],
    ];
    for (const [base, cell, hostSan] of want) {
      expect(verify(out, `${base}.pem`)).toBe(`${join(out, base)}.pem: OK`);
      const x = new X509Certificate(readFileSync(join(out, `${base}.pem`)));
      const san = x.subjectAltName ?? '';
      const uri = san
        .split(', ')
        .find((s) => s.startsWith('URI:'))!
        .slice(4);
      expect(parseIdentityUri(uri)).toEqual({ meshId: id, cell, replica: Number(base.slice(-1)) });
      for (const s of ['DNS:localhost', 'IP Address:127.0.0.1', 'DNS:*.meshlb.svc', hostSan]) expect(san).toContain(s);
      expect(x.checkIssued(new X509Certificate(readFileSync(join(out, 'ca.pem'))))).toBe(true);
      expect(statSync(join(out, `${base}.key`)).mode & 0o777).toBe(0o600);
    }
    expect(statSync(join(out, 'ca.key')).mode & 0o777).toBe(0o600);
  });

  it('a re-run keeps the CA and re-issues every replica certificate (a rotation); through the CLI too', async () => {
    const { dir, file } = setup();
    const out = join(dir, 'certs');
    expect(await main(['certs', '--topology', file, '--out', out, '--days', '30'])).toBe(0);
    const ca = readFileSync(join(out, 'ca.pem'), 'utf8');
    const serial = new X509Certificate(readFileSync(join(out, 'eu-1.pem'))).serialNumber;
    expect(await main(['certs', '--topology', file, '--out', out])).toBe(0);
    expect(readFileSync(join(out, 'ca.pem'), 'utf8')).toBe(ca);
    expect(new X509Certificate(readFileSync(join(out, 'eu-1.pem'))).serialNumber).not.toBe(serial);
    expect(verify(out, 'eu-1.pem')).toMatch(/OK$/);
    expect(await main(['certs', '--topology', file, '--out', out, '--new-ca'])).toBe(0);
    expect(readFileSync(join(out, 'ca.pem'), 'utf8')).not.toBe(ca);
  });
});

describe('the topology security section', () => {
  const base = 'name: s\ncells:\n  name: /\n  replicas: [{ address: "127.0.0.1:7000" }]\n';
  const problems = (sec: string): string[] => {
    try {
      parseTopology(`${base}security:\n${sec}`);
      return [];
    } catch (err) {
      if (err instanceof TopologyError) return [...err.issues];
      throw err;
    }
  };

  it('tls.dir fills in the file names meshlb certs writes; patterns name the replica', () => {
    const t = parseTopology(`${base}security:\n  tls: { dir: certs }\n`);
    expect(t.security?.tls).toEqual({
      ca: 'certs/ca.pem',
      cert: 'certs/{cell}-{replica}.pem',
      key: 'certs/{cell}-{replica}.key',
      reloadIntervalMs: 5000,
    });
    expect(certPath(t.security!.tls!.cert, '/eu/west-1a', 2, '/etc/meshlb')).toBe('/etc/meshlb/certs/eu-west-1a-2.pem');
    expect(certPath('/abs/{cell}.pem', '/', 1, '/etc/meshlb')).toBe('/abs/root.pem');
    expect(parseTopology(base).security).toBeUndefined();
  });

  it('names every problem: auth without tls, missing files, unknown keys', () => {
    expect(problems('  auth: { tokens: t.yaml }\n').join('\n')).toContain('tokens are never sent in plaintext');
    expect(problems('  tls: { ca: ca.pem }\n').join('\n')).toContain('needs "dir", or all of "ca", "cert" and "key"');
    expect(problems('  tls: { dir: c, colour: red }\n').join('\n')).toContain('unknown key "colour"');
    expect(problems('  tls: { dir: c }\n  auth: { jwt: { issuer: x } }\n').join('\n')).toContain(
      'needs "hs256SecretFile" or "rs256PublicKeyFile"',
    );
    expect(problems('  tls: { dir: c, reloadIntervalMs: 5 }\n').join('\n')).toContain('integer >= 100');
  });
});
