// Whole-repository checks that belong in `npm test`: the TypeScript compiles
// under strict settings, the protos pass `buf lint`, and no test is focused
// or skipped (a focused test silently drops the rest of the suite).
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..', '..');

function run(cmd: string, args: string[]): { ok: boolean; output: string } {
  try {
    const output = execFileSync(cmd, args, { cwd: root, encoding: 'utf8', stdio: 'pipe' });
    return { ok: true, output };
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    return { ok: false, output: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

function filesUnder(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) filesUnder(p, out);
    else if (p.endsWith('.ts')) out.push(p);
  }
  return out;
}

describe('repository', () => {
  it('type-checks with tsc (strict)', () => {
    const r = run(join(root, 'node_modules', '.bin', 'tsc'), ['--noEmit', '-p', 'tsconfig.json']);
    expect(r.output).toBe('');
    expect(r.ok).toBe(true);
  });

  it('passes buf lint', () => {
    const r = run(join(root, 'node_modules', '.bin', 'buf'), ['lint']);
    expect(r.output).toBe('');
    expect(r.ok).toBe(true);
  });

  it('has no focused or skipped tests', () => {
    const offenders = filesUnder(join(root, 'test'))
      .filter((f) => /\b(it|test|describe)\.(only|skip|todo)\(/.test(readFileSync(f, 'utf8').replace(/\/\/.*$/gm, '')))
      .filter((f) => !f.endsWith('repo.test.ts'));
    expect(offenders).toEqual([]);
  });
});
