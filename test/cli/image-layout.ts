// The image's filesystem under its WORKDIR, assembled on the host from deploy/Dockerfile's own instructions
// (there is no container engine here): the final stage's COPYs from the build context (this checkout), a
// `COPY --from=<stage>` from where that stage's WORKDIR is on the host (a built tree: this checkout's when
// its dist/ is current, else a directory where buildStage() ran the build stage), and for the final stage's
// `npm ci --omit=dev` the production part of package-lock.json, each package symlinked from the checkout's
// node_modules: the packages the lock marks `dev` (tsx, TypeScript, vitest, ...) are absent, as in the image.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, posix } from 'node:path';
import type { Dockerfile, Stage } from './dockerfile.js';

/** A stage's WORKDIR (absolute, as the Dockerfile names it). */
function workdir(stage: Stage): string {
  const w = stage.last('WORKDIR')?.args;
  if (w === undefined || !w.startsWith('/')) throw new Error(`stage ${stage.name ?? stage.base}: no absolute WORKDIR`);
  return w;
}

/**
 * Fill `into` as `stage`'s COPYs would its WORKDIR: sources from `context`, or for `--from=<s>` from
 * `stages[s]` (the host directory standing for that stage's WORKDIR). Docker's rules for what is used here:
 * a directory source copies its contents to the destination; several sources, or a destination ending in
 * `/`, go into the destination directory by their names.
 */
export function applyCopies(
  stage: Stage,
  context: string,
  into: string,
  stages: Readonly<Record<string, { dir: string; workdir: string }>> = {},
): void {
  const wd = workdir(stage);
  for (const c of stage.copies) {
    const dest = posix.relative(wd, posix.resolve(wd, c.dest));
    if (dest.startsWith('..')) throw new Error(`COPY to ${c.dest}: outside the WORKDIR ${wd}`);
    const intoDir = c.sources.length > 1 || c.dest.endsWith('/') || dest === '';
    for (const src of c.sources) {
      let from: string;
      if (c.from === undefined) from = join(context, src);
      else {
        const st = stages[c.from];
        if (st === undefined) throw new Error(`COPY --from=${c.from}: no host directory for that stage`);
        const rel = posix.relative(st.workdir, posix.resolve(st.workdir, src));
        if (rel.startsWith('..')) throw new Error(`COPY --from=${c.from} ${src}: outside its WORKDIR`);
        from = join(st.dir, rel);
      }
      if (!existsSync(from)) throw new Error(`COPY ${src}: ${from} does not exist`);
      const to = intoDir ? join(into, dest, posix.basename(src)) : join(into, dest);
      mkdirSync(statSync(from).isDirectory() ? to : dirname(to), { recursive: true });
      cpSync(from, to, { recursive: true });
    }
  }
}

/**
 * node_modules as `npm ci --omit=dev` lays it out from `repo`'s package-lock.json: every top-level package
 * the lock does not mark `dev`, symlinked from the checkout's node_modules (nested ones come inside their
 * parent). Optional packages this platform did not install are skipped, as npm skips them.
 */
export function productionModules(repo: string, into: string): string[] {
  const lock = JSON.parse(readFileSync(join(repo, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, { dev?: boolean; optional?: boolean; link?: boolean }>;
  };
  const linked: string[] = [];
  for (const [key, entry] of Object.entries(lock.packages)) {
    const m = /^node_modules\/((?:@[^/]+\/)?[^/]+)$/.exec(key);
    if (!m || entry.dev === true) continue;
    const name = m[1]!;
    const real = join(repo, 'node_modules', name);
    if (!existsSync(real)) {
      if (entry.optional === true) continue;
      throw new Error(`${name} is a production dependency but not installed in ${repo}: npm ci`);
    }
    const to = join(into, 'node_modules', name);
    mkdirSync(dirname(to), { recursive: true });
    symlinkSync(real, to, 'dir');
    linked.push(name);
  }
  return linked;
}

/**
 * The build stage's WORKDIR after its RUNs, in a temp directory: its COPYs from `repo`, the checkout's whole
 * node_modules for its `npm ci` (dev dependencies included, as there), then its last RUN (`npm run build`).
 * Returns the directory.
 */
export function buildStage(df: Dockerfile, stageName: string, repo: string, timeoutMs: number): string {
  const stage = df.stage(stageName);
  const dir = mkdtempSync(join(tmpdir(), 'meshlb-build-stage-'));
  applyCopies(stage, repo, dir);
  symlinkSync(join(repo, 'node_modules'), join(dir, 'node_modules'), 'dir');
  const run = stage.last('RUN')!.args;
  const r = spawnSync('sh', ['-c', run], { cwd: dir, encoding: 'utf8', timeout: timeoutMs });
  if (r.status !== 0)
    throw new Error(`build stage: ${run} failed (${r.status ?? r.signal}):\n${r.stdout}\n${r.stderr}`);
  return dir;
}

/**
 * The image's WORKDIR in a temp directory: the final stage's COPYs (`built` stands for the WORKDIR of every
 * stage copied from) and the production node_modules. Returns the directory.
 */
export function assembleImage(df: Dockerfile, repo: string, built: string): string {
  const app = mkdtempSync(join(tmpdir(), 'meshlb-image-app-'));
  const stages = Object.fromEntries(
    df.stages.filter((s) => s.name !== undefined).map((s) => [s.name!, { dir: built, workdir: workdir(s) }]),
  );
  applyCopies(df, repo, app, stages);
  productionModules(repo, app);
  return app;
}
