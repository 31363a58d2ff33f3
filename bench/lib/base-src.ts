// The src/ of another git ref beside this tree's, for benches that compare the
// two in one run (--base=REF): extracted once into tmp/base-<ref>/ inside the
// repo, so its imports resolve to this tree's node_modules.
import { execFileSync } from 'node:child_process';
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
