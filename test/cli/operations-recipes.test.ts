// docs/operations.md's commands work as written, against real processes: the grpcurl
// cheat-sheet, the admin API, meshlb status and traces against the example mesh (one
// `meshlb serve` per cell, agent-sim beside a node), and the Raft section's calls
// against ha.yaml's root. Each command runs with bash from the repository root, as a
// reader would, changing only the topologies' fixed ports (moved to free ranges, see
// ./operations.ts) and the placeholders (<id>, <token>, ...), filled with real ids
// made for them. grpcurl is not packaged for Debian: where it is not on PATH the
// commands get ./fixtures/grpcurl, which reads everything from the server's reflection
// and maps JSON as grpcurl does (a field the request does not have is refused).
// test/cli/operations-sims.test.ts runs the simulation and deploy commands.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MeshClient } from '../../src/client/index.js';
import { TaskState } from '../../src/gen/meshlb/v1/task.js';
import { loadTopology } from '../../src/topology/parse.js';
import { MESHLB_ENTRY } from '../helpers/entry.js';
import { waitFor } from '../helpers/wait.js';
import { allCommands, commandsUnder, moveTopologies, planOf, withFiveRootReplicas, type Moved } from './operations.js';
import { bash, killGroup, noStack, repo, spawnBash, type Ran } from './recipes.js';

const dir = mkdtempSync(join(tmpdir(), 'meshlb-ops-'));
const bin = join(dir, 'bin');
mkdirSync(bin);
const realGrpcurl = spawnSync('bash', ['-c', 'command -v grpcurl']).status === 0;
if (!realGrpcurl) symlinkSync(join(repo, 'test/cli/fixtures/grpcurl/grpcurl'), join(bin, 'grpcurl'));
const env: NodeJS.ProcessEnv = { ...process.env, PATH: `${bin}:${process.env.PATH ?? ''}` };

/** Run one documented command (already moved) with the block's variables set. */
async function run(cmd: string, vars: Record<string, string> = {}, timeoutMs = 30_000): Promise<Ran> {
  const r = await bash(cmd, timeoutMs, { ...env, ...vars });
  expect(r.code, `${cmd}\nstdout:\n${r.stdout.slice(-2000)}\nstderr:\n${r.stderr.slice(-2000)}`).toBe(0);
  noStack(r);
  return r;
}

/** A `serve` for each cell of a topology file, stopped by `stop`. */
function serveAll(topologyFile: string): { procs: ChildProcess[]; stop: () => Promise<void> } {
  const topo = loadTopology(topologyFile);
  const procs: ChildProcess[] = [];
  for (const c of topo.cells)
    for (const r of c.replicas)
      procs.push(
        spawn(
          process.execPath,
          [MESHLB_ENTRY, 'serve', '--topology', topologyFile, '--cell', c.path, '--replica', String(r.replica)],
          { cwd: repo, env: { ...env, MESHLB_LOG_LEVEL: 'warn' }, stdio: 'ignore' },
        ),
      );
  return { procs, stop: () => stopAll(procs) };
}

async function stopAll(procs: ChildProcess[]): Promise<void> {
  await Promise.all(
    procs.map(
      (p) =>
        new Promise<void>((resolve) => {
          if (p.exitCode !== null || p.signalCode !== null) return resolve();
          p.once('exit', () => resolve());
          p.kill('SIGKILL');
        }),
    ),
  );
}

afterAll(() => rmSync(dir, { recursive: true, force: true }));

it('every command of docs/operations.md is run by a recipe test or has a stated reason not to be', () => {
  const cmds = allCommands();
  expect(cmds.length).toBeGreaterThan(60);
  expect(cmds.filter((c) => !planOf(c))).toEqual([]);
});

describe('the grpcurl cheat-sheet, the admin API and meshlb status, against the example mesh as processes', () => {
  let m: Moved;
  let mesh: { procs: ChildProcess[]; stop: () => Promise<void> };
  const agents: ChildProcess[] = [];
  let client: MeshClient;
  const vars: Record<string, string> = {};

  beforeAll(async () => {
    m = await moveTopologies(join(dir, 'mesh'), '  unplaceableTimeoutMs: 1000\n');
    mesh = serveAll(m.example);
    const agentSim = (address: string, args: string[]): void => {
      agents.push(
        spawn(process.execPath, [MESHLB_ENTRY, 'agent-sim', '--address', m.addr(address), ...args], {
          cwd: repo,
          env: { ...env, MESHLB_LOG_LEVEL: 'warn' },
          stdio: 'ignore',
        }),
      );
    };
    // The docs' node 127.0.0.1:7103 (/eu/west-1a/n1) with sim-0..sim-3 on it, a failing
    // agent for <failed-id>, and an agent on every other node.
    agentSim('127.0.0.1:7103', ['--agents', '4', '--slots', '2']);
    agentSim('127.0.0.1:7110', ['--agents', '1', '--kinds', 'flaky', '--failure-rate', '1', '--id-prefix', 'flaky']);
    for (const port of [7104, 7106, 7107, 7110, 7111, 7113, 7114])
      agentSim(`127.0.0.1:${port}`, ['--agents', '1', '--id-prefix', `n${port}`]);
    client = new MeshClient({ address: m.addr('127.0.0.1:7100') });
    await waitFor(
      async () => {
        try {
          const { taskId } = await client.submit({ kind: 'default', tenant: 'acme' });
          return (await client.waitForResult(taskId, { timeoutMs: 5_000 })).state === TaskState.TASK_STATE_COMPLETED;
        } catch {
          return false;
        }
      },
      { timeoutMs: 90_000, intervalMs: 500, what: 'a task submitted at the root to complete' },
    );
  }, 120_000);

  afterAll(async () => {
    client?.close();
    await stopAll(agents);
    await mesh?.stop();
  });

  const completed = async (spec: Parameters<MeshClient['submit']>[0], until: TaskState): Promise<string> => {
    const { taskId } = await client.submit(spec);
    await waitFor(async () => (await client.get(taskId)).state === until, {
      timeoutMs: 20_000,
      intervalMs: 50,
      what: `a ${spec.kind} task ${TaskState[until]}`,
    });
    return taskId;
  };

  /** Run a block's commands in order, filling placeholders; `check` sees each answer. */
  async function runBlock(heading: string, check: (cmd: string, r: Ran) => void): Promise<number> {
    let ran = 0;
    let lastList = '';
    for (const doc of commandsUnder(heading)) {
      const assign = /^([A-Z]+)=(\S+)$/.exec(doc);
      if (assign) {
        vars[assign[1]!] = m.addr(assign[2]!);
        continue;
      }
      let cmd = m.cmd(doc);
      if (cmd.includes('<token>')) {
        const token = (JSON.parse(lastList) as { nextPageToken?: string }).nextPageToken;
        expect(token, 'the ListTasks before has a next page').toBeTruthy();
        cmd = cmd.replace('<token>', token!);
      }
      if (cmd.includes('<id>'))
        cmd = cmd.replace('<id>', vars.ID ?? (await completed({ kind: 'default' }, TaskState.TASK_STATE_COMPLETED)));
      if (cmd.includes('<queued-id>'))
        cmd = cmd.replace('<queued-id>', (await client.submit({ kind: 'later' })).taskId);
      if (cmd.includes('<failed-id>'))
        cmd = cmd.replace(
          '<failed-id>',
          await completed({ kind: 'flaky', maxAttempts: 1 }, TaskState.TASK_STATE_FAILED),
        );
      if (cmd.includes('<dead-id>'))
        cmd = cmd.replace('<dead-id>', await completed({ kind: 'gpu' }, TaskState.TASK_STATE_DEAD_LETTERED));
      const r = await run(cmd, vars);
      if (cmd.includes('/ListTasks')) lastList = r.stdout;
      check(doc, r);
      ran++;
    }
    return ran;
  }

  it('runs the grpcurl cheat-sheet', { timeout: 120_000 }, async () => {
    for (let i = 0; i < 5; i++) await completed({ kind: 'default', tenant: 'acme' }, TaskState.TASK_STATE_COMPLETED);
    const ran = await runBlock('grpcurl cheat-sheet', (cmd, r) => {
      expect(r.stdout.trim(), cmd).not.toBe('');
      if (/ list$/.test(cmd)) expect(r.stdout).toContain('meshlb.v1.TaskService\n');
      if (cmd.includes('Health/Check') || cmd.includes('meshlb health')) expect(r.stdout).toContain('SERVING');
      if (cmd.includes('TaskService/Submit ') || cmd.endsWith('TaskService/Submit')) {
        const res = JSON.parse(r.stdout) as { taskId: string; state: string };
        expect(res.state).toBe('TASK_STATE_QUEUED'); // as the doc's comment says
        vars.ID = res.taskId;
      }
      if (cmd.includes('TaskService/Watch')) expect(r.stdout).toContain('TASK_STATE_COMPLETED');
    });
    expect(ran).toBeGreaterThanOrEqual(15);
  });

  it('runs the admin API block', { timeout: 180_000 }, async () => {
    const ran = await runBlock('The admin API', (cmd, r) => {
      expect(r.stdout.trim(), cmd).not.toBe('');
      if (cmd.includes('GetMeshStatus')) expect(JSON.parse(r.stdout).cells).toHaveLength(15);
      if (cmd.includes('ReplayDeadLetters') && cmd.includes('taskIds'))
        expect(JSON.parse(r.stdout).replayed).toHaveLength(1);
    });
    expect(ran).toBeGreaterThanOrEqual(20);
  });

  it('runs meshlb status, once and with --interval 5 --json', { timeout: 60_000 }, async () => {
    const topo = loadTopology(m.example);
    const [once, json] = commandsUnder('meshlb status');
    const r = await run(m.cmd(once!));
    for (const c of topo.cells) expect(r.stdout).toContain(c.path);
    const j = await run(m.cmd(json!));
    const status = JSON.parse(j.stdout) as { cells: Array<{ rates?: unknown }> };
    expect(status.cells).toHaveLength(15);
    expect(status.cells.every((c) => c.rates !== undefined)).toBe(true);
  });
});

describe('traces: serve and dev send spans to an OTLP/HTTP collector', () => {
  let m: Moved;
  let collector: Server;
  let posts = 0;

  beforeAll(async () => {
    m = await moveTopologies(join(dir, 'traces'));
    collector = createServer((req, res) => {
      if (req.method === 'POST' && req.url === '/v1/traces') posts++;
      req.resume();
      req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'));
    });
    await new Promise<void>((resolve) => collector.listen(m.otlpPort, '127.0.0.1', resolve));
  });
  afterAll(() => new Promise<void>((resolve) => collector.close(() => resolve())));

  it('runs the Traces block', { timeout: 120_000 }, async () => {
    const [serve, dev, template] = commandsUnder('Traces');
    expect(planOf(template!)?.skip).toBeDefined();
    // serve runs until stopped: it prints where traces go, serves, and flushes on SIGTERM.
    const child = spawnBash(m.cmd(serve!), env);
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      await waitFor(() => stderr.includes(`traces to http://127.0.0.1:${m.otlpPort}`), {
        timeoutMs: 30_000,
        what: `"traces to" on serve's stderr (${stderr})`,
      });
      const client = new MeshClient({ address: m.addr('127.0.0.1:7100') });
      await waitFor(
        () =>
          client
            .submit({ kind: 'default', traceParent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' })
            .then(
              () => true,
              () => false,
            ),
        { timeoutMs: 20_000, intervalMs: 200, what: 'a submit at the traced root' },
      );
      client.close();
    } finally {
      killGroup(child, 'SIGTERM');
    }
    await exited;
    noStack({ code: 0, stdout: '', stderr });
    // Spans still buffered go out as the process exits (within its 3 s bound).
    await waitFor(() => posts > 0, { timeoutMs: 10_000, what: 'spans of serve at the collector' });
    const before = posts;
    const r = await run(m.cmd(dev!), {}, 110_000);
    expect(r.stdout).toMatch(/100 completed/);
    expect(posts, 'spans of dev reached the collector').toBeGreaterThan(before);
  });
});

describe('cells on Raft: ha.yaml root replicas, leadership hand-over, adding and removing a replica', () => {
  let m: Moved;
  let replicas: ChildProcess | undefined;
  let joiner: ChildProcess | undefined;

  beforeAll(async () => {
    m = await moveTopologies(join(dir, 'ha'));
  });
  afterAll(() => {
    if (replicas) killGroup(replicas);
    joiner?.kill('SIGKILL');
  });

  it('runs the block', { timeout: 180_000 }, async () => {
    const [start, ...calls] = commandsUnder('Cells on Raft: roles, leadership, replicas');
    expect(start).toMatch(/^for r in 1 2 3; do/);
    replicas = spawnBash(`${m.cmd(start!)}\nwait`, env);
    const [ask, setL, ...rest] = calls;
    expect(setL).toMatch(/^L=/);
    const vars: Record<string, string> = {};
    /** The loop over the three replicas, until exactly one says it leads; its address. */
    const leader = async (): Promise<string> =>
      waitFor(
        async () => {
          const r = await bash(m.cmd(ask!), 30_000, env);
          if (r.code !== 0) return undefined;
          const answers = r.stdout
            .split(/\n(?=\{)/)
            .map((t) => JSON.parse(t) as { leader: boolean; replicaId: string });
          const leaders = answers.filter((a) => a.leader);
          if (answers.length !== 3 || leaders.length !== 1) return undefined;
          return m.addr(`127.0.0.1:${7200 + Number(leaders[0]!.replicaId.split('#')[1]) - 1}`);
        },
        { timeoutMs: 60_000, intervalMs: 300, what: 'one leader among the three root replicas' },
      );
    vars.L = await leader(); // "the leader's address, from the loop above"
    for (const doc of rest) {
      if (doc.includes('/AddReplica')) {
        // "add a replica started with `meshlb serve ... --join` (docs/topology.md)"
        const file = withFiveRootReplicas(m, join(dir, 'ha', 'ha5.yaml'));
        joiner = spawn(
          process.execPath,
          [MESHLB_ENTRY, 'serve', '--topology', file, '--cell', '/', '--replica', '4', '--join', '--log-level', 'warn'],
          { cwd: repo, env, stdio: 'ignore' },
        );
      }
      const r = await run(m.cmd(doc), vars, 60_000);
      const res = JSON.parse(r.stdout) as { leaderAddress?: string; members?: Array<{ voter?: boolean }> };
      if (doc.includes('/TransferLeader')) {
        expect(res.leaderAddress, doc).toBeTruthy();
        vars.L = res.leaderAddress!; // "set L to the new leaderAddress before the next call"
      }
      if (doc.includes('/AddReplica')) expect(res.members).toHaveLength(4);
      if (doc.includes('/RemoveReplica')) expect(res.members).toHaveLength(3);
    }
    expect(await leader()).toBe(vars.L);
  });
});
