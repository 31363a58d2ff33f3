// README.md's commands work as written. The test reads README.md, finds every
// command in its ```sh blocks (and the `npx meshlb ...` and `grpcurl ...` it
// names inline), and runs each one with bash from the repository root, as a
// reader would, changing only:
// - sizes (tasks, seeds, duration), so the whole file runs in a few minutes;
// - output directories (--out) to a temporary one;
// - the fixed ports of deploy/topologies/example.yaml (7100-7114), which the
//   multi-process recipes need: they run against a copy of the topology whose
//   basePort is a free range and whose defaults.dataDir is a temporary
//   directory, with every 127.0.0.1:71xx in the commands moved with it (other
//   tests and other runs may hold 7100-7114).
// A command the test does not know fails it: a new README command must be given
// a way to run here, or a stated reason not to (benchmarks, the suite itself).
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadTopology } from '../../src/topology/parse.js';
import {
  bash,
  freeRange,
  inlineCommands,
  movedTopology,
  noStack,
  portFree,
  repo,
  shBlocks,
  shrink,
} from './recipes.js';

const README = readFileSync(join(repo, 'README.md'), 'utf8');
const EXAMPLE = 'deploy/topologies/example.yaml';
const example = loadTopology(join(repo, EXAMPLE));

/** The summary line README quotes after "It ends with a line like this one", numbers left open. */
function devSummaryPattern(): RegExp {
  const quoted = /It ends with a line like this one:\s*```\n(.+)\n```/.exec(README)?.[1];
  expect(quoted, 'README quotes the summary line of npm start').toBeDefined();
  const escaped = quoted!.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/\d+(?:\\\.\d+)?/g, '\\d+(?:\\.\\d+)?');
  return new RegExp(`^${escaped}$`);
}

describe('README recipes, as written', () => {
  const dir = mkdtempSync(join(tmpdir(), 'meshlb-readme-'));
  let base = 0;
  let shifted = '';
  /** A command on the copy of example.yaml at free ports. */
  const moved = (cmd: string): string =>
    cmd
      .replaceAll(EXAMPLE, shifted)
      .replace(/127\.0\.0\.1:71(\d\d)/g, (_, n: string) => `127.0.0.1:${base + Number(n)}`);

  beforeAll(async () => {
    base = await freeRange(example.cells.length);
    shifted = movedTopology(EXAMPLE, join(dir, 'example.yaml'), base, join(dir, 'data'));
    expect(loadTopology(shifted).defaults.dataDir).toBe(join(dir, 'data'));
  });

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  // How each README command runs here (null: not run, for the reason given).
  const plans: Array<{ match: RegExp; skip?: string; timeoutMs?: number; run?: (cmd: string) => Promise<void> }> = [
    { match: /^npm test$/, skip: 'the suite itself' },
    {
      match: /^npm run bench(:raft|:sched|:peers|:scale|:client)?$/,
      skip: 'benchmarks measure the machine for minutes; never run in tests',
    },
    {
      match: /^npm run soak -- --minutes \d+$/,
      skip: 'a soak runs for minutes; test/soak/soak.test.ts runs two minutes of the same processes',
    },
    {
      match: /^npm run raft:demo$/,
      skip: 'kills a Raft leader at least 20 times (minutes); test/e2e/raft-kill.test.ts runs the same processes',
    },
    {
      match: /^grpcurl /,
      skip: 'grpcurl is not a dependency; test/admin/reflection.test.ts checks what reflection lists',
    },
    {
      match: /^npm install && npm start$/,
      timeoutMs: 180_000,
      run: async () => {
        // Installed already (npm ci); `npm start` with fewer tasks than its 10,000.
        const r = await bash('npm start -- --tasks 2000', 170_000);
        expect(r.code, r.stderr).toBe(0);
        noStack(r);
        const last = r.stdout.trim().split('\n').at(-1)!;
        expect(last).toMatch(devSummaryPattern());
        expect(last).toContain('0 lost, 0 duplicates');
        // Each replica's live address, before the run; piped, progress has no carriage returns.
        for (const c of example.cells) expect(r.stderr).toMatch(new RegExp(`\\n  ${c.path} +127\\.0\\.0\\.1:\\d+ `));
        expect(r.stderr).not.toContain('\r');
        expect(r.stderr).toMatch(/\[dev\] [\d.]+s submitted/);
      },
    },
    {
      match: /^npx meshlb dev .*--json$/,
      timeoutMs: 120_000,
      run: async (cmd) => {
        const small = shrink(shrink(cmd, /--tasks \d+/, '--tasks 1000'), /--agents \d+/, '--agents 20');
        const r = await bash(small, 110_000);
        expect(r.code, r.stderr).toBe(0);
        const lines = r.stdout.trim().split('\n');
        expect(lines).toHaveLength(1);
        expect(JSON.parse(lines[0]!)).toMatchObject({ submitted: 1000, lost: 0, duplicates_recorded: 0 });
      },
    },
    {
      match: /^npx meshlb sim --topology \S+$/,
      timeoutMs: 300_000,
      run: async (cmd) => {
        // 15 processes on the copy's ports; a short, light workload.
        const r = await bash(`${moved(cmd)} --duration 3 --rate 50 --agents-per-node 2`, 290_000);
        expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
        expect(r.stdout).toMatch(/^sim: ok in /m);
        expect(r.stdout).toMatch(/tasks acknowledged 150, lost 0/);
        for (const c of example.cells)
          expect(r.stderr).toContain(`127.0.0.1:${base + Number(c.replicas[0]!.address.split(':')[1]) - 7100}`);
        noStack(r);
      },
    },
    {
      match: /^npx meshlb deploy --topology \S+ --out deploy$/,
      timeoutMs: 60_000,
      run: async (cmd) => {
        const out = join(dir, 'deploy');
        const r = await bash(shrink(cmd, /--out deploy$/, `--out ${out}`), 55_000);
        expect(r.code, r.stderr).toBe(0);
        expect(existsSync(join(out, 'docker-compose.yml'))).toBe(true);
        expect(existsSync(join(out, 'k8s'))).toBe(true);
      },
    },
    {
      match: /^npm run sim:(raft|mesh) -- --seeds \d+$/,
      timeoutMs: 180_000,
      run: async (cmd) => {
        const r = await bash(shrink(cmd, /--seeds \d+$/, '--seeds 3'), 170_000);
        expect(r.code, r.stderr.slice(-2000)).toBe(0);
        expect(r.stdout.trim().split('\n').at(-1)).toBe('seeds=3 violations=0');
      },
    },
    {
      match: /^npx meshlb topology show \S+$/,
      timeoutMs: 60_000,
      run: async (cmd) => {
        const r = await bash(cmd, 55_000);
        expect(r.code, r.stderr).toBe(0);
        for (const c of example.cells) expect(r.stdout).toContain(`${c.path}  [${c.tier}`);
        expect(r.stdout).toContain('127.0.0.1:7114');
      },
    },
  ];

  const blocks = shBlocks(README);
  const byHand = blocks.find((b) => b.script.includes('for c in '));
  const single = [...blocks.filter((b) => b !== byHand).flatMap((b) => b.commands), ...inlineCommands(README)];

  it('finds the recipes, and every command has a way to run here or a stated reason not to', () => {
    expect(byHand, 'the multi-process recipe (a `for c in ...` block)').toBeDefined();
    expect(single.length).toBeGreaterThan(5);
    const unknown = single.filter((c) => !plans.some((p) => p.match.test(c)));
    expect(unknown, 'README commands this test does not know how to run').toEqual([]);
  });

  for (const cmd of single) {
    const plan = plans.find((p) => p.match.test(cmd));
    if (!plan?.run) continue;
    it(`runs: ${cmd}`, { timeout: plan.timeoutMs ?? 60_000 }, () => plan.run!(cmd));
  }

  it(
    'runs the by-hand multi-process recipe (on the copy of example.yaml at free ports): every task completes, SIGTERM stops every process',
    { timeout: 240_000 },
    async () => {
      // The block as README writes it, smaller, then `wait`: `kill $(jobs -p)` must stop them all.
      const script = shrink(moved(byHand!.script), /--tasks \d+ --rate \d+/, '--tasks 400 --rate 200') + '\nwait\n';
      const r = await bash(script, 230_000);
      expect(r.code, r.stderr.slice(-3000)).toBe(0);
      // The summary README quotes, with 400 for its 10000.
      const quoted = /`(submitted 10000, accepted 10000, [^`]+)`/.exec(README)?.[1];
      expect(quoted, 'README quotes the summary line of submit').toBeDefined();
      expect(r.stdout).toContain(quoted!.replaceAll('10000', '400'));
      expect(r.stdout).toMatch(/^agent-sim: 100 agents, completed 4\d\d, /m);
      noStack(r);
      // Every replica exited on SIGTERM: their ports are free again.
      for (const n of [0, 1, 2, 3]) expect(await portFree(base + n), `port ${base + n}`).toBe(true);
    },
  );
});
