// The admin API on a secured mesh (mTLS between the tiers, bearer tokens for
// operators; docs/security.md): a call forwarded to another cell's leader and
// the GetMeshStatus walk carry the caller's token, so every replica's guard
// checks the caller itself. Without that the walk would find every other
// cell refusing it (UNREACHABLE) and cross-cell calls would fail.
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from '../../src/agent/index.js';
import { runStatus } from '../../src/cli/status.js';
import { startMesh, type MeshHarness } from '../../src/dev/harness.js';
import { CellHealth } from '../../src/gen/meshlb/v1/admin.js';
import { callerCredentials } from '../../src/security/caller.js';
import { waitFor } from '../helpers/wait.js';
import { perCellSecurity, secureTopology, TOKENS, type SecureTopology } from '../security/fixture.js';
import { adminAt, type Admin } from '../admin/admin-client.js';

const R = 'replicas: [{ address: "127.0.0.1:{port}" }]';
const CHAIN = `
name: /
${R}
children:
  - name: r
    ${R}
    children:
      - name: z
        ${R}
        children:
          - name: n
            ${R}
`;

describe('admin calls on a secured mesh carry the caller', () => {
  let t: SecureTopology;
  let mesh: MeshHarness;
  let agent: Agent;
  const admins: Admin[] = [];
  const as = (token?: string): Admin => {
    const creds = callerCredentials({ tls: { caFile: join(t.certs, 'ca.pem') }, ...(token ? { token } : {}) })!;
    const a = adminAt(mesh.address('/'), creds);
    admins.push(a);
    return a;
  };

  beforeAll(async () => {
    t = await secureTopology(CHAIN);
    mesh = await startMesh(t.topology, {
      heartbeatIntervalMs: 100,
      heartbeatTimeoutMs: 1500,
      summaryIntervalMs: 100,
      perCell: perCellSecurity(t),
    });
    await mesh.ready(15_000);
    agent = new Agent({
      address: mesh.address('/r/z/n'),
      agentId: 'a1',
      slots: 2,
      tls: { caFile: join(t.certs, 'ca.pem') },
      token: TOKENS.agent[0],
    });
    agent.handle('echo', (task) => task.payload);
    await agent.start();
  }, 60_000);

  afterAll(async () => {
    for (const a of admins) a.close();
    agent?.close();
    await mesh?.close();
  });

  it('GetMeshStatus with an admin-read token reaches every cell; without a token it is refused', async () => {
    const ops = as(TOKENS.ops[0]);
    const s = await waitFor(
      async () => {
        const r = await ops.call('getMeshStatus');
        return r.cells.every((c) => c.health === CellHealth.CELL_HEALTH_HEALTHY) && r;
      },
      { timeoutMs: 10_000, what: 'every cell healthy through the guards' },
    );
    expect(s.cells.map((c) => c.path)).toEqual(['/', '/r', '/r/z', '/r/z/n']);
    expect(s.cells[3]).toMatchObject({ agents: 1, totalSlots: 2 });
    expect((await as().refused('getMeshStatus')).code).toBe(status.UNAUTHENTICATED);
  });

  it('a call for another cell is forwarded with the token: read with admin-read, write only with admin-write', async () => {
    const ops = as(TOKENS.ops[0]);
    const listed = await ops.call('listTasks', { cell: '/r/z/n' });
    expect(listed.cell).toBe('/r/z/n');
    expect((await ops.refused('drainCell', { cell: '/r/z/n' })).code).toBe(status.PERMISSION_DENIED);
    const root = as(TOKENS.root[0]);
    expect(await root.call('drainCell', { cell: '/r/z/n', reason: 'secure' })).toMatchObject({ draining: true });
    expect(mesh.replicas.get('/r/z/n')!.cell.draining).toBe(true);
    expect(await root.call('undrainCell', { cell: '/r/z/n' })).toMatchObject({ draining: false });
  });

  it('meshlb status takes the caller flags: with --ca and an admin-read token it shows every cell', async () => {
    const lines: string[] = [];
    const security = { tls: { caFile: join(t.certs, 'ca.pem') }, token: TOKENS.ops[0] };
    const code = await runStatus({ address: mesh.address('/'), intervalS: 0, security, stdout: (s) => lines.push(s) });
    expect(code).toBe(0);
    expect(lines.join('\n')).toContain('/r/z/n');
    await expect(runStatus({ address: mesh.address('/'), intervalS: 0, stdout: () => undefined })).rejects.toThrow(
      /did not answer GetMeshStatus/,
    );
  });
});
