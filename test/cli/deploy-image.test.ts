// The image's start and health commands, run outside a container (there is
// no container engine here): deploy/Dockerfile's ENTRYPOINT with the command
// the generated compose file gives the replica of a one-cell topology, the
// container paths mapped to what the mounts would hold; then the HEALTHCHECK's
// own command until it reports SERVING, and SIGTERM must end the replica with
// exit 0. What this cannot show: the image builds, the base image's node and
// the uid's permissions inside a real container.
import { afterAll, describe, expect, it } from 'vitest';
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { generateDeploy } from '../../src/topology/deploy/index.js';
import { loadTopology } from '../../src/topology/parse.js';
import { alive, freePort } from '../helpers/process.js';
import { waitFor } from '../helpers/wait.js';
import { durationMs, readDockerfile } from './dockerfile.js';
import { assembleImage } from './image-layout.js';

const repo = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..');
const dockerfile = readDockerfile(join(repo, 'deploy', 'Dockerfile'));
const healthcheck = dockerfile.healthcheck!;
const started: ChildProcess[] = [];

afterAll(() => {
  for (const c of started) if (c.exitCode === null && c.pid !== undefined && alive(c.pid)) c.kill('SIGKILL');
});

interface ComposeService {
  command: string[];
  volumes: string[];
}

/** The compose service of the one replica, and its command with container paths mapped to host paths. */
function replicaCommand(dir: string, address: string): { args: string[]; dataDir: string } {
  const topologyFile = join(dir, 'topology.yaml');
  writeFileSync(topologyFile, `name: one\ncells:\n  name: /\n  replicas: [{ address: "${address}" }]\n`);
  const compose = parse(generateDeploy(loadTopology(topologyFile)).get('docker-compose.yml')!) as {
    services: Record<string, ComposeService>;
  };
  const service = compose.services['root-1']!;
  // What each mount puts at its container path: the compose topology names
  // root-1:7000, which only the compose network resolves, so the replica reads
  // ours (the same cell at a loopback address); a named volume is a fresh dir.
  const hostPath = new Map<string, string>();
  for (const v of service.volumes) {
    const [source, target] = v.split(':') as [string, string];
    if (source.startsWith('./')) hostPath.set(target, topologyFile);
    else {
      hostPath.set(target, join(dir, source));
      mkdirSync(join(dir, source));
    }
  }
  const args = service.command.map((a) => hostPath.get(a) ?? a);
  const dataDir = args[args.indexOf('--data-dir') + 1]!;
  return { args, dataDir };
}

/** The HEALTHCHECK's command, as Docker runs it (/bin/sh -c, the image's ENV, the WORKDIR), within its timeout. */
function runHealthcheck(cwd: string, address: string): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(
      'sh',
      ['-c', healthcheck.command],
      {
        cwd,
        // the image probes 127.0.0.1:7000; this replica listens on a free port
        env: { ...process.env, ...dockerfile.env, MESHLB_HEALTH_ADDRESS: address },
        timeout: durationMs(healthcheck.options.timeout ?? '30s'),
      },
      (err, stdout) => {
        const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
        resolve({ code, out: stdout.trim() });
      },
    );
  });
}

/** Start the ENTRYPOINT + compose command in `cwd` (the image's WORKDIR), wait for SERVING, SIGTERM, expect 0. */
async function startServeStop(cwd: string): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'meshlb-image-'));
  const address = `127.0.0.1:${await freePort()}`;
  const { args, dataDir } = replicaCommand(dir, address);
  expect(dataDir.startsWith(dir), `--data-dir ${dataDir} is the replica's volume`).toBe(true);

  const [program, ...entryArgs] = dockerfile.entrypoint;
  expect(program).toBe('node'); // the image's node; here the one running the tests
  let stderr = '';
  const child = spawn(process.execPath, [...entryArgs, ...args], {
    cwd,
    env: { ...process.env, ...dockerfile.env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  started.push(child);
  child.stderr!.on('data', (b: Buffer) => (stderr = (stderr + b.toString()).slice(-4000)));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );

  const health = await waitFor(
    async () => {
      if (child.exitCode !== null) throw new Error(`serve exited ${child.exitCode} before SERVING:\n${stderr}`);
      const r = await runHealthcheck(cwd, address);
      return r.code === 0 && r;
    },
    { timeoutMs: 45_000, intervalMs: 200, what: `HEALTHCHECK of ${address} to pass` },
  );
  expect(health.out).toBe('SERVING');

  child.kill('SIGTERM');
  const bound = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), 15_000).unref());
  const end = await Promise.race([exited, bound]);
  expect(end, `serve did not exit within 15 s of SIGTERM:\n${stderr}`).not.toBe('timeout');
  expect(end, stderr).toEqual({ code: 0, signal: null });
  // and the healthcheck fails once the replica is gone
  expect((await runHealthcheck(cwd, address)).code).not.toBe(0);
}

describe('the image start command, outside a container', () => {
  it('ENTRYPOINT + the compose replica command serves until SIGTERM (repository root as WORKDIR)', async () => {
    await startServeStop(repo);
  });

  it('the files the Dockerfile COPYs are all the replica needs', async () => {
    // The WORKDIR as the final stage's COPYs fill it (image-layout.ts): dist/src from this checkout's build
    // (npm ci builds it; a stale one still serves, packaged.test.ts runs the build stage itself), the
    // production node_modules only, no sources: bin/meshlb.js runs the compiled CLI, as in the image.
    const app = assembleImage(dockerfile, repo, repo);
    expect(existsSync(join(app, 'src'))).toBe(false);
    expect(existsSync(join(app, 'node_modules', 'tsx'))).toBe(false);
    await startServeStop(app);
  });
});
