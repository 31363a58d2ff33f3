// A secured mesh for the security tests: a topology file with a `security:`
// section in a temp dir, certificates from `meshlb certs` (openssl), a tokens
// file, and helpers to start the cells in this process.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { makeCerts } from '../../src/security/certs.js';
import { replicaSecurity } from '../../src/security/replica-security.js';
import { sha256Hex } from '../../src/security/tokens.js';
import { loadTopology } from '../../src/topology/parse.js';
import type { Topology } from '../../src/topology/types.js';
import { setRootLogger, rootLogger } from '../../src/util/log.js';
import { freePort } from '../helpers/process.js';

/** Static tokens of the fixture: name -> [token, roles, tenants]. Tokens are fixed test strings. */
export const TOKENS = {
  agent: ['agent-token-0123456789abcdef', ['agent'], []],
  acme: ['acme-token-0123456789abcdef', ['submitter'], ['acme']],
  beta: ['beta-token-0123456789abcdef', ['submitter'], ['beta']],
  ops: ['ops-token-0123456789abcdef', ['admin-read'], []],
  root: ['root-token-0123456789abcdef', ['admin-read', 'admin-write', 'submitter'], ['*']],
} as const satisfies Record<string, readonly [string, readonly string[], readonly string[]]>;

export function tokensYaml(entries: Record<string, readonly [string, readonly string[], readonly string[]]>): string {
  const lines = ['tokens:'];
  for (const [name, [token, roles, tenants]] of Object.entries(entries)) {
    lines.push(
      `  - principal: ${name}`,
      `    sha256: ${sha256Hex(token)}`,
      `    roles: [${roles.join(', ')}]`,
      `    tenants: [${tenants.map((t) => JSON.stringify(t)).join(', ')}]`,
    );
  }
  return lines.join('\n') + '\n';
}

export interface SecureTopology {
  readonly dir: string;
  readonly file: string;
  readonly topology: Topology;
  readonly certs: string;
}

/**
 * Write a topology (cells as YAML under `cells:`, `{port}` replaced by free
 * ports), certificates for it in DIR/certs, and the tokens file; `auth`
 * false leaves tokens out (TLS only).
 */
export async function secureTopology(
  cellsYaml: string,
  o: { auth?: boolean; reloadMs?: number } = {},
): Promise<SecureTopology> {
  const dir = mkdtempSync(join(tmpdir(), 'meshlb-sec-'));
  let yaml = cellsYaml;
  while (yaml.includes('{port}')) yaml = yaml.replace('{port}', String(await freePort()));
  const auth = o.auth ?? true;
  const text = [
    'name: sec',
    'security:',
    '  tls:',
    '    dir: certs',
    `    reloadIntervalMs: ${o.reloadMs ?? 100}`,
    ...(auth ? ['  auth:', '    tokens: tokens.yaml', '    jwt:', '      hs256SecretFile: jwt.secret'] : []),
    'cells:',
    yaml.replace(/^/gm, '  '),
  ].join('\n');
  const file = join(dir, 'topology.yaml');
  writeFileSync(file, text);
  writeFileSync(join(dir, 'tokens.yaml'), tokensYaml(TOKENS));
  writeFileSync(join(dir, 'jwt.secret'), 'a-shared-secret-for-hs256-tests-0123456789');
  const topology = loadTopology(file);
  await makeCerts({ topology, outDir: join(dir, 'certs') });
  return { dir, file, topology, certs: join(dir, 'certs') };
}

/** Per-cell security for startMesh's perCell, as `meshlb serve` builds it. */
export function perCellSecurity(t: SecureTopology) {
  return (path: string) => ({
    security: replicaSecurity({ topology: t.topology, cell: path, replica: 1, baseDir: t.dir })!,
  });
}

/** Capture every log line (JSON) while `fn` runs; the root logger is restored after. */
export function captureLogs(): { lines: string[]; restore(): void } {
  const lines: string[] = [];
  const before = rootLogger();
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      cb();
    },
  });
  setRootLogger(pino({ level: 'debug' }, sink));
  return { lines, restore: () => setRootLogger(before) };
}
