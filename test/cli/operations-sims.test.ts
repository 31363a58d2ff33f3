// docs/operations.md's simulation, chaos and deploy commands work as written: each
// runs with bash from the repository root, changing only sizes (durations, tasks) and
// the topologies' fixed ports (moved to free ranges, see ./operations.ts); as root
// with no sudo installed, `sudo` is dropped as the doc says. Lines that cannot run
// here say why (./operations.ts PLANS). test/cli/operations-recipes.test.ts runs the
// rest of the file against live processes.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadTopology } from '../../src/topology/parse.js';
import { allCommands, asRoot, commandsUnder, moveTopologies, planOf, type Moved } from './operations.js';
import { WALL_GUARD_MS } from '../helpers/cpu-budget.js';
import { treeCpuMs, withinTreeCpu } from '../helpers/tree-cpu.js';
import { bash, freeRange, noStack, shrink, type Ran } from './recipes.js';

const hasSudo = spawnSync('bash', ['-c', 'command -v sudo']).status === 0;
const canNetns =
  process.platform === 'linux' &&
  (hasSudo || process.getuid?.() === 0) &&
  spawnSync('bash', ['-c', 'command -v ip']).status === 0 &&
  !process.env.MESHLB_NO_NETNS;

/** CPU a simulation below may spend, all its processes together (session 12, load 12-31: ha.yaml 57.8 s, example.yaml 30.0 s, --netns 36.5 s). */
const SIM_CPU_MS = 240_000;

async function ok(cmd: string, timeoutMs: number): Promise<Ran> {
  const r = await bash(cmd, timeoutMs);
  expect(r.code, `${cmd}\nstdout:\n${r.stdout.slice(-3000)}\nstderr:\n${r.stderr.slice(-3000)}`).toBe(0);
  noStack(r);
  return r;
}

/**
 * `ok` for a multi-process simulation: bounded by the CPU this test's processes spend (`cpuMs`), not by the
 * wall clock, which on a loaded 2-core machine is that CPU times the load; a far wall guard for a hang that
 * spins nothing. MESHLB_TEST_CPU=1 prints what each spent.
 */
async function okWithinCpu(cmd: string, cpuMs: number): Promise<Ran> {
  const stop = new AbortController();
  const t0 = treeCpuMs();
  const r = await withinTreeCpu(
    cpuMs,
    cmd,
    () => bash(cmd, WALL_GUARD_MS - 60_000, process.env, stop.signal),
    () => stop.abort(),
  );
  if (process.env.MESHLB_TEST_CPU) console.info(`cpu ${Math.round(treeCpuMs() - t0)} ms: ${cmd}`);
  expect(r.code, `${cmd}\nstdout:\n${r.stdout.slice(-3000)}\nstderr:\n${r.stderr.slice(-3000)}`).toBe(0);
  noStack(r);
  return r;
}

/** `sim --json`'s report: every acknowledged task completed, none lost. */
function simReport(r: Ran): { ok: boolean; lost: number; acknowledged: number } {
  const line = r.stdout.trim().split('\n').at(-1)!;
  const rep = JSON.parse(line) as { ok: boolean; acknowledged: number; lost: number };
  return { ok: rep.ok, lost: rep.lost, acknowledged: rep.acknowledged };
}

describe('docs/operations.md: simulations, chaos and deploy, as written', () => {
  const dir = mkdtempSync(join(tmpdir(), 'meshlb-ops-sims-'));
  let m: Moved;

  beforeAll(async () => {
    m = await moveTopologies(dir);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('every line this file runs or skips is one the doc has', () => {
    const mine = allCommands().filter((c) => planOf(c)?.by === 'sims');
    // docker build and compose x2, kubectl x2, the netns vitest lines x2, chaos on ha.yaml x3
    expect(mine.filter((c) => planOf(c)?.skip)).toHaveLength(10);
    // topology show, deploy, dev --metrics-port, sim on ha.yaml, on example.yaml, and in namespaces
    expect(mine.filter((c) => !planOf(c)?.skip)).toHaveLength(6);
  });

  it('topology show lists ha.yaml addresses', { timeout: 30_000 }, async () => {
    const cmd = allCommands().find((c) => c === 'npx meshlb topology show deploy/topologies/ha.yaml')!;
    const r = await ok(cmd, 25_000);
    for (const p of ['127.0.0.1:7200', '127.0.0.1:7201', '127.0.0.1:7202']) expect(r.stdout).toContain(p);
  });

  it('deploy writes compose and Kubernetes files', { timeout: 60_000 }, async () => {
    const [deploy] = commandsUnder('Deploying');
    const out = join(dir, 'deploy');
    await ok(shrink(deploy!, /--out deploy$/, `--out ${out}`), 55_000);
    expect(existsSync(join(out, 'docker-compose.yml'))).toBe(true);
    expect(existsSync(join(out, 'k8s', 'kustomization.yaml'))).toBe(true);
  });

  it('dev serves /metrics on --metrics-port', { timeout: 120_000 }, async () => {
    const cmd = allCommands().find((c) => c.startsWith('npx meshlb dev --metrics-port'))!;
    const port = await freeRange(1);
    const r = await ok(`${shrink(cmd, /--metrics-port 9464$/, `--metrics-port ${port}`)} --tasks 500`, 110_000);
    // dev's agents fail 2% of attempts on purpose (retried): every task ends, none lost or run twice.
    const m = /500 submitted, (\d+) completed, (\d+) failed, 0 dead-lettered, 0 lost, 0 duplicates/.exec(r.stdout);
    expect(m, r.stdout).not.toBeNull();
    expect(Number(m![1]) + Number(m![2])).toBe(500);
    expect(r.stderr).toContain(`127.0.0.1:${port}/metrics`);
  });

  it('sim runs ha.yaml as processes (the inline command)', { timeout: WALL_GUARD_MS }, async () => {
    const cmd = allCommands().find((c) => c === 'npx meshlb sim --topology deploy/topologies/ha.yaml')!;
    const r = await okWithinCpu(`${m.cmd(cmd)} --duration 3 --rate 50 --agents-per-node 2`, SIM_CPU_MS);
    expect(r.stdout).toMatch(/^sim: ok in /m);
    expect(r.stdout).toMatch(/tasks acknowledged 150, lost 0/);
    for (const c of loadTopology(m.ha).cells) expect(r.stderr).toContain(c.replicas[0]!.address);
  });

  const [example, , netns] = commandsUnder('Multi-process simulation');

  it('sim runs example.yaml with agents on every node', { timeout: WALL_GUARD_MS }, async () => {
    const r = await okWithinCpu(shrink(m.cmd(example!), /--duration 20/, '--duration 2'), SIM_CPU_MS);
    expect(r.stdout).toMatch(/^sim: ok in /m);
    expect(r.stdout).toMatch(/tasks acknowledged 400, lost 0/);
  });

  it.runIf(canNetns)('sim --netns: one network namespace per replica', { timeout: WALL_GUARD_MS }, async () => {
    const r = await okWithinCpu(shrink(asRoot(m.cmd(netns!), hasSudo), /--duration 20$/, '--duration 6'), SIM_CPU_MS);
    const rep = simReport(r);
    expect(rep).toMatchObject({ ok: true, lost: 0 });
    expect(rep.acknowledged).toBeGreaterThan(0);
  });
});
