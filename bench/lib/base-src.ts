// The src/ of another git ref beside this tree's, for benches that compare the
// two in one run (--base=REF): extracted once into tmp/base-<ref>/ inside the
// repo, so its imports resolve to this tree's node_modules.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';

/** src/ of git `ref` under `repo`/tmp; its path. */
export function extractBase(repo: string, ref: string): string {
  const dir = path.join(repo, 'tmp', `base-${ref.replace(/[^\w.-]/g, '_')}`);
  if (existsSync(dir)) rmSync(dir, { recursive: true });
  mkdirSync(dir, { recursive: true });
  const tar = execFileSync('git', ['-C', repo, 'archive', ref, 'src'], { maxBuffer: 1 << 28 });
  execFileSync('tar', ['-x', '-C', dir], { input: tar });
  return path.join(dir, 'src');
}

/** This tree's src/ and, with a `base` ref, that ref's before it: [name, src dir] each. */
export function implsFor(repo: string, base: string | undefined): [string, string][] {
  const impls: [string, string][] = [];
  if (base) impls.push([base, extractBase(repo, base)]);
  impls.push(['this tree', path.join(repo, 'src')]);
  return impls;
}

/**
 * Run `script` again as a child (`--child` and `args`, under this process's node flags after
 * `nodeFlags`) and parse the JSON object on its last line of output; a child that fails, or prints
 * none, throws naming `what`, its stderr passed on.
 */
export function runChild<T>(script: string, args: readonly string[], what: string, nodeFlags: string[] = []): T {
  const out = spawnSync(process.execPath, [...nodeFlags, ...process.execArgv, script, '--child', ...args], {
    encoding: 'utf8',
    maxBuffer: 1 << 24,
  });
  const line = out.stdout.trim().split('\n').pop() ?? '';
  if (out.status !== 0 || !line.startsWith('{')) {
    process.stderr.write(out.stderr);
    throw new Error(`child for ${what} failed (${out.status})`);
  }
  return JSON.parse(line) as T;
}
