// `meshlb status` against the four-tier test mesh: the tree with health,
// leaders, agents, free slots, queue and rates taken from two answers while
// tasks flow; exit 1 with the problem named when a node has no agent; and the
// real command line (bin/meshlb.js) with --json.
import { execFile } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runStatus } from '../../src/cli/status.js';
import { MeshClient } from '../../src/client/index.js';
import { SEED, startTestMesh, type TestMesh } from './mesh-helpers.js';

const EMPTY_NODE = '/us/east-1b/n2';

/** bin/meshlb.js as a process (asynchronously: the mesh it asks runs in this process). */
function meshlb(args: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['bin/meshlb.js', ...args],
      { encoding: 'utf8', timeout: 30_000 },
      (err, stdout, stderr) => resolve({ status: err ? Number(err.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe(`meshlb status (seed ${SEED})`, () => {
  let t: TestMesh;
  let client: MeshClient;

  beforeAll(async () => {
    t = await startTestMesh();
    for (const n of t.mesh.nodes.filter((p) => p !== EMPTY_NODE)) await t.addAgent(n, { agentId: `${n}-a` });
    await t.mesh.ready();
    client = new MeshClient({ address: t.mesh.address('/') });
  });

  afterAll(async () => {
    client?.close();
    await t?.close();
  });

  it('prints the tree with rates from two answers while tasks flow, and names what is wrong (exit 1)', async () => {
    let flowing = true;
    const flow = (async () => {
      while (flowing) await client.submitBatch(Array.from({ length: 50 }, () => ({ kind: 'echo' })));
    })();
    const lines: string[] = [];
    let code: number;
    try {
      code = await runStatus({
        address: t.mesh.address('/'),
        intervalS: 1,
        stdout: (s) => lines.push(...s.split('\n')),
      });
    } finally {
      flowing = false;
      await flow;
    }
    expect(code).toBe(1);
    expect(lines[0]).toBe('mesh status from /#1, rates over 1 s');
    expect(lines[1]).toMatch(/^CELL +HEALTH +LEADER +AGENTS +FREE\/SLOTS +QUEUE +IN-FLIGHT +DONE\/S +FAIL\/S +DISP\/S/);
    const row = (path: string): string[] => {
      const l = lines.find((x) => x.replace(/^[ └]+/, '').startsWith(`${path} `));
      if (!l) throw new Error(`no row for ${path} in\n${lines.join('\n')}`);
      return l.replace(/^[ └]+/, '').split(/ {2,}/);
    };
    const root = row('/');
    expect(root[1]).toBe('healthy');
    expect(root[2]).toBe(`/#1 ${t.mesh.address('/')}`);
    expect(root[3]).toBe('7/7');
    expect(Number(root[7])).toBeGreaterThan(0); // done per second at the home
    expect(row('/eu/west-1a/n1')[3]).toBe('1/1');
    expect(row(EMPTY_NODE)[1]).toBe('DEGRADED');
    expect(lines).toContain(`  ${EMPTY_NODE}: no agent takes work`);
    expect(lines.filter((l) => / {2}(healthy|DEGRADED|UNREACHABLE) {2}/.test(l))).toHaveLength(15);
  });

  it('runs as a command: --interval 0 --json answers once, every cell, exit 1 for the empty node', async () => {
    const r = await meshlb(['status', '--address', t.mesh.address('/'), '--interval', '0', '--json']);
    expect(r.status, r.stderr).toBe(1);
    expect(r.stdout, r.stderr).not.toBe('');
    const out = JSON.parse(r.stdout) as { answered_by: string; cells: { path: string; health: string }[] };
    expect(out.answered_by).toBe('/#1');
    expect(out.cells).toHaveLength(15);
    expect(out.cells.find((c) => c.path === EMPTY_NODE)?.health).toBe('CELL_HEALTH_DEGRADED');
    const bad = await meshlb(['status', '--address', '127.0.0.1:1', '--timeout-ms', '500']);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/^meshlb: 127\.0\.0\.1:1 did not answer GetMeshStatus: /);
    expect(bad.stderr).not.toMatch(/\n\s+at /);
  });
});
