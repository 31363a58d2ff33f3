// The CLI guides its user: --help marks required flags and shows every
// default; a failure is one line saying what to do, never a stack trace (a
// port in use, an --out that cannot be written); progress is a live line only
// on a terminal. (Summaries on stdout, live addresses and plain progress when
// piped are checked on the real commands by readme-recipes.test.ts.)
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildProgram } from '../../src/cli/main.js';
import { errorLine } from '../../src/cli/errors.js';
import { progressTo } from '../../src/cli/progress.js';
import { runSubmit } from '../../src/cli/submit.js';
import { FakeNode } from '../helpers/fake-node.js';
import { runToExit, type Ran } from '../helpers/process.js';

const repo = join(import.meta.dirname, '..', '..');

function run(args: string[], timeoutMs = 60_000): Promise<Ran> {
  const child = spawn(process.execPath, [join(repo, 'bin', 'meshlb.js'), ...args], { cwd: repo });
  return runToExit(child, `meshlb ${args.join(' ')}`, timeoutMs);
}

/** Every command and subcommand with its path, e.g. ['topology show', cmd]. */
function commands(): Array<[string, Command]> {
  const out: Array<[string, Command]> = [];
  const visit = (c: Command, path: string): void => {
    for (const sub of c.commands) {
      const p = path ? `${path} ${sub.name()}` : sub.name();
      out.push([p, sub]);
      visit(sub, p);
    }
  };
  visit(
    buildProgram(() => undefined),
    '',
  );
  return out;
}

describe('--help', () => {
  it('marks every required option and shows a default for every option that takes a value', () => {
    const missing: string[] = [];
    for (const [path, cmd] of commands()) {
      const help = cmd.createHelp();
      for (const o of cmd.options) {
        // What --help prints beside the flags: the description with commander's (choices, default) added.
        const entry = help.optionDescription(o);
        if (o.mandatory && !entry.includes('(required)')) missing.push(`${path} ${o.long}: not marked (required)`);
        if (!o.mandatory && (o.required || o.optional) && !/\bdefault:? /.test(entry))
          missing.push(`${path} ${o.long}: no default shown in "${entry}"`);
      }
    }
    expect(missing).toEqual([]);
  });

  it('shows the defaults the commands apply themselves', () => {
    const help = (name: string): string =>
      commands()
        .find(([p]) => p === name)![1]
        .helpInformation()
        .replace(/\s+/g, ' ');
    expect(help('dev')).toMatch(/--tasks <n> tasks to submit \(default: 10000\)/);
    expect(help('dev')).toMatch(/--agents <n> simulated agents in total \(default: 40\)/);
    expect(help('submit')).toMatch(/--address <host:port> .*\(required\)/);
    expect(help('submit')).toMatch(/--concurrency <n> max tasks in flight \(default: 256\)/);
    expect(help('agent-sim')).toMatch(/--seed <s> random seed \(default: 1\)/);
    expect(help('deploy')).toMatch(/--out <dir> .*\(required\)/);
  });
});

describe('failures are one line', () => {
  const dir = mkdtempSync(join(tmpdir(), 'meshlb-guides-'));
  let holder: Server;
  let port = 0;
  beforeAll(async () => {
    holder = createServer();
    await new Promise<void>((r) => holder.listen(0, '127.0.0.1', r));
    port = (holder.address() as { port: number }).port;
  });
  afterAll(() => {
    holder.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const oneLine = (stderr: string): string => {
    const lines = stderr.trim().split('\n');
    expect(lines, stderr).toHaveLength(1);
    expect(stderr).not.toMatch(/\bat .+:\d+:\d+/);
    return lines[0]!;
  };

  it('serve on a port in use', async () => {
    const yaml = readFileSync(join(repo, 'deploy', 'topologies', 'example.yaml'), 'utf8');
    const topology = join(dir, 'taken.yaml');
    writeFileSync(topology, yaml.replace(/basePort: 7100\b/, `basePort: ${port}`));
    const r = await run(['serve', '--topology', topology, '--cell', '/', '--data-dir', join(dir, 'data')]);
    expect(r.code).toBe(1);
    expect(oneLine(r.stderr)).toBe(
      `meshlb: cannot listen on 127.0.0.1:${port}: the port is in use (another replica, a meshlb dev or another program holds it)`,
    );
  });

  it('deploy to an --out that cannot be written', async () => {
    const file = join(dir, 'a-file');
    writeFileSync(file, '');
    const r = await run(['deploy', '--topology', 'deploy/topologies/example.yaml', '--out', join(file, 'deploy')]);
    expect(r.code).toBe(1);
    expect(oneLine(r.stderr)).toMatch(/^meshlb: cannot write under --out .*a-file\/deploy: ENOTDIR: not a directory/);
  });

  it('an http listener on a port in use reads the same', () => {
    const err = Object.assign(new Error('listen EADDRINUSE: address already in use 127.0.0.1:9464'), {
      code: 'EADDRINUSE',
      address: '127.0.0.1',
      port: 9464,
    });
    expect(errorLine(err)).toBe(
      'cannot listen on 127.0.0.1:9464: the port is in use (another replica, a meshlb dev or another program holds it)',
    );
    expect(errorLine(new Error('first line\n    at somewhere (x.ts:1:2)'))).toBe('first line');
  });
});

describe('hints', () => {
  it('submit says which kind no agent took when none of its tasks finished', async () => {
    const node = await FakeNode.start();
    try {
      node.autoDispatch = true; // but no agent: nothing ever finishes
      const err: string[] = [];
      const code = await runSubmit({
        address: node.address,
        tasks: 3,
        kind: 'echo',
        waitMs: 100,
        statsIntervalMs: 0,
        stdout: () => undefined,
        stderr: (l) => err.push(l),
      });
      expect(code).toBe(1);
      expect(err).toContain(
        'submit: none of the 3 tasks finished within --wait-ms; is an agent of kind "echo" connected? ' +
          '(agent-sim --kinds and submit --kind must name the same kind)',
      );
    } finally {
      await node.stop();
    }
  });
});

describe('progress', () => {
  const sink = (isTTY: boolean) => {
    let text = '';
    const stream = { isTTY, write: (s: string) => ((text += s), true) } as unknown as NodeJS.WriteStream;
    return { stream, text: () => text };
  };

  it('is one live line on a terminal, ended before anything else is printed', () => {
    const s = sink(true);
    const p = progressTo(s.stream);
    p.line('1 done');
    p.line('2 done');
    p.done();
    expect(s.text()).toBe('\r1 done\x1b[K\r2 done\x1b[K\n');
  });

  it('is plain lines when piped', () => {
    const s = sink(false);
    const p = progressTo(s.stream);
    p.line('1 done');
    p.line('2 done');
    p.done();
    expect(s.text()).toBe('1 done\n2 done\n');
  });
});
