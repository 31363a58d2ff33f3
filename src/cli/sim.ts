// `meshlb sim`: a topology as separate OS processes on loopback — one
// `meshlb serve` per replica, one `meshlb agent-sim` per node cell, one
// bounded `meshlb submit` workload against the root — with optional chaos:
//   kill-leaders: kill -9 the leader replica of a random cell, restart it later
//   kill-agents:  kill -9 a random agent-sim process, restart it later
//   partition:    SIGSTOP a random replica for a while, then SIGCONT. On one
//                 host that is the closest honest stand-in for a partition:
//                 its peers see a silent peer whose connections stay open.
// Every child is torn down at the end, on error, and on SIGINT/SIGTERM.
import { fileURLToPath } from 'node:url';
import { dirname, join, resolve } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { loadTopology } from '../topology/parse.js';
import { cellSlug } from '../topology/paths.js';
import type { CellSpec, Topology } from '../topology/types.js';
import { checkHealth } from './health-check.js';
import { Supervisor } from './supervisor.js';

export interface SimOptions {
  topologyFile: string;
  durationS: number;
  agentsPerNode: number;
  rate: number;
  /** Tasks to submit; default rate x duration. */
  tasks?: number;
  chaos: { killLeaders: boolean; killAgents: boolean; partition: boolean };
  seed: number;
  json: boolean;
  logLevel?: string;
  /** The meshlb entry to run (default: this checkout's bin/meshlb.js). */
  bin?: string;
  /** How long to wait for every replica to be SERVING (default 90 s: 30 processes starting on 2 cores take a while). */
  readyTimeoutMs?: number;
  /** How long a killed or paused process stays down (default 1.5 s). */
  downMs?: number;
  /** Where progress lines go (default stderr). */
  progress?: (line: string) => void;
  /** Forward child output to progress (default only when logLevel is set). */
  childOutput?: boolean;
}

export interface ChaosEvent {
  atMs: number;
  kind: 'kill-leader' | 'kill-agents' | 'partition';
  target: string;
  downMs: number;
}

export interface SimResult {
  topology: string;
  replicas: number;
  agent_processes: number;
  agents: number;
  chaos: ChaosEvent[];
  restarts: number;
  unexpected_exits: Array<{ name: string; code: number }>;
  submit_exit_code: number;
  /** Accepted tasks with no terminal state at the end (submit's `unfinished`). */
  lost: number;
  submit: Record<string, unknown> | null;
  duration_s: number;
  ok: boolean;
}

import { seededRandom } from '../util/rng.js';

export { seededRandom };

const replicaProc = (cell: CellSpec, n: number) => `replica ${cell.path}#${n}`;
const agentProc = (cell: CellSpec) => `agents ${cell.path}`;

function defaultBin(): string {
  return resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'meshlb.js');
}

/** The leader replica of a cell per AdminService.GetCell; the first replica if nobody says. */
async function findLeader(cell: CellSpec): Promise<number> {
  if (cell.replicas.length === 1) return 1;
  const { AdminServiceClient } = await import('../gen/meshlb/v1/admin.js');
  for (const r of cell.replicas) {
    const client = new AdminServiceClient(r.address, grpc.credentials.createInsecure());
    try {
      const leader = await new Promise<boolean>((res) =>
        client.getCell({ path: '' }, new grpc.Metadata(), { deadline: Date.now() + 1000 }, (err, v) =>
          res(!err && v.leader),
        ),
      );
      if (leader) return r.replica;
    } finally {
      client.close();
    }
  }
  return 1;
}

async function untilDeadline(
  what: string,
  timeoutMs: number,
  cond: () => Promise<boolean>,
  abort: AbortSignal,
  detail: () => string = () => '',
): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!abort.aborted) {
    if (await cond()) return;
    if (Date.now() > end)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${detail() ? ` (${detail()})` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('interrupted');
}

const sleep = (ms: number, abort: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      abort.removeEventListener('abort', done);
      resolve();
    }
    abort.addEventListener('abort', done);
  });

/** `meshlb sim`: run, print the result (JSON on stdout with --json), exit 0 if nothing was lost. */
export async function runSim(o: SimOptions): Promise<number> {
  const { result } = await simulate(o);
  const say = o.progress ?? ((line: string) => process.stderr.write(`${line}\n`));
  if (o.json) process.stdout.write(`${JSON.stringify(result)}\n`);
  else {
    say(
      `sim: ${result.ok ? 'ok' : 'FAILED'} in ${result.duration_s.toFixed(1)} s; submit exit ${result.submit_exit_code}; ` +
        `${result.chaos.length} chaos events, ${result.restarts} restarts` +
        (result.submit ? `; ${JSON.stringify(result.submit)}` : '; no submit result'),
    );
  }
  return result.ok ? 0 : 1;
}

/** Run the simulation; also returns every pid spawned (all gone when this resolves). */
export async function simulate(o: SimOptions): Promise<{ result: SimResult; pids: number[] }> {
  const t: Topology = loadTopology(o.topologyFile);
  const started = Date.now();
  const say = o.progress ?? ((line: string) => process.stderr.write(`${line}\n`));
  const bin = o.bin ?? defaultBin();
  const topologyFile = resolve(o.topologyFile);
  const rnd = seededRandom(o.seed);
  const abort = new AbortController();
  const unexpected: Array<{ name: string; code: number }> = [];
  const showChildren = o.childOutput ?? o.logLevel !== undefined;
  const sup = new Supervisor({
    onOutput: showChildren ? (name, line) => say(`[${name}] ${line}`) : undefined,
    onUnexpectedExit: (name, code) => {
      unexpected.push({ name, code });
      say(`sim: ${name} exited unexpectedly with ${code}`);
    },
  });
  const env = { ...process.env, ...(o.logLevel ? { MESHLB_LOG_LEVEL: o.logLevel } : {}) };
  const node = process.execPath;
  sup.installSignalHandlers((sig) => {
    say(`sim: ${sig}, stopping every process`);
    abort.abort();
  });
  const chaos: ChaosEvent[] = [];
  let restarts = 0;
  let submitCode = -1;
  let submit: Record<string, unknown> | null = null;
  const replicas = t.cells.flatMap((c) => c.replicas.map((r) => ({ cell: c, r })));
  const nodes = t.cells.filter((c) => c.tier === 'node');
  try {
    // 1. every replica, then wait for all of them to be SERVING
    for (const { cell, r } of replicas) {
      sup.start({
        name: replicaProc(cell, r.replica),
        command: node,
        args: [
          bin,
          'serve',
          '--topology',
          topologyFile,
          '--cell',
          cell.path,
          '--replica',
          String(r.replica),
          '--data-dir',
          join('.data', 'sim', t.name, `${cellSlug(cell.path)}-${r.replica}`),
        ],
        env,
      });
    }
    say(`sim: started ${replicas.length} replicas of ${t.name}; waiting for health`);
    let notServing: string[] = [];
    await untilDeadline(
      'every replica SERVING',
      o.readyTimeoutMs ?? 90_000,
      async () => {
        if (unexpected.length)
          throw new Error(`${unexpected[0]!.name} exited with ${unexpected[0]!.code} before the mesh was up`);
        const statuses = await Promise.all(replicas.map(({ r }) => checkHealth(r.address, '', 1000)));
        notServing = replicas.flatMap(({ r }, i) =>
          statuses[i] === 'SERVING' ? [] : [`${r.id} ${r.address}: ${statuses[i]}`],
        );
        return notServing.length === 0;
      },
      abort.signal,
      () => notServing.join('; '),
    );
    // 2. agents, one agent-sim per node cell
    const agentSpec = (cell: CellSpec) => ({
      name: agentProc(cell),
      command: node,
      args: [
        bin,
        'agent-sim',
        '--address',
        cell.replicas[0]!.address,
        '--agents',
        String(o.agentsPerNode),
        '--id-prefix',
        cellSlug(cell.path),
        '--seed',
        String(o.seed),
      ],
      env,
    });
    for (const cell of nodes) sup.start(agentSpec(cell));
    say(`sim: ${nodes.length} agent-sim processes x ${o.agentsPerNode} agents`);
    // 3. the workload, with chaos beside it
    const tasks = o.tasks ?? Math.max(1, Math.round(o.rate * o.durationS));
    const root = t.byPath.get('/') ?? t.cells[0]!;
    const submitProc = sup.start({
      name: 'submit',
      command: node,
      args: [
        bin,
        'submit',
        '--address',
        root.replicas[0]!.address,
        '--tasks',
        String(tasks),
        '--rate',
        String(o.rate),
        '--seed',
        String(o.seed),
        '--json',
      ],
      env,
      captureStdout: true,
      job: true,
    });
    say(`sim: submitting ${tasks} tasks at ${o.rate}/s`);
    const downMs = o.downMs ?? 1500;
    const kinds: ChaosEvent['kind'][] = [
      ...(o.chaos.killLeaders ? (['kill-leader'] as const) : []),
      ...(o.chaos.killAgents ? (['kill-agents'] as const) : []),
      ...(o.chaos.partition ? (['partition'] as const) : []),
    ];
    const chaosLoop = (async () => {
      if (!kinds.length) return;
      const every = Math.max(500, (o.durationS * 1000) / 4);
      let i = 0;
      while (!abort.signal.aborted && submitProc.running) {
        await sleep(every, abort.signal);
        if (abort.signal.aborted || !submitProc.running) return;
        const kind = kinds[i++ % kinds.length]!;
        let target: string;
        if (kind === 'kill-agents') {
          if (!nodes.length) continue;
          target = agentProc(nodes[Math.floor(rnd() * nodes.length)]!);
          await sup.kill(target);
        } else {
          // non-root cells for single-replica roots, so the workload's entry point stays up
          const pool = t.cells.filter((c) => c.replicas.length > 1 || c.path !== root.path);
          const cell = pool[Math.floor(rnd() * pool.length)]!;
          const n =
            kind === 'kill-leader'
              ? await findLeader(cell)
              : cell.replicas[Math.floor(rnd() * cell.replicas.length)]!.replica;
          target = replicaProc(cell, n);
          if (kind === 'kill-leader') await sup.kill(target);
          else sup.pause(target);
        }
        chaos.push({ atMs: Date.now() - started, kind, target, downMs });
        say(`sim: chaos ${kind} ${target} for ${downMs} ms`);
        await sleep(downMs, abort.signal);
        if (kind === 'partition') sup.resume(target);
        else if (!sup.get(target).running) {
          sup.restart(target);
          restarts++;
        }
      }
    })();
    const aborted = new Promise<number>((r) => abort.signal.addEventListener('abort', () => r(-2)));
    submitCode = await Promise.race([submitProc.exited, aborted]);
    abort.abort(); // ends the chaos loop
    await chaosLoop;
    const lastJson = submitProc.stdout
      .trim()
      .split('\n')
      .reverse()
      .find((l) => l.trim().startsWith('{'));
    if (lastJson) {
      try {
        submit = JSON.parse(lastJson) as Record<string, unknown>;
      } catch {
        submit = null;
      }
    }
  } catch (err) {
    say(`sim: ${(err as Error).message}`);
  } finally {
    await sup.stopAll();
  }
  // submit reports `unfinished` (accepted, no terminal state by the end of its wait); `lost` if it ever says so.
  const num = (k: string) => (typeof submit?.[k] === 'number' ? (submit[k] as number) : 0);
  const lost = Math.max(num('lost'), num('unfinished'));
  const result: SimResult = {
    topology: t.name,
    replicas: replicas.length,
    agent_processes: nodes.length,
    agents: nodes.length * o.agentsPerNode,
    chaos,
    restarts,
    unexpected_exits: unexpected,
    submit_exit_code: submitCode,
    lost,
    submit,
    duration_s: (Date.now() - started) / 1000,
    ok: submitCode === 0 && submit !== null && lost === 0,
  };
  return { result, pids: [...sup.everPids] };
}
