// `npm run bench:two-speed`: issue 11's two-speed case over real processes, as
// a new user would try it. Per run: `meshlb serve` for a node cell on free
// ports (its own data dir: a one-voter Raft group), two `meshlb agent-sim`
// processes (10 agents x 4 slots at 20 ms, 10 x 4 at 160 ms, service times
// +-50%), then 4,000 tasks submitted at the node with the client SDK, paced at
// 800/s, each waited for (waitForResult); then everything is stopped. Every
// node policy runs in a fresh set of processes (cold: no latency data), each
// policy once per round, rounds interleaved so the machine's other load falls
// on all alike. The default's p99 (client view: submit call to final record)
// must stay under 60 ms and below every baseline's in the same round.
//
// Writes bench/results/two-speed-<time>.json and .txt (the table), prints the
// table. Flags: --tasks=4000 --rate=800 --rounds=2 --policies=a,b,...
// --quick (1,000 tasks, one round), --durability=none (no Raft log writes for the
// tasks), --undeclared (the agents declare no run time: agent-sim --expected-run-ms 0;
// by default agent-sim declares its mean service time), --data-root=DIR (where the node's data dir goes), --max-load=L
// --max-wait=S (on a shared machine, start each run once the 1-minute load
// average is at most L, waiting at most S seconds), --no-write, --phases (where the slow tasks waited, phase by phase), --warmup=N (first
// an unmeasured run of N tasks, default --tasks, so that the client in this process
// is warm in every measured run and not only after the first; --no-warmup: none). The table says
// when the run's CPU share was raised (Linux autogroup nice: see docs/policies.md). Bounded: every
// wait has a deadline.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { credentials } from '@grpc/grpc-js';
import { checkHealth } from '../src/cli/health-check.js';
import { Supervisor } from '../src/cli/supervisor.js';
import { MeshClient } from '../src/client/index.js';
import { AdminServiceClient, type AgentInfo } from '../src/gen/meshlb/v1/admin.js';
import { TaskState } from '../src/gen/meshlb/v1/task.js';
import { freePort } from './lib/ports.js';
import { phaseReport } from './two-speed-phases.js';
import { procCpuUs } from './lib/procfs.js';
import { writeBeside, writeResults } from './lib/results.js';
import {
  NODE_CELL,
  runFigures,
  runOrder,
  TWO_SPEED_DEFAULTS,
  twoSpeedTable,
  twoSpeedTopology,
  twoSpeedVerdict,
  dueBy,
  type RunFigures,
  type RunSample,
  type TwoSpeedOptions,
} from './two-speed-lib.js';

const arg = (name: string): string | undefined =>
  process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const QUICK = process.argv.includes('--quick');
const OPTS: TwoSpeedOptions = {
  ...TWO_SPEED_DEFAULTS,
  tasks: Number(arg('tasks') ?? (QUICK ? 1000 : TWO_SPEED_DEFAULTS.tasks)),
  rate: Number(arg('rate') ?? TWO_SPEED_DEFAULTS.rate),
  rounds: Number(arg('rounds') ?? (QUICK ? 1 : TWO_SPEED_DEFAULTS.rounds)),
  policies: arg('policies')?.split(',') ?? TWO_SPEED_DEFAULTS.policies,
};
/** The tasks' durability: logged (the default, as a user's tasks) or none (no Raft log writes). */
const DURABILITY = arg('durability') === 'none' ? 'none' : 'logged';
/**
 * On a shared machine: before each run, wait (at most --max-wait seconds, default 300)
 * until the 1-minute load average is at most this. Default: do not wait.
 */
const MAX_LOAD = Number(arg('max-load') ?? Infinity);
const MAX_WAIT_MS = Number(arg('max-wait') ?? 300) * 1000;
/**
 * How the client submits: `shared` (the SDK's defaults: a submit alone on the shared
 * SubmitStream, submits that coalesce in one SubmitBatch), `stream` (every submit on the
 * stream: submitCoalesce false), `batch` (sharedSubmit false: Submit, or SubmitBatch when
 * submits coalesce). Several (--submit=shared,batch): each policy runs once per way per
 * round, interleaved, named `policy [way]`.
 */
const SUBMIT_MODES = (arg('submit') ?? 'shared').split(',');
const SUBMIT_OPTIONS: Record<string, { sharedSubmit?: boolean; submitCoalesce?: boolean }> = {
  shared: {},
  stream: { submitCoalesce: false },
  batch: { sharedSubmit: false },
};
/**
 * agent-sim's agents declare their mean service time to the node (its default), so the cold node places by
 * it instead of trying each agent a task at a time (docs/policies.md); --undeclared: they declare nothing.
 */
const UNDECLARED = process.argv.includes('--undeclared');
/**
 * Tasks of the unmeasured warm-up run that warms this process's client code before the measured runs (its own
 * node and agent-sims, stopped after); --no-warmup or --warmup=0: none.
 */
const WARMUP_TASKS = process.argv.includes('--no-warmup') ? 0 : Number(arg('warmup') ?? OPTS.tasks);
/** Where the node's data dir goes (default the OS temp dir). */
const DATA_ROOT = arg('data-root') ?? os.tmpdir();
const DEFAULT_POLICY = 'node-score';
/** Per run, where the slow tasks' time went, phase by phase (bench/two-speed-phases.ts; the first second needs --tasks=1000). */
const PHASES = process.argv.includes('--phases');
const BIN = fileURLToPath(new URL('../bin/meshlb.js', import.meta.url));
const flagsOf = (name: string): string[] => (process.env[name] ?? '').split(' ').filter(Boolean);
const nodeFlags = (): string[] => flagsOf('BENCH_NODE_FLAGS');
const log = (s: string): void => void process.stderr.write(`[bench:two-speed] ${s}\n`);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
/** This session's autogroup nice on Linux (0: not raised, or no autogroups). */
function autogroupNice(): number {
  try {
    return Number(/nice (-?\d+)/.exec(readFileSync('/proc/self/autogroup', 'utf8'))?.[1] ?? 0);
  } catch {
    return 0;
  }
}
const round2 = (x: number): number => Math.round(x * 100) / 100;
const load1 = (): number => Math.round(os.loadavg()[0]! * 100) / 100;

async function until<T>(what: string, ms: number, probe: () => Promise<T | undefined>): Promise<T> {
  const by = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > by) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(50);
  }
}

function listAgents(address: string): Promise<AgentInfo[]> {
  const c = new AdminServiceClient(address, credentials.createInsecure());
  return new Promise<AgentInfo[]>((resolve) =>
    c.listAgents({}, (err, res) => {
      c.close();
      resolve(err ? [] : (res?.agents ?? []));
    }),
  ).finally(() => c.close());
}

/** One run: fresh processes, the paced load, every process stopped. */
async function run(label: string, round: number, seed: number, tasks = OPTS.tasks): Promise<RunFigures> {
  const [policy, way] = label.split(' [') as [string, string | undefined];
  const submitOptions = SUBMIT_OPTIONS[way?.replace(']', '') ?? SUBMIT_MODES[0]!] ?? {};
  const dir = mkdtempSync(join(DATA_ROOT, 'meshlb-two-speed-'));
  const sup = new Supervisor({
    onUnexpectedExit: (name, code) => log(`${name} exited ${code} during the run`),
  });
  try {
    const ports = await Promise.all([0, 1, 2, 3].map(() => freePort()));
    const addresses = ports.map((p) => `127.0.0.1:${p}`);
    const node = addresses[3]!;
    const topology = join(dir, 'topology.yaml');
    writeFileSync(topology, twoSpeedTopology(policy, addresses));
    const env = { ...process.env, MESHLB_LOG_LEVEL: process.env.MESHLB_LOG_LEVEL ?? 'error' };
    sup.start({
      name: 'serve',
      command: process.execPath,
      // BENCH_NODE_FLAGS: V8/node flags for the node's process only (e.g. --cpu-prof --cpu-prof-dir=DIR).
      args: [
        ...nodeFlags(),
        BIN,
        'serve',
        '--topology',
        topology,
        '--cell',
        NODE_CELL,
        '--data-dir',
        join(dir, 'data'),
      ],
      env,
    });
    await until('the node SERVING', 60_000, async () =>
      (await checkHealth(node, 'meshlb.v1.TaskService', 1000)) === 'SERVING' ? true : undefined,
    );
    const agents = OPTS.groups.reduce((n, g) => n + g.agents, 0);
    for (const [i, g] of OPTS.groups.entries()) {
      sup.start({
        name: `agent-sim ${g.prefix}`,
        command: process.execPath,
        // BENCH_AGENT_FLAGS: V8/node flags for the agent-sim processes (e.g. --cpu-prof --cpu-prof-dir=DIR).
        args: [
          ...flagsOf('BENCH_AGENT_FLAGS'),
          BIN,
          'agent-sim',
          '--address',
          node,
          '--agents',
          String(g.agents),
          '--slots',
          String(g.slots),
          '--kinds',
          'work',
          '--service-time-ms',
          String(g.serviceMs),
          '--service-jitter-ms',
          String(g.jitterMs),
          '--id-prefix',
          g.prefix,
          '--seed',
          String(seed * 10 + i),
          ...(UNDECLARED ? ['--expected-run-ms', '0'] : []),
        ],
        env,
      });
    }
    await until(`${agents} agents connected`, 60_000, async () =>
      (await listAgents(node)).length >= agents ? true : undefined,
    );
    const loadBefore = load1();
    // CPU of each process over the load phase (cores: CPU time / wall time).
    const pids: Record<string, number> = {};
    for (const name of sup.names) pids[name] = sup.get(name).child.pid!;
    const cpu0 = Object.fromEntries(Object.entries(pids).map(([n, pid]) => [n, procCpuUs(pid)]));
    const clientCpu0 = process.cpuUsage();
    const client = new MeshClient({ address: node, deadlineMs: 30_000, ...submitOptions });
    const samples: Promise<RunSample>[] = [];
    const start = performance.now();
    const one = async (): Promise<RunSample> => {
      const t0 = performance.now();
      const atMs = t0 - start;
      try {
        const { taskId } = await client.submit({ kind: 'work', durability: DURABILITY });
        const rec = await client.waitForResult(taskId, { timeoutMs: 60_000 });
        const t1 = performance.now();
        const completed = rec.state === TaskState.TASK_STATE_COMPLETED;
        return {
          clientMs: t1 - t0,
          meshMs: rec.updatedUnixMs - rec.createdUnixMs,
          agent: rec.result?.agentId ?? '',
          runMs: (rec.result?.runMicros ?? NaN) / 1000,
          atMs,
          completed,
          // For --phases: the same clock as the node's record (unix ms).
          ...(PHASES
            ? {
                taskId,
                startUnixMs: performance.timeOrigin + t0,
                endUnixMs: performance.timeOrigin + t1,
                createdUnixMs: Number(rec.createdUnixMs),
                updatedUnixMs: Number(rec.updatedUnixMs),
              }
            : {}),
        };
      } catch (err) {
        log(`task failed: ${(err as Error).message}`);
        return { clientMs: performance.now() - t0, meshMs: NaN, agent: '', completed: false, atMs };
      }
    };
    let sent = 0;
    // The node's CPU at the end of the first second, and the tasks submitted by then: a cold node's cost.
    let firstSecond: { cpuUs: number; sent: number; all: Record<string, number> } | undefined;
    while (sent < tasks) {
      const elapsed = performance.now() - start;
      if (firstSecond === undefined && elapsed >= 1000) {
        const all = Object.fromEntries(Object.entries(pids).map(([n, pid]) => [n, procCpuUs(pid)]));
        firstSecond = { cpuUs: all['serve']!, sent, all };
      }
      const due = dueBy(elapsed, OPTS.rate, tasks);
      while (sent < due) {
        samples.push(one());
        sent++;
      }
      await sleep(1);
    }
    const submitRate = (tasks * 1000) / Math.max(1, performance.now() - start);
    const all = await Promise.all(samples);
    const loadAfter = load1();
    const wallUs = (performance.now() - start) * 1000;
    const cores: Record<string, number> = {};
    for (const [n, pid] of Object.entries(pids)) cores[n] = round2((procCpuUs(pid) - cpu0[n]!) / wallUs);
    const cc = process.cpuUsage(clientCpu0);
    cores['client (this process)'] = round2((cc.user + cc.system) / wallUs);
    // CPU per task (µs): comparable across runs even when the machine's load starves a process.
    const perTask = Object.fromEntries(Object.entries(cores).map(([n, c]) => [n, Math.round((c * wallUs) / tasks)]));
    log(`cores used over the load phase: ${JSON.stringify(cores)}; CPU µs per task: ${JSON.stringify(perTask)}`);
    const nodeCpuUs =
      firstSecond && firstSecond.sent > 0 && firstSecond.sent < tasks
        ? {
            firstSecond: Math.round((firstSecond.cpuUs - cpu0['serve']!) / firstSecond.sent),
            after: Math.round((procCpuUs(pids['serve']!) - firstSecond.cpuUs) / (tasks - firstSecond.sent)),
          }
        : undefined;
    if (firstSecond && firstSecond.sent > 0 && firstSecond.sent < tasks) {
      // Every process's cold cost, not only the node's: the agent-sims start cold in every run too.
      const fs = firstSecond;
      const each = Object.entries(pids).map(([n, pid]) => {
        const first = Math.round((fs.all[n]! - cpu0[n]!) / fs.sent);
        return `${n} ${first} / ${Math.round((procCpuUs(pid) - fs.all[n]!) / (tasks - fs.sent))}`;
      });
      log(`CPU µs per task, first second / after: ${each.join(', ')}`);
    }
    client.close();
    if (PHASES) log(`${label} round ${round}, phases:\n${await phaseReport(node, all)}`);
    // The node's own measure of each agent (dispatch to result), by group.
    const ewma: Record<string, number> = {};
    const seen = await listAgents(node);
    for (const g of OPTS.groups) {
      const mine = seen.filter((a) => a.agentId.startsWith(`${g.prefix}-`));
      ewma[g.prefix] = Math.round((10 * mine.reduce((t, a) => t + a.latencyEwmaMs, 0)) / Math.max(1, mine.length)) / 10;
    }
    log(`node-measured latency EWMA by group: ${JSON.stringify(ewma)}`);
    const f = runFigures(label, round, all, OPTS.groups, {
      submitRate,
      loadBefore,
      loadAfter,
      cores,
      ewma,
      ...(nodeCpuUs ? { nodeCpuUs } : {}),
    });
    log(
      `${label} round ${round}: p50 ${f.clientP50.toFixed(1)} ms, p99 ${f.clientP99.toFixed(1)} ms ` +
        `(home ${f.meshP99.toFixed(0)} ms; after the first second ${f.clientP99After1s?.toFixed(1)} ms), ${f.completed}/${f.tasks} completed, ` +
        `slow agents ran ${f.byGroup['slow'] ?? 0}; slowest 1%: ${JSON.stringify(f.tail)}; ` +
        `node CPU µs per task in the first second ${nodeCpuUs?.firstSecond ?? '-'}, after ${nodeCpuUs?.after ?? '-'}; ` +
        `load ${loadBefore} -> ${loadAfter}`,
    );
    return f;
  } finally {
    await sup.stopAll(5000);
    rmSync(dir, { recursive: true, force: true });
  }
}

const runs: RunFigures[] = [];
const labels =
  SUBMIT_MODES.length > 1 ? OPTS.policies.flatMap((p) => SUBMIT_MODES.map((m) => `${p} [${m}]`)) : OPTS.policies;
const DEFAULT_LABEL = SUBMIT_MODES.length > 1 ? `${DEFAULT_POLICY} [${SUBMIT_MODES[0]}]` : DEFAULT_POLICY;
const order = runOrder(labels, OPTS.rounds);
log(
  `${order.length} runs: ${OPTS.tasks} tasks at ${OPTS.rate}/s each; ${os.cpus().length} cpus, load average ${os
    .loadavg()
    .map((x) => x.toFixed(2))
    .join(' ')}`,
);
if (WARMUP_TASKS > 0) {
  // The client (this process) is the instrument, not the system measured: without this its code would be cold in
  // the first measured run only, always the default's (session 9, quiet: 0.34 cores against 0.21-0.26 in every
  // later run, p99 after the first second 83 against 43 ms). Every measured run still gets a fresh, cold node.
  const w = await run(DEFAULT_POLICY, 0, 0, WARMUP_TASKS);
  log(`warm-up run (not counted): ${WARMUP_TASKS} tasks, p99 ${w.clientP99.toFixed(1)} ms`);
}
for (const [i, { policy, round }] of order.entries()) {
  if (os.loadavg()[0]! > MAX_LOAD) {
    const by = Date.now() + MAX_WAIT_MS;
    while (os.loadavg()[0]! > MAX_LOAD && Date.now() < by) await sleep(2000);
    log(`load average ${load1()} (waited for at most ${MAX_LOAD})`);
  }
  runs.push(await run(policy, round, i + 1));
}
const table = twoSpeedTable(runs, DEFAULT_LABEL);
const verdict = twoSpeedVerdict(runs, DEFAULT_LABEL);
const text = [
  `two-speed over real processes: ${OPTS.tasks} tasks at ${OPTS.rate}/s into one node cell; ` +
    OPTS.groups.map((g) => `${g.agents} x ${g.slots} slots at ${g.serviceMs}+-${g.jitterMs} ms`).join(', '),
  `latency: client submit call to final record (home p99: the node's record, accepted to completed); rounds interleaved` +
    (autogroupNice() !== 0 ? `; CPU share raised (autogroup nice ${autogroupNice()})` : '') +
    (DURABILITY === 'none' ? '; durability none' : '') +
    (UNDECLARED ? '; agents declare no run time' : '') +
    `; submits: ${SUBMIT_MODES.join(' vs ')}`,
  '',
  table,
  '',
  `load average (1 min) per run: ${runs.map((r) => `${r.policy}#${r.round} ${r.loadBefore}-${r.loadAfter}`).join(', ')}`,
  verdict.met
    ? `target met: ${DEFAULT_LABEL} p99 under 60 ms in every round, no baseline better`
    : `target missed: ${verdict.why.join('; ')}`,
].join('\n');
console.log(text);
if (!process.argv.includes('--no-write')) {
  const file = writeResults('two-speed', {
    options: OPTS,
    durability: DURABILITY,
    submit: SUBMIT_MODES,
    declared: !UNDECLARED,
    autogroupNice: autogroupNice(),
    runs,
    verdict,
  });
  writeBeside(file, '.txt', `${text}\n`);
  log(`wrote ${file}`);
}
