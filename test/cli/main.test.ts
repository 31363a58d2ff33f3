// The CLI: argument errors exit 2 with a message, commands dispatch to their
// modules, topology validate/show work. Runs main() in-process for speed and
// bin/meshlb.js once for real.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { main, EXIT_USAGE } from '../../src/cli/main.js';

const repo = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..');
const example = join(repo, 'deploy', 'topologies', 'example.yaml');

/** Run main() capturing stdout and stderr. */
async function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const [o, e] = [process.stdout.write, process.stderr.write];
  process.stdout.write = ((c: string | Uint8Array) => ((out += String(c)), true)) as typeof process.stdout.write;
  process.stderr.write = ((c: string | Uint8Array) => ((err += String(c)), true)) as typeof process.stderr.write;
  try {
    const code = await main(argv);
    return { code, out, err };
  } finally {
    process.stdout.write = o;
    process.stderr.write = e;
  }
}

describe('meshlb CLI', () => {
  it('--help lists every command and exits 0', async () => {
    const r = await run('--help');
    expect(r.code).toBe(0);
    for (const c of ['serve', 'dev', 'agent-sim', 'submit', 'deploy', 'sim', 'topology', 'health'])
      expect(r.out).toContain(c);
  });

  it('unknown flags and commands are usage errors (exit 2) with a message', async () => {
    const a = await run('dev', '--bogus');
    expect(a.code).toBe(EXIT_USAGE);
    expect(a.err).toMatch(/unknown option '--bogus'/);
    const b = await run('frobnicate');
    expect(b.code).toBe(EXIT_USAGE);
    expect(b.err).toMatch(/unknown command 'frobnicate'/);
  });

  it('bad values are usage errors naming the option and the rule', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['dev', '--tasks', 'many'], /--tasks.*must be an integer/],
      [['dev', '--failure-rate', '1.5'], /--failure-rate.*between 0 and 1/],
      [['serve', '--topology', example, '--cell', '/', '--replica', '9'], /--replica.*between 1 and 5/],
      [['serve', '--cell', '/'], /required option '--topology <file>'/],
      [
        ['sim', '--topology', example, '--chaos', 'meteor'],
        /unknown meteor \(allowed: kill-leaders, kill-agents, partition, restart, pause\)/,
      ],
      [['agent-sim', '--address', 'x:1', '--labels', 'novalue'], /"novalue" is not key=value/],
      [['serve', '--topology', example, '--cell', '/', '--log-level', 'loud'], /--log-level.*Allowed choices/],
    ];
    for (const [argv, re] of cases) {
      const r = await run(...argv);
      expect(r.code, argv.join(' ')).toBe(EXIT_USAGE);
      expect(r.err, argv.join(' ')).toMatch(re);
    }
  });

  it('topology validate: ok → 0; problems → 1 with every one listed', async () => {
    const ok = await run('topology', 'validate', example);
    expect(ok.code).toBe(0);
    expect(ok.out).toMatch(/ok \(example: 15 cells, 15 replicas\)/);
    const bad = join(mkdtempSync(join(tmpdir(), 'meshlb-cli-')), 'bad.yaml');
    writeFileSync(bad, 'cells: { name: /, replicas: 2, policy: nope }');
    const r = await run('topology', 'validate', bad);
    expect(r.code).toBe(1);
    expect(r.err).toContain(bad);
    expect(r.err).toMatch(/field "replicas": must be 1, 3 or 5/);
    expect(r.err).toMatch(/field "policy": unknown policy/);
  });

  it('topology show prints the tree, or explicit YAML', async () => {
    const r = await run('topology', 'show', example);
    expect(r.code).toBe(0);
    expect(r.out).toContain('/us/east-1b/n2  [node, node-score]');
    const y = await run('topology', 'show', example, '--yaml');
    expect(y.out).toContain('address: 127.0.0.1:7114');
  });

  it('health reports UNREACHABLE and exits 1 when nothing listens', async () => {
    const r = await run('health', '--address', '127.0.0.1:1', '--timeout-ms', '500');
    expect(r.code).toBe(1);
    expect(r.out.trim()).toBe('UNREACHABLE');
  });

  it('bin/meshlb.js runs the CLI (the npx meshlb entry)', () => {
    const r = spawnSync(process.execPath, [join(repo, 'bin', 'meshlb.js'), 'topology', 'validate', example], {
      encoding: 'utf8',
      env: { ...process.env, MESHLB_FROM_SOURCE: '1' },
      timeout: 30_000,
    });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('ok (example');
    const bad = spawnSync(process.execPath, [join(repo, 'bin', 'meshlb.js'), 'dev', '--nope'], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(bad.status).toBe(EXIT_USAGE);
  });
});
