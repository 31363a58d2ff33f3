// Whole-repository checks that belong in `npm test`: the TypeScript compiles
// under strict settings, eslint and prettier pass, the protos pass `buf lint`,
// no test is focused or skipped (a focused test silently drops the rest of the
// suite), the docs stand alone (every link resolves inside the repository),
// docs/architecture.md names every src/mesh module, and every hand-written source file fits in a head (MAX_SOURCE_LINES).
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..', '..');

/** Lines a hand-written file under src/ may have (the aim is ~400; generated src/gen is exempt). */
const MAX_SOURCE_LINES = 420;

/** Run a tool from the repository root: whether it exited 0, and what it printed. */
function run(cmd: string, args: string[]): Promise<{ ok: boolean; output: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd: root, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) =>
      resolve({ ok: err === null, output: `${stdout}${stderr}` }),
    );
  });
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
  // tsc, eslint and prettier (~30 s of CPU each, one core each) run at once: beside a file that waits
  // on the clock (the soak, vitest.config.ts) they use the core it leaves.
  it.concurrent('type-checks with tsc (strict)', { timeout: 240_000 }, async () => {
    const r = await run(join(root, 'node_modules', '.bin', 'tsc'), ['--noEmit', '-p', 'tsconfig.json']);
    expect(r.output).toBe('');
    expect(r.ok).toBe(true);
  });

  it.concurrent('passes npm run lint (eslint)', { timeout: 240_000 }, async () => {
    const r = await run(join(root, 'node_modules', '.bin', 'eslint'), ['.']);
    expect(r.output).toBe('');
    expect(r.ok).toBe(true);
  });

  it.concurrent('is formatted (prettier --check)', { timeout: 240_000 }, async () => {
    const r = await run(join(root, 'node_modules', '.bin', 'prettier'), ['--check', '--log-level', 'warn', '.']);
    expect(r.output).toBe('');
    expect(r.ok).toBe(true);
  });

  it('has docs whose links stay inside the repository and exist', () => {
    const docs = ['README.md', ...readdirSync(join(root, 'docs')).map((f) => join('docs', f))].filter((f) =>
      f.endsWith('.md'),
    );
    const bad: string[] = [];
    for (const doc of docs) {
      const text = readFileSync(join(root, doc), 'utf8');
      if (/\.\.\/shared\b/.test(text)) bad.push(`${doc}: names ../shared`);
      for (const m of text.matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)) {
        const target = m[1]!;
        if (/^[a-z]+:/.test(target)) continue;
        const abs = resolve(dirname(join(root, doc)), target);
        if (!abs.startsWith(root + sep) || !existsSync(abs)) bad.push(`${doc}: link ${target}`);
      }
    }
    expect(bad).toEqual([]);
  });

  it('passes buf lint', async () => {
    const r = await run(join(root, 'node_modules', '.bin', 'buf'), ['lint']);
    expect(r.output).toBe('');
    expect(r.ok).toBe(true);
  });

  it('has no explicit proto3 optional in the protos an agent in another language compiles', () => {
    // Debian's protoc 3.x (the Python agent test, test/e2e/python-agent.test.ts) refuses it: a
    // field whose zero value means "default" says the same. Checked here too, where no Python is.
    const dir = join(root, 'proto', 'meshlb', 'v1');
    const offenders = ['agent.proto', 'task.proto'].flatMap((f) =>
      readFileSync(join(dir, f), 'utf8')
        .split('\n')
        .map((line, i) => ({ line: line.replace(/\/\/.*$/, ''), at: `${f}:${i + 1}` }))
        .filter((l) => /^\s*optional\s/.test(l.line))
        .map((l) => `${l.at}: ${l.line.trim()}`),
    );
    expect(offenders).toEqual([]);
  });

  it(`has no hand-written source file over ${MAX_SOURCE_LINES} lines`, () => {
    const gen = join(root, 'src', 'gen') + sep;
    const offenders = filesUnder(join(root, 'src'))
      .filter((f) => !f.startsWith(gen))
      .map((f) => {
        const text = readFileSync(f, 'utf8');
        return { file: relative(root, f), lines: text.split('\n').length - (text.endsWith('\n') ? 1 : 0) };
      })
      .filter((f) => f.lines > MAX_SOURCE_LINES)
      .map((f) => `${f.file}: ${f.lines} lines (split it along its seams)`);
    expect(offenders).toEqual([]);
  });

  it('names every module of the mesh core in docs/architecture.md', () => {
    // The module table there says what each file owns; a file it does not
    // name is state nobody has said the owner of.
    const doc = readFileSync(join(root, 'docs', 'architecture.md'), 'utf8');
    const missing = readdirSync(join(root, 'src', 'mesh'))
      .filter((name) => name.endsWith('.ts') && !doc.includes(`\`${name}\``))
      .map((name) => `src/mesh/${name}: not in docs/architecture.md's module table`);
    expect(missing).toEqual([]);
  });

  it('has no focused or skipped tests', () => {
    const offenders = filesUnder(join(root, 'test'))
      .filter((f) => /\b(it|test|describe)\.(only|skip|todo)\(/.test(readFileSync(f, 'utf8').replace(/\/\/.*$/gm, '')))
      .filter((f) => !f.endsWith('repo.test.ts'));
    expect(offenders).toEqual([]);
  });
});
