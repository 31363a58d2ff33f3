// `meshlb serve --http-port` as a real process: the replica serves the live
// page and its JSON beside its gRPC port, answers bad input with a JSON error
// and a matching HTTP status, refuses other methods, and stops with SIGTERM.
// (The page itself in a browser: live-page.test.ts.)
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Supervisor } from '../../src/cli/supervisor.js';
import { freePort } from '../helpers/process.js';
import { waitFor } from '../helpers/wait.js';

const sup = new Supervisor();
const dir = mkdtempSync(join(tmpdir(), 'meshlb-page-serve-'));
afterAll(async () => {
  await sup.stopAll(2000);
  rmSync(dir, { recursive: true, force: true });
});

describe('meshlb serve --http-port (real process)', () => {
  it('serves the page, /api/mesh and /api/cell; errors are JSON; SIGTERM exits 0', async () => {
    const [grpcPort, httpPort] = [await freePort(), await freePort()];
    const topo = join(dir, 'topology.yaml');
    writeFileSync(topo, `name: page\ncells:\n  name: /\n  replicas: [{ address: "127.0.0.1:${grpcPort}" }]\n`);
    const proc = sup.start({
      name: 'serve',
      command: process.execPath,
      args: ['bin/meshlb.js', 'serve', '--topology', topo, '--cell', '/', '--data-dir', join(dir, 'data')].concat([
        '--http-port',
        String(httpPort),
        '--log-level',
        'warn',
      ]),
    });
    const base = `http://127.0.0.1:${httpPort}`;
    const mesh = await waitFor(
      async () => {
        const r = await fetch(`${base}/api/mesh`).catch(() => undefined);
        const m = r?.ok && ((await r.json()) as { answeredBy: string; cells: { path: string; health: string }[] });
        // The one-voter group elects itself a moment after it serves: healthy once it leads.
        return m && m.cells[0]?.health === 'CELL_HEALTH_HEALTHY' && m;
      },
      { timeoutMs: 30_000, what: 'the page server to show the cell healthy' },
    );
    expect(mesh.answeredBy).toBe('/#1');
    expect(mesh.cells.map((c) => c.path)).toEqual(['/']);

    const page = await fetch(`${base}/`);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(page.headers.get('content-security-policy')).toContain("default-src 'self'");
    expect(await page.text()).toContain('<script src="app.js" type="module">');
    expect((await fetch(`${base}/app.js`)).status).toBe(200);

    const cell = (await (await fetch(`${base}/api/cell?path=/`)).json()) as { cell: { replicaId: string } };
    expect(cell.cell.replicaId).toBe('/#1');
    const missing = await fetch(`${base}/api/cell?path=/nowhere`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toEqual({ code: 'NOT_FOUND', message: 'cell "/nowhere" is not in topology page' });
    const bad = await fetch(`${base}/api/dead-letters?page_token=nonsense`);
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { code: string }).code).toBe('INVALID_ARGUMENT');
    expect((await fetch(`${base}/api/mesh`, { method: 'POST' })).status).toBe(405);
    expect((await fetch(`${base}/etc/passwd`)).status).toBe(404);

    expect(await sup.stop('serve', 15_000)).toBe(0);
    await proc.exited;
    await expect(fetch(`${base}/api/mesh`)).rejects.toThrow();
  }, 60_000);
});
