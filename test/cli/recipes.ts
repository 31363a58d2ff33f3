// What the recipe tests share (README.md: readme-recipes.test.ts; docs/operations.md:
// operations-*.test.ts): reading a doc's ```sh blocks as a reader would, running a
// command with bash from the repository root, and copies of a topology moved to free
// ports so a recipe never takes the fixed ports other runs may hold.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { expect } from 'vitest';

export const repo = join(import.meta.dirname, '..', '..');

export interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Every ```sh block: its logical commands (see `commandsOf`), and its text. */
export function shBlocks(md: string): Array<{ commands: string[]; script: string }> {
  return [...md.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => ({ commands: commandsOf(m[1]!), script: m[1]! }));
}

/**
 * A block's commands as a shell reads them: comments and blank lines dropped, a line
 * ending in `\` joined to the next, and a `for ...` loop through its `done` as one.
 */
export function commandsOf(script: string): string[] {
  const lines = script
    .split('\n')
    .map((l) => l.replace(/(^|\s+)#.*$/, '').trim())
    .filter(Boolean);
  const out: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    let cmd = lines[i]!;
    while (cmd.endsWith('\\') && i + 1 < lines.length) cmd = `${cmd.slice(0, -1).trimEnd()} ${lines[++i]!}`;
    if (/^for /.test(cmd)) while (!/^done\b/.test(lines[i]!) && i + 1 < lines.length) cmd += `\n${lines[++i]!}`;
    out.push(cmd);
  }
  return out;
}

/** Commands a doc names inline (`npx meshlb ...`, `grpcurl ...`), whitespace folded; templates with `...` left out. */
export function inlineCommands(md: string): string[] {
  return [...md.matchAll(/`((?:npx meshlb|grpcurl) [^`]+)`/g)]
    .map((m) => m[1]!.replace(/\s+/g, ' '))
    .filter((c) => !c.includes('...'));
}

/** Start `script` with bash from the repository root, in its own process group. */
export function spawnBash(script: string, env: NodeJS.ProcessEnv = process.env): ChildProcess {
  return spawn('bash', ['-c', script], { cwd: repo, env, detached: true });
}

/** Kill a process started by `spawnBash` and everything it started. */
export function killGroup(child: ChildProcess, signal: NodeJS.Signals = 'SIGKILL'): void {
  try {
    process.kill(-child.pid!, signal);
  } catch {
    // gone already
  }
}

/**
 * Run `script` with bash from the repository root (its whole process group killed on timeout, or when
 * `signal` aborts: a test bounded by CPU time, tree-cpu.ts).
 */
export function bash(
  script: string,
  timeoutMs: number,
  env: NodeJS.ProcessEnv = process.env,
  signal?: AbortSignal,
): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawnBash(script, env);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const stop = (why: string): void => {
      killGroup(child);
      reject(new Error(`${why}: ${script}\nstdout:\n${stdout}\nstderr:\n${stderr}`));
    };
    const timer = setTimeout(() => stop(`did not finish within ${timeoutMs} ms`), timeoutMs);
    const onAbort = (): void => stop('stopped (past its CPU budget)');
    signal?.addEventListener('abort', onAbort, { once: true });
    child.on('close', (code) => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      resolve({ code, stdout, stderr });
    });
  });
}

export function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/**
 * A base port with `n` free ports from it (a moved topology binds them all).
 * Below the kernel's ephemeral range: ports other tests bind with port 0, and their client
 * connections, come from that range, and took one of ours between this probe and the bind
 * (a fresh-clone CI run saw "port in use").
 */
export async function freeRange(n: number): Promise<number> {
  const ephemeralLow = ephemeralRangeStart();
  const lo = 10_000;
  const hi = Math.max(lo + 1_000, ephemeralLow - n - 1);
  for (let tries = 0; tries < 50; tries++) {
    const base = lo + Math.floor(Math.random() * (hi - lo));
    let ok = true;
    for (let p = base; p < base + n && ok; p++) ok = await portFree(p);
    if (ok) return base;
  }
  throw new Error(`no ${n} free consecutive ports found`);
}

/** The first port the kernel hands out for port-0 binds and outgoing connections (Linux; 32768 elsewhere). */
function ephemeralRangeStart(): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(low) && low > 11_000 ? low : 32_768;
  } catch {
    return 32_768;
  }
}

/** `s` with `re` replaced, failing when the doc no longer has what the test changes. */
export function shrink(s: string, re: RegExp, to: string): string {
  expect(s, `the command no longer matches ${re}`).toMatch(re);
  return s.replace(re, to);
}

export const noStack = (r: Ran): void => expect(`${r.stdout}${r.stderr}`).not.toMatch(/\n\s+at .+:\d+:\d+\)?\n/);

/**
 * A copy of the topology file `file` (repository-relative) at `base`, written to `out`:
 * its `basePort` moved there, its data under `dataDir`, and `extraDefaults` (YAML lines)
 * added to its defaults.
 */
export function movedTopology(file: string, out: string, base: number, dataDir: string, extraDefaults = ''): string {
  const yaml = readFileSync(join(repo, file), 'utf8');
  let text = shrink(yaml, /basePort: \d+\b/, `basePort: ${base}`);
  const defaults = `  dataDir: ${JSON.stringify(dataDir)}\n${extraDefaults}`;
  text = /^defaults:\n/m.test(text)
    ? text.replace(/^defaults:\n/m, `defaults:\n${defaults}`)
    : text.replace(/^tiers:/m, `defaults:\n${defaults}\ntiers:`);
  writeFileSync(out, text);
  return out;
}
