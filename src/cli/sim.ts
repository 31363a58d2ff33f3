// `meshlb sim`: a topology as separate OS processes — one `meshlb serve` per
// replica (each with its own --data-dir under a temporary root), one `meshlb
// agent-sim` per node cell, one bounded `meshlb submit` workload against the
// root's replicas — with seeded chaos beside the workload (sim/chaos.ts plans
// it, sim/inject.ts runs it, sim/observe.ts measures failovers through
// AdminService.GetCell, sim/report.ts sums it up).
//
// On loopback by default. With `netns`, every replica runs in its own network
// namespace with its own address (src/cli/netns.ts; the topology is rewritten
// to those addresses in a temporary file), agent-sims in their node's
// namespace, and partitions are real blackhole routes. This process and the
// workload stay in the root namespace, on a link no partition cuts.
//
// Every child is torn down at the end, on error, and on SIGINT/SIGTERM; then
// the namespaces and (unless keepData) the data root are removed.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { loadTopology, parseTopology } from '../topology/parse.js';
import { CliFailure } from './load.js';
import { cellSlug } from '../topology/paths.js';
import type { CellSpec, Tier, Topology } from '../topology/types.js';
import { packagePath } from '../util/package-root.js';
import { seededRandom } from '../util/rng.js';
import { checkHealth } from './health-check.js';
import { NetnsLab, probeNetns, type NetnsProbe } from './netns.js';
import { Supervisor } from './supervisor.js';
import { chaosSchedule, type ChaosKind } from './sim/chaos.js';
import { runChaos, type ChaosEvent, type ChaosOutcome } from './sim/inject.js';
import { memberOf, netnsMembers, netnsTopologyYaml } from './sim/netns-topology.js';
import { Observer } from './sim/observe.js';
import { accountTasks, failoverByTier, type AgentSimReport, type HomeCounters } from './sim/report.js';
import { formatSimResult, type SimResult } from './sim/result.js';

export { seededRandom };
export type { ChaosEvent, SimResult };

export interface SimOptions {
  topologyFile: string;
  durationS: number;
  agentsPerNode: number;
  rate: number;
  /** Tasks to submit; default rate x duration. */
  tasks?: number;
  chaos: { killLeaders: boolean; killAgents: boolean; partition: boolean; restart?: boolean; pause?: boolean };
  /** kill-leaders at this tier only (default: a random tier each time). */
  killTier?: Tier;
  /** Mean seconds between chaos events (default a quarter of the duration, 0.5 to 10 s). */
  chaosEveryS?: number;
  /** One network namespace per replica; partitions cut real links (Linux, root). */
  netns?: boolean;
  /** Keep the replicas' data root at the end (its path is in the result). */
  keepData?: boolean;
  seed: number;
  json: boolean;
  logLevel?: string;
  /** The meshlb entry to run (default: MESHLB_SIM_BIN, else this checkout's bin/meshlb.js). */
  bin?: string;
  /** How long to wait for every replica to be SERVING (default 90 s: 30 processes starting on 2 cores take a while). */
  readyTimeoutMs?: number;
  /** Base time a killed or paused process stays down (default 1.5 s; a partition holds about twice that). */
  downMs?: number;
  /** Where progress lines go (default stderr). */
  progress?: (line: string) => void;
  /** Where the summary goes without --json (default stdout). */
  output?: (line: string) => void;
  /** Forward child output to progress (default only when logLevel is set). */
  childOutput?: boolean;
  /** How --netns finds out whether it can run (tests replace it). */
  probeNetns?: () => NetnsProbe;
}

const replicaProc = (cell: string, n: number) => `replica ${cell}#${n}`;
const agentProc = (cell: string) => `agents ${cell}`;

/**
 * The package's bin/meshlb.js (found from the package root: a checkout, dist/ or an installed package), or
 * MESHLB_SIM_BIN: the test suite points it at the built
 * dist/src/cli/main.js when dist/ is as new as src/ (test/global-setup.ts), since each of a sim's
 * 10-40 processes spends about a second of CPU more starting through tsx's hooks.
 */
function defaultBin(): string {
  return process.env.MESHLB_SIM_BIN || packagePath('bin', 'meshlb.js');
}

function chaosKinds(c: SimOptions['chaos']): ChaosKind[] {
  return [
    ...(c.killLeaders ? (['kill-leader'] as const) : []),
    ...(c.killAgents ? (['kill-agents'] as const) : []),
    ...(c.partition ? (['partition'] as const) : []),
    ...(c.restart ? (['restart'] as const) : []),
    ...(c.pause ? (['pause'] as const) : []),
  ];
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

/** The last JSON object a process printed on stdout, if any. */
function lastJson(stdout: string): Record<string, unknown> | null {
  const line = stdout
    .trim()
    .split('\n')
    .reverse()
    .find((l) => l.trim().startsWith('{'));
  if (!line) return null;
  try {
    return JSON.parse(line) as Record<string, unknown>;
  } catch {
    return null;
  }
}

/** `meshlb sim`: run, print the result (JSON on stdout with --json); exit 0 if ok, 1 if not, 2 if --netns cannot run. */
export async function runSim(o: SimOptions): Promise<number> {
  const say = o.progress ?? ((line: string) => process.stderr.write(`${line}\n`));
  if (o.netns) {
    const p = (o.probeNetns ?? probeNetns)();
    if (!p.ok) {
      say(`meshlb sim: --netns cannot run here: ${p.reason} (run as root on Linux with iproute2, or drop --netns)`);
      return 2;
    }
  }
  const { result } = await simulate(o);
  const print = o.output ?? ((line: string) => process.stdout.write(`${line}\n`));
  if (o.json) print(JSON.stringify(result));
  else for (const line of formatSimResult(result)) print(line);
  return result.ok ? 0 : 1;
}

/** Run the simulation; also returns every pid spawned (all gone when this resolves). */
export async function simulate(o: SimOptions): Promise<{ result: SimResult; pids: number[] }> {
  const declared: Topology = loadTopology(o.topologyFile);
  // Its observer, agent-sims and submit job speak plaintext with no token (docs/security.md).
  if (declared.security?.tls || declared.security?.auth)
    throw new CliFailure(`${o.topologyFile} has security.tls or security.auth; meshlb sim runs plaintext meshes only`);
  const started = Date.now();
  const say = o.progress ?? ((line: string) => process.stderr.write(`${line}\n`));
  const bin = o.bin ?? defaultBin();
  const abort = new AbortController();
  const unexpected: Array<{ name: string; code: number; last: string }> = [];
  const showChildren = o.childOutput ?? o.logLevel !== undefined;
  const sup = new Supervisor({
    onOutput: showChildren ? (name, line) => say(`[${name}] ${line}`) : undefined,
    onUnexpectedExit: (name, code) => {
      // Its last words say why (e.g. a stack trace's first line), even when child output is not shown.
      const last = [...sup.get(name).tail].reverse().find((l) => l.trim() !== '') ?? '';
      unexpected.push({ name, code, last });
      say(`sim: ${name} exited unexpectedly with ${code}${last ? `: ${last}` : ''}`);
    },
  });
  const env = { ...process.env, ...(o.logLevel ? { MESHLB_LOG_LEVEL: o.logLevel } : {}) };
  const node = process.execPath;
  sup.installSignalHandlers((sig) => {
    say(`sim: ${sig}, stopping every process`);
    abort.abort();
  });
  const dataRoot = mkdtempSync(join(tmpdir(), `meshlb-sim-${declared.name}-`));
  const observer = new Observer();
  const members = netnsMembers(declared);
  const out: ChaosOutcome = { events: [], failovers: [], restarts: 0 };
  let lab: NetnsLab | undefined;
  let t = declared;
  let submitCode = -1;
  let submit: Record<string, unknown> | null = null;
  let home: HomeCounters | undefined;
  const agentSims: AgentSimReport[] = [];
  const replicas = declared.cells.flatMap((c) => c.replicas.map((r) => ({ cell: c, r })));
  const nodes = declared.cells.filter((c) => c.tier === 'node');
  try {
    // 0. with --netns: the lab and the topology at its addresses
    let topologyFile = resolve(o.topologyFile);
    if (o.netns) {
      lab = NetnsLab.create([...members.values()], { handleSignals: false });
      const yaml = netnsTopologyYaml(declared, (c, r) => lab!.member(memberOf(members, c.path, r.replica)).ip);
      topologyFile = join(dataRoot, 'topology.yaml');
      writeFileSync(topologyFile, yaml);
      t = parseTopology(yaml, topologyFile);
      say(`sim: network namespaces ${lab.id}-*, subnet ${lab.subnet}.0/24; topology for the run in ${topologyFile}`);
    }
    const inNs = (cell: string, replica: number, args: string[]) => {
      if (!lab) return { command: node, args };
      const x = lab.execPrefix(memberOf(members, cell, replica));
      return { command: x.command, args: [...x.args, node, ...args] };
    };
    // 1. every replica, then wait for all of them to be SERVING
    for (const { cell, r } of replicas) {
      const dataDir = join(dataRoot, `${cellSlug(cell.path)}-${r.replica}`);
      const args = [bin, 'serve', '--topology', topologyFile, '--cell', cell.path, '--replica', String(r.replica)];
      sup.start({
        name: replicaProc(cell.path, r.replica),
        ...inNs(cell.path, r.replica, [...args, '--data-dir', dataDir]),
        env,
      });
    }
    const runReplicas = t.cells.flatMap((c) => c.replicas);
    say(`sim: started ${replicas.length} replicas of ${t.name} (data in ${dataRoot}), listening at:`);
    const width = Math.max(...runReplicas.map((r) => r.id.length));
    for (const r of runReplicas) say(`  ${r.id.padEnd(width)}  ${r.address}`);
    say('sim: waiting for every replica to be SERVING');
    let notServing: string[] = [];
    await untilDeadline(
      'every replica SERVING',
      o.readyTimeoutMs ?? 90_000,
      async () => {
        if (unexpected.length)
          throw new Error(`${unexpected[0]!.name} exited with ${unexpected[0]!.code} before the mesh was up`);
        const statuses = await Promise.all(runReplicas.map((r) => checkHealth(r.address, '', 1000)));
        notServing = runReplicas.flatMap((r, i) =>
          statuses[i] === 'SERVING' ? [] : [`${r.id} ${r.address}: ${statuses[i]}`],
        );
        return notServing.length === 0;
      },
      abort.signal,
      () => notServing.join('; '),
    );
    // 2. agents: one agent-sim per node cell, in the node's namespace; --json for its final counts
    const addresses = (c: CellSpec) => t.byPath.get(c.path)!.replicas.map((r) => r.address);
    for (const cell of nodes) {
      const args = [bin, 'agent-sim', '--address', addresses(cell).join(','), '--agents', String(o.agentsPerNode)];
      sup.start({
        name: agentProc(cell.path),
        ...inNs(cell.path, 1, [...args, '--id-prefix', cellSlug(cell.path), '--seed', String(o.seed), '--json']),
        env,
        captureStdout: true,
      });
    }
    say(`sim: ${nodes.length} agent-sim processes x ${o.agentsPerNode} agents`);
    // 3. the workload (from this namespace, to every root replica), with chaos beside it
    const tasks = o.tasks ?? Math.max(1, Math.round(o.rate * o.durationS));
    const root = t.byPath.get('/') ?? t.cells[0]!;
    const submitArgs = ['--address', addresses(root).join(','), '--tasks', String(tasks), '--rate', String(o.rate)];
    const submitProc = sup.start({
      name: 'submit',
      command: node,
      args: [bin, 'submit', ...submitArgs, '--seed', String(o.seed), '--json'],
      env,
      captureStdout: true,
      job: true,
    });
    const workloadAt = Date.now();
    say(`sim: submitting ${tasks} tasks at ${o.rate}/s (seed ${o.seed})`);
    const stopChaos = new AbortController();
    abort.signal.addEventListener('abort', () => stopChaos.abort());
    const durationMs = o.durationS * 1000;
    const schedule = chaosSchedule({
      seed: o.seed,
      kinds: chaosKinds(o.chaos),
      cells: t.cells.map((c) => ({ path: c.path, tier: c.tier, replicas: c.replicas.length })),
      entry: root.path,
      killTier: o.killTier,
      everyMs: o.chaosEveryS ? o.chaosEveryS * 1000 : Math.min(10_000, Math.max(500, durationMs / 4)),
      downMs: o.downMs ?? 1500,
      // A real cut is held until both ends must have seen it; a SIGSTOP stand-in keeps the plain hold.
      linkTimeoutMs: lab ? t.defaults.linkTimeoutMs : undefined,
    });
    const ctx = {
      sup,
      observer,
      topology: t,
      lab,
      member: (cell: string, replica: number) => memberOf(members, cell, replica),
      replicaProc,
      agentProc,
      say,
      startedAt: started,
      workloadAt,
    };
    const chaosLoop = runChaos(ctx, schedule, stopChaos.signal, out);
    const aborted = new Promise<number>((r) => abort.signal.addEventListener('abort', () => r(-2)));
    submitCode = await Promise.race([submitProc.exited, aborted]);
    stopChaos.abort();
    await chaosLoop;
    submit = lastJson(submitProc.stdout);
    // 4. what the home recorded, then the agents' own counts (they print them when asked to stop)
    if (!abort.signal.aborted) home = await observer.homeCounters(root);
    await Promise.all(
      nodes.map(async (cell) => {
        const name = agentProc(cell.path);
        const p = sup.get(name);
        await sup.stop(name, 8000);
        const final = lastJson(p.stdout);
        const started = typeof final?.started === 'number' ? final.started : undefined;
        const over = typeof final?.refused_over_slots === 'number' ? final.refused_over_slots : undefined;
        agentSims.push({
          name,
          starts: p.starts,
          ...(started === undefined ? {} : { started }),
          ...(over === undefined ? {} : { refused_over_slots: over }),
        });
      }),
    );
  } catch (err) {
    say(`sim: ${(err as Error).message}`);
  } finally {
    await sup.stopAll();
    observer.close();
    await lab?.close();
    if (!o.keepData) rmSync(dataRoot, { recursive: true, force: true });
  }
  agentSims.sort((a, b) => a.name.localeCompare(b.name));
  const account = accountTasks(submit, agentSims, home);
  const problems: string[] = [];
  if (submitCode !== 0) problems.push(`submit exited with ${submitCode}`);
  if (!submit) problems.push('no submit result');
  if (account.lost > 0) problems.push(`${account.lost} acknowledged tasks lost`);
  const overSlots = agentSims.reduce((n, a) => n + (a.refused_over_slots ?? 0), 0);
  if (overSlots > 0) problems.push(`${overSlots} assignments past an agent's slots (refused by the agents)`);
  if (account.recorded_twice !== 0)
    problems.push(
      account.recorded_twice === 'n/a'
        ? `recorded-twice unknown: ${account.why_na.recorded_twice}`
        : `${account.recorded_twice} outcomes recorded twice`,
    );
  for (const u of unexpected)
    problems.push(`${u.name} exited unexpectedly with ${u.code}${u.last ? `: ${u.last}` : ''}`);
  const result: SimResult = {
    topology: t.name,
    seed: o.seed,
    partition_mode: lab ? 'netns' : 'sigstop',
    netns: lab?.id ?? null,
    replicas: replicas.length,
    agent_processes: nodes.length,
    agents: nodes.length * o.agentsPerNode,
    chaos: out.events,
    restarts: out.restarts,
    failover: failoverByTier(out.failovers, observer.dispatchedReported),
    ...account,
    unexpected_exits: unexpected,
    submit_exit_code: submitCode,
    submit,
    agent_sims: agentSims,
    home: home ?? null,
    data_dir: dataRoot,
    data_kept: o.keepData === true,
    duration_s: (Date.now() - started) / 1000,
    ok: problems.length === 0,
    problems,
  };
  return { result, pids: [...sup.everPids] };
}
