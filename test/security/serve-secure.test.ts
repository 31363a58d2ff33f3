// Security on real processes, as docs/security.md tells an operator to run
// it: `meshlb certs`, a topology with `security:`, one `meshlb serve` per
// cell of a four-tier chain (mTLS on every link), `meshlb agent-sim` and
// `meshlb submit` with --ca and --token-file. Agents without a token never
// connect; a submitter's tasks for its own tenant complete; for another
// tenant they are refused; `meshlb health` works over TLS.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkHealth } from '../../src/cli/health-check.js';
import { Supervisor } from '../../src/cli/supervisor.js';
import { waitFor } from '../helpers/wait.js';
import { secureTopology, TOKENS, type SecureTopology } from './fixture.js';

const repo = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..');
const bin = join(repo, 'bin', 'meshlb.js');
const sup = new Supervisor();
let t: SecureTopology;
const R = 'replicas: [{ address: "127.0.0.1:{port}" }]';
const CELLS = ['/', '/r', '/r/z', '/r/z/n'];

const addr = (cell: string) => t.topology.byPath.get(cell)!.replicas[0]!.address;
const ca = () => join(t.certs, 'ca.pem');
function tokenFile(name: keyof typeof TOKENS): string {
  const f = join(t.dir, `${name}.token`);
  writeFileSync(f, `${TOKENS[name][0]}\n`, { mode: 0o600 });
  return f;
}
function run(name: string, args: string[]): Promise<{ code: number; stdout: string }> {
  const p = sup.start({ name, command: process.execPath, args: [bin, ...args], captureStdout: true, job: true });
  return p.exited.then((code) => ({ code, stdout: p.stdout }));
}

beforeAll(async () => {
  t = await secureTopology(
    `name: /\n${R}\nchildren:\n  - name: r\n    ${R}\n    children:\n      - name: z\n        ${R}\n        children:\n          - { name: n, ${R} }\n`,
  );
  mkdirSync(join(t.dir, 'data'));
  for (const cell of CELLS) {
    sup.start({
      name: `serve ${cell}`,
      command: process.execPath,
      args: [
        bin,
        'serve',
        '--topology',
        t.file,
        '--cell',
        cell,
        '--data-dir',
        join(t.dir, 'data', cell.replaceAll('/', '_')),
      ],
      env: { ...process.env, MESHLB_LOG_LEVEL: 'warn' },
    });
  }
  for (const cell of CELLS) {
    await waitFor(async () => (await checkHealth(addr(cell), '', 1000, { tls: { caFile: ca() } })) === 'SERVING', {
      timeoutMs: 60_000,
      intervalMs: 200,
      what: `${cell} SERVING over TLS`,
    });
  }
}, 90_000);

afterAll(() => sup.stopAll(3000));

describe('meshlb serve with security: (real processes)', () => {
  it('health works over TLS only: plaintext is not answered', async () => {
    expect(await checkHealth(addr('/'), '', 1500)).not.toBe('SERVING');
    const h = await run('health', ['health', '--address', addr('/'), '--ca', ca()]);
    expect(h.stdout.trim()).toBe('SERVING');
    expect(h.code).toBe(0);
  });

  it('an agent-sim without a token never connects; with an agent token its agents run submitted tasks', async () => {
    const refused = await run('agent-sim no token', [
      'agent-sim',
      '--address',
      addr('/r/z/n'),
      '--ca',
      ca(),
      '--agents',
      '2',
      '--duration',
      '2',
      '--json',
      '--kinds',
      'echo',
    ]);
    expect(refused.code).toBe(1); // "no agent ever connected"
    expect(JSON.parse(refused.stdout.trim()).completed).toBe(0);

    sup.start({
      name: 'agent-sim',
      command: process.execPath,
      args: [
        bin,
        'agent-sim',
        '--address',
        addr('/r/z/n'),
        '--ca',
        ca(),
        '--token-file',
        tokenFile('agent'),
        '--agents',
        '2',
        '--kinds',
        'echo',
      ],
    });
    const ok = await run('submit acme', [
      'submit',
      '--address',
      addr('/'),
      '--ca',
      ca(),
      '--token-file',
      tokenFile('acme'),
      '--tenant',
      'acme',
      '--kind',
      'echo',
      '--tasks',
      '5',
      '--wait-ms',
      '30000',
      '--json',
    ]);
    const s = JSON.parse(ok.stdout.trim());
    expect(s).toMatchObject({ accepted: 5, completed: 5, rejected: 0 });
    expect(ok.code).toBe(0);
  }, 60_000);

  it('a submitter for another tenant is refused; without a token, unauthenticated', async () => {
    const other = await run('submit beta', [
      'submit',
      '--address',
      addr('/'),
      '--ca',
      ca(),
      '--token-file',
      tokenFile('acme'),
      '--tenant',
      'beta',
      '--kind',
      'echo',
      '--tasks',
      '3',
      '--json',
    ]);
    const s = JSON.parse(other.stdout.trim());
    expect(s.accepted).toBe(0);
    expect(s.rejected_by_code).toEqual({ PERMISSION_DENIED: 3 });
    expect(other.code).toBe(1);
    const anon = await run('submit anon', ['submit', '--address', addr('/'), '--ca', ca(), '--tasks', '1', '--json']);
    expect(JSON.parse(anon.stdout.trim()).rejected_by_code).toEqual({ UNAUTHENTICATED: 1 });
  }, 60_000);
});
