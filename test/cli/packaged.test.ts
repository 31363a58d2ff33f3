// The compiled CLI as the image holds it: deploy/Dockerfile's layout assembled in a temp directory from its
// own instructions (image-layout.ts: bin/, the compiled dist/src with the live page's files, proto/, the
// example topologies, package files, and the production node_modules only: no src/, no tsx, no TypeScript),
// then real processes from there, as the image's ENTRYPOINT runs them: `dev` on the package's default
// topology, `topology show`, `serve` of a one-cell topology answering `health` SERVING, reflection listing
// its services (descriptors from the package's proto/) and serving the live page, and `sim` starting its
// processes from the package's bin/. Every path the compiled CLI reads is found from the package root
// (src/util/package-root.ts); before it, three of these failed from dist/ while every other test ran src/.
// The build is this checkout's dist/ when test/global-setup.ts found it as new as every source, else the
// Dockerfile's build stage run once in a temp directory.
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkHealth } from '../../src/cli/health-check.js';
import { reflectMethods } from '../fuzz/reflect.js';
import { alive, freePort, runToExit, type Ran } from '../helpers/process.js';
import { waitFor } from '../helpers/wait.js';
import { readDockerfile } from './dockerfile.js';
import { assembleImage, buildStage } from './image-layout.js';

const repo = join(import.meta.dirname, '..', '..');
const dockerfile = readDockerfile(join(repo, 'deploy', 'Dockerfile'));
/** Bound of one CLI run; the build stage (tsc) only runs when dist/ is stale. */
const RUN_MS = 45_000;
const BUILD_MS = 150_000;

let app = '';
const temps: string[] = [];
const children: number[] = [];

/** The image's environment: this one's without the test suite's entry overrides, plus the Dockerfile's ENV. */
function imageEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...dockerfile.env, MESHLB_LOG_LEVEL: 'warn' };
  delete env.MESHLB_SIM_BIN;
  delete env.MESHLB_TEST_ENTRY;
  return env;
}

/** The ENTRYPOINT with `args`, in the image's WORKDIR; killed past `timeoutMs`. */
function start(args: string[]): ReturnType<typeof spawn> {
  const [program, ...entry] = dockerfile.entrypoint;
  expect(program).toBe('node');
  const child = spawn(process.execPath, [...entry, ...args], { cwd: app, env: imageEnv() });
  if (child.pid !== undefined) children.push(child.pid);
  return child;
}

function run(args: string[], timeoutMs = RUN_MS): Promise<Ran> {
  return runToExit(start(args), `meshlb ${args.join(' ')}`, timeoutMs);
}

/** Files under `dir`, relative, skipping `skip` at the top. */
function files(dir: string, skip: readonly string[] = [], at = dir): string[] {
  const out: string[] = [];
  for (const e of readdirSync(at, { withFileTypes: true })) {
    const p = join(at, e.name);
    if (at === dir && skip.includes(e.name)) continue;
    if (e.isDirectory()) out.push(...files(dir, skip, p));
    else out.push(relative(dir, p));
  }
  return out.sort();
}

beforeAll(() => {
  // global-setup points MESHLB_TEST_ENTRY at dist/ only when dist/ is as new as every source and asset.
  const current = (process.env.MESHLB_TEST_ENTRY ?? '').startsWith(join(repo, 'dist'));
  const built = current ? repo : buildStage(dockerfile, 'build', repo, BUILD_MS);
  if (!current) temps.push(built);
  app = assembleImage(dockerfile, repo, built);
  temps.push(app);
}, BUILD_MS + 30_000);

afterAll(() => {
  for (const pid of children) if (alive(pid)) process.kill(pid, 'SIGKILL');
  for (const t of temps) rmSync(t, { recursive: true, force: true });
});

describe('the compiled CLI in the image layout (no sources, production dependencies only)', () => {
  it('holds no sources and no TypeScript tooling; bin/meshlb.js runs dist/', async () => {
    expect(existsSync(join(app, 'src'))).toBe(false);
    for (const dev of ['tsx', 'typescript', 'vitest', 'esbuild'])
      expect(existsSync(join(app, 'node_modules', dev))).toBe(false);
    for (const prod of ['@grpc/grpc-js', 'lmdb', 'pino'])
      expect(existsSync(join(app, 'node_modules', prod))).toBe(true);
    for (const f of ['index.html', 'app.js', 'style.css']) {
      expect(readFileSync(join(app, 'dist', 'src', 'admin', 'page', f))).toEqual(
        readFileSync(join(repo, 'src', 'admin', 'page', f)),
      );
    }
    const pkg = JSON.parse(readFileSync(join(app, 'package.json'), 'utf8')) as { version: string };
    const r = await run(['--version']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe(pkg.version);
  });

  it('is what the npm package ships (package.json "files"), plus the lock file and node_modules', () => {
    const r = spawnSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
      cwd: repo,
      encoding: 'utf8',
      timeout: RUN_MS,
    });
    expect(r.status, r.stderr).toBe(0);
    const packed = (JSON.parse(r.stdout) as Array<{ files: Array<{ path: string }> }>)[0]!.files
      .map((f) => f.path)
      .filter((p) => !/^(README|CHANGELOG)/i.test(p)); // the image carries LICENSE too, not the README
    const image = files(app, ['node_modules', 'package-lock.json']);
    // dist/src compared file by file only when the image's dist/ is this checkout's (else it is a fresh build).
    const current = (process.env.MESHLB_TEST_ENTRY ?? '').startsWith(join(repo, 'dist'));
    const cut = (l: string[]) => (current ? l : l.filter((p) => !p.startsWith('dist/')));
    expect(cut(image)).toEqual(cut(packed).sort());
    // The live page's files are in what ships: the checkout's dist/ when it is current, else the fresh build's.
    expect((current ? packed : image).some((p) => p.startsWith('dist/src/admin/page/'))).toBe(true);
  });

  it('dev --json completes every task on the package default topology', async () => {
    const seed = 5;
    const r = await run([
      'dev',
      '--json',
      '--tasks',
      '200',
      '--agents',
      '8',
      '--failure-rate',
      '0',
      '--seed',
      `${seed}`,
    ]);
    expect(r.code, `seed ${seed}\n${r.stderr}`).toBe(0);
    const report = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as Record<string, number>;
    expect(report, `seed ${seed}`).toMatchObject({ submitted: 200, completed: 200, lost: 0, duplicates_recorded: 0 });
    expect(report.cells).toBe(15); // deploy/topologies/example.yaml
  });

  it('topology show prints the example tree', async () => {
    const r = await run(['topology', 'show', 'deploy/topologies/example.yaml']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/eu-west/);
  });

  it('serve: health SERVING, reflection lists the services, the live page serves its files; SIGTERM exits 0', async () => {
    const address = `127.0.0.1:${await freePort()}`;
    const httpPort = await freePort();
    const topo = join(app, 'one.yaml');
    writeFileSync(topo, `name: one\ncells:\n  name: /\n  replicas: [{ address: "${address}" }]\n`);
    const child = start([
      'serve',
      '--topology',
      'one.yaml',
      '--cell',
      '/',
      '--data-dir',
      'data',
      '--http-port',
      `${httpPort}`,
    ]);
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-8000)));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    await waitFor(
      async () => {
        if (child.exitCode !== null) throw new Error(`serve exited ${child.exitCode}:\n${stderr}`);
        return (await checkHealth(address, '', 1000)) === 'SERVING';
      },
      { timeoutMs: RUN_MS, intervalMs: 100, what: `serve at ${address} SERVING` },
    );
    const health = await run(['health', '--address', address]);
    expect(health.code, health.stderr).toBe(0);
    expect(health.stdout.trim()).toBe('SERVING');

    const services = new Set((await reflectMethods(address)).map((m) => m.service));
    // A one-cell mesh's replica (a root, not a node: no AgentService); the descriptors come from proto/.
    for (const s of [
      'meshlb.v1.TaskService',
      'meshlb.v1.AdminService',
      'meshlb.v1.RaftService',
      'grpc.health.v1.Health',
    ])
      expect(services, [...services].join(', ')).toContain(s);

    const page = `http://127.0.0.1:${httpPort}`;
    for (const [path, file, type] of [
      ['/', 'index.html', 'text/html'],
      ['/app.js', 'app.js', 'text/javascript'],
      ['/style.css', 'style.css', 'text/css'],
    ] as const) {
      const res = await fetch(`${page}${path}`, { signal: AbortSignal.timeout(5000) });
      expect(res.status, path).toBe(200);
      expect(res.headers.get('content-type')).toContain(type);
      expect(Buffer.from(await res.arrayBuffer())).toEqual(readFileSync(join(repo, 'src', 'admin', 'page', file)));
    }
    const mesh = await fetch(`${page}/api/mesh`, { signal: AbortSignal.timeout(5000) });
    expect(mesh.status).toBe(200);

    child.kill('SIGTERM');
    const end = await Promise.race([
      exited,
      new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 15_000).unref()),
    ]);
    expect(end, stderr).toBe(0);
  });

  it("sim starts its replicas, agent-sim and submitter from the package's bin/", async () => {
    // Four tiers, one replica each: a node cell for the agents (sim runs one agent-sim per node cell).
    const a = async () => `{ address: "127.0.0.1:${await freePort()}" }`;
    writeFileSync(
      join(app, 'sim.yaml'),
      `name: sim\ncells:\n  name: /\n  replicas: [${await a()}]\n  children:\n` +
        `    - name: r\n      replicas: [${await a()}]\n      children:\n` +
        `        - name: z\n          replicas: [${await a()}]\n          children:\n` +
        `            - { name: n, replicas: [${await a()}] }\n`,
    );
    const r = await run([
      'sim',
      '--topology',
      'sim.yaml',
      '--duration',
      '1',
      '--rate',
      '50',
      '--agents-per-node',
      '2',
      '--json',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const result = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as {
      ok: boolean;
      lost: number;
      submit?: { completed: number };
    };
    expect(result).toMatchObject({ ok: true, lost: 0 });
    expect(result.submit?.completed).toBe(50);
  });
});

describe('bin/meshlb.js picks its entry', () => {
  /** A package dir holding bin/meshlb.js and stand-ins for the two entries, each printing its name. */
  function stub(withSource: boolean, withDist: boolean): string {
    const dir = mkdtempSync(join(tmpdir(), 'meshlb-bin-'));
    temps.push(dir);
    mkdirSync(join(dir, 'bin'));
    cpSync(join(repo, 'bin', 'meshlb.js'), join(dir, 'bin', 'meshlb.js'));
    if (withSource) {
      mkdirSync(join(dir, 'src', 'cli'), { recursive: true });
      writeFileSync(join(dir, 'src', 'cli', 'main.ts'), "console.log('source');\n");
    }
    if (withDist) {
      mkdirSync(join(dir, 'dist', 'src', 'cli'), { recursive: true });
      writeFileSync(join(dir, 'dist', 'src', 'cli', 'main.js'), "console.log('dist');\n");
    }
    return dir;
  }
  const bin = (dir: string) =>
    spawnSync(process.execPath, [join(dir, 'bin', 'meshlb.js')], { cwd: dir, encoding: 'utf8', timeout: RUN_MS });

  it('sources but no tsx (npm ci --omit=dev in a checkout): the built dist/, else a clear error', () => {
    // No node_modules here: tsx cannot be found, as after `npm ci --omit=dev`.
    let r = bin(stub(true, true));
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe('dist');
    r = bin(stub(true, false));
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/tsx is not installed .* no dist\/: run `npm ci`/);
  });

  it('no sources and no dist/: says the package was not built', () => {
    const r = bin(stub(false, false));
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/dist\/src\/cli\/main\.js is missing: this package was not built/);
  });
});
