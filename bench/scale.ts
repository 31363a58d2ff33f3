// `npm run bench:scale`: how a node replica and the mesh grow with the number
// of agents, in one bounded run.
//
//   (a) one node replica (its own process, alone: the home of the tasks sent to
//       it) with N agent streams from agent-sim processes (the agent SDK as
//       `meshlb agent-sim` runs it, at most --per-sim agents each, started in
//       parallel, each ramping its agents 1,000 at a time), for each N of --sizes
//       (default 100, 1,000, 5,000, 20,000; the first size is the reference every
//       ratio is taken against). Per size: the node's RSS once all are
//       connected, heartbeat CPU (each process's CPU with the agents idle, in
//       cores), then tasks at --rate per second in SubmitBatch of --batch for
//       --load-seconds: tasks/s (first submit to last result), submit-to-result
//       p50/p99 as the node's ledger records it, the node's peak RSS, and how
//       long each process waited for a CPU (the machine's other load).
//   (b) the example mesh (deploy/topologies/example.yaml: 15 cells, 8 nodes), a
//       process per cell, with --mesh-agents agents in all spread over the 8
//       nodes (default 8,000; the issue's figure is 100,000: docs/performance.md, Scale): the cells' idle CPU
//       before any agent connects and with all of them, the agent-sims' idle
//       CPU, the node replicas' RSS, then tasks at --mesh-rate (default 500) per
//       second submitted at the root.
//
// Agents heartbeat at the interval their node gives them (the Welcome, and a
// HeartbeatChange when it stretches it: docs/agent-protocol.md).
//
// Bounded: every wait has a deadline; the run stops by itself (4-12 minutes
// with the defaults on 2 shared cores). Writes bench/results/scale-<timestamp>.json
// and .txt (the tables). Flags: --sizes=100,1000,5000,20000 --per-sim=5000
// --rate=2000 --batch=50 --load-seconds=8 --idle-seconds=4 --mesh-agents=8000
// (0: skip (b)) --mesh-rate=500 --only=node|mesh|storm (storm: bench/scale-storm.ts, its flags there) --quick (sizes 100,1000,2000;
// 4,000 mesh agents; 4 s of load) --with-parent (in (a) the node links to a zone
// replica of its own, so it sends summaries as in a mesh; the zone's idle CPU too).
import { readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { credentials, Metadata, type ServiceError } from '@grpc/grpc-js';
import { TaskServiceClient, type TaskSpec } from '../src/gen/meshlb/v1/task.js';
import { parseTopology } from '../src/topology/parse.js';
import { chainTopology } from './lib/chain-mesh.js';
import { nowUs } from './lib/clock.js';
import type { LatencySummary } from './lib/histogram.js';
import { round, sleep, spec, waitCount } from './lib/phases.js';
import { Proc } from './lib/proc.js';
import { procPeakRssMiB, procRssMiB } from './lib/procfs.js';
import { writeResults } from './lib/results.js';
import { renderTable, type Cell } from './lib/table.js';
import { ratioRow, splitAgents } from './scale-table.js';

const QUICK = process.argv.includes('--quick');
const arg = (name: string): string | undefined =>
  process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const num = (name: string, def: number): number => Number(arg(name) ?? def);
const SIZES = (arg('sizes') ?? (QUICK ? '100,1000,2000' : '100,1000,5000,20000')).split(',').map(Number);
const PER_SIM = num('per-sim', 5000);
const RATE = num('rate', 2000);
/** The mesh phase's rate: its point is the heartbeat cost with many agents while tasks flow, not the mesh's peak. */
const MESH_RATE = num('mesh-rate', 500);
const BATCH = num('batch', 50);
const LOAD_S = num('load-seconds', QUICK ? 4 : 8);
const IDLE_S = num('idle-seconds', 4);
const MESH_AGENTS = num('mesh-agents', QUICK ? 4000 : 8000);
const ONLY = arg('only');
const SLOTS = 16;
const PROC = fileURLToPath(new URL('./scale-proc.ts', import.meta.url));
const EXAMPLE = fileURLToPath(new URL('../deploy/topologies/example.yaml', import.meta.url));
const NODE = '/r/z/n';
const ZONE = '/r/z';
const WITH_PARENT = process.argv.includes('--with-parent');
const round3 = (v: number): number => Math.round(v * 1000) / 1000;
const log = (s: string): void => void process.stderr.write(`[bench:scale] ${s}\n`);

interface Load {
  submitted: number;
  completed: number;
  refusedBatches: number;
  tasksPerSecond: number;
  submitToResult: LatencySummary;
}

/** SubmitBatch of `batch` tasks every batch/rate seconds for `seconds` to `address`; `home` counts the results. */
async function load(address: string, home: Proc, others: Proc[], seconds: number, rate = RATE): Promise<Load> {
  const client = new TaskServiceClient(address, credentials.createInsecure());
  await Promise.all([home, ...others].map((p) => p.ask('reset')));
  const batches = Math.round((rate * seconds) / BATCH);
  const every = (BATCH / rate) * 1e6;
  const start = nowUs();
  let sent = 0;
  let refused = 0;
  await new Promise<void>((resolve) => {
    const tick = (): void => {
      while (sent < batches && nowUs() - start >= sent * every) {
        const tasks: TaskSpec[] = [];
        for (let i = 0; i < BATCH; i++) tasks.push(spec());
        sent++;
        client.submitBatch({ tasks }, new Metadata(), (err: ServiceError | null) => {
          if (err) refused++;
        });
      }
      if (sent >= batches) resolve();
      else setTimeout(tick, Math.max(1, (start + sent * every - nowUs()) / 1000));
    };
    tick();
  });
  const n = (batches - refused) * BATCH;
  const r = await waitCount(home, n, 20_000);
  client.close();
  return {
    submitted: batches * BATCH,
    completed: r.count,
    refusedBatches: refused,
    tasksPerSecond: Math.round(r.count / (((r.lastUs || nowUs()) - start) / 1e6)),
    submitToResult: r.latency,
  };
}

/** CPU of each process while nothing but heartbeats and timers run, in cores (CPU seconds per second). */
async function idleCores(procs: Proc[], seconds: number): Promise<number[]> {
  await Promise.all(procs.map((p) => p.ask('reset')));
  await sleep(seconds * 1000);
  const reports = await Promise.all(procs.map((p) => p.report()));
  return reports.map((r) => round3(r.cpuUs / r.wallUs));
}

/** Their agents start connecting (each process holds them until told). */
function go(sims: Proc[]): void {
  for (const p of sims) p.child.send({ cmd: 'go' });
}

/** Start agent-sim processes for `n` agents against `address` (at most PER_SIM each); their agents wait for go(). */
async function startSims(address: string, n: number, prefix: string): Promise<Proc[]> {
  const started = await Promise.allSettled(
    splitAgents(n, PER_SIM).map((k, i) =>
      Proc.start(`agent-sim ${prefix}${i}`, ['agentsim', address, String(k), `${prefix}${i}`], PROC),
    ),
  );
  const sims = started.flatMap((r) => (r.status === 'fulfilled' ? [r.value[0]] : []));
  const failed = started.find((r) => r.status === 'rejected');
  if (failed) {
    for (const p of sims) await p.stop();
    throw (failed as PromiseRejectedResult).reason;
  }
  return sims;
}

/**
 * Wait until the node processes hold `n` agent streams in all (bounded); the seconds it took. Every 10 s
 * it logs where the rest stand: streams awaiting their hello or first load at the nodes, and at the
 * agents' side those welcomed, given up for want of a Welcome, and how their last streams ended.
 */
async function connected(
  nodes: Proc[],
  n: number,
  maxMs: number,
  sims: Proc[] = [],
): Promise<{ agents: number; seconds: number }> {
  const t0 = Date.now();
  let agents: number;
  let said = t0;
  for (;;) {
    const rs = await Promise.all(nodes.map((p) => p.report()));
    agents = rs.reduce((s, r) => s + ((r.agentsConnected as number) ?? 0), 0);
    if (agents >= n || Date.now() - t0 > maxMs) return { agents, seconds: round((Date.now() - t0) / 1000) };
    if (Date.now() - said >= 10_000) {
      said = Date.now();
      log(`${round((said - t0) / 1000)} s: ${progress(rs, await Promise.all(sims.map((p) => p.report())))}`);
    }
    await sleep(250);
  }
}

/** One line on a connect in progress, from the nodes' and the agent-sims' reports. */
function progress(nodes: Record<string, unknown>[], sims: Record<string, unknown>[]): string {
  const sum = (rs: Record<string, unknown>[], f: (r: Record<string, unknown>) => number): number =>
    rs.reduce((s, r) => s + (f(r) || 0), 0);
  const hs = (r: Record<string, unknown>) =>
    (r.handshakes as { pending: number; unheard: number } | undefined) ?? { pending: 0, unheard: 0 };
  const last: Record<string, number> = {};
  for (const r of sims)
    for (const [k, v] of Object.entries((r.lastStatus as Record<string, number>) ?? {})) last[k] = (last[k] ?? 0) + v;
  const top = Object.entries(last)
    .sort((a, b) => b[1] - a[1])
    .slice(0, 4);
  return (
    `nodes hold ${sum(nodes, (r) => r.agentsConnected as number)} (${sum(nodes, (r) => hs(r).pending)} awaiting a hello, ` +
    `${sum(nodes, (r) => hs(r).unheard)} a first load); agents welcomed ${sum(sims, (r) => r.connected as number)}, ` +
    `welcome timeouts ${sum(sims, (r) => r.welcomeTimeouts as number)}, last ends ${JSON.stringify(Object.fromEntries(top))}`
  );
}

interface NodeRun {
  agents: number;
  connected: number;
  connectSeconds: number;
  heartbeatIntervals: Record<string, number>;
  rssIdleMiB: number;
  rssPeakMiB: number;
  idleCoresNode: number;
  /** --with-parent: the zone replica's, with the node's summaries coming in. */
  idleCoresZone: number | undefined;
  idleCoresAgentSims: number;
  load: Load;
  loadCoresNode: number;
  /** The node's CPU over the load phase per completed task: the figure the machine's other load moves least. */
  nodeCpuUsPerTask: number;
  loadCoresAgentSims: number;
  /** Per process, the share of the load phase its main thread was runnable but waiting for a CPU (other load). */
  loadWaitingForCpu: { node: number; agentSims: number[] };
}

async function nodeRun(n: number): Promise<NodeRun> {
  log(`(a) one node replica, ${n} agents${WITH_PARENT ? ', under its zone replica' : ''}`);
  // --with-parent: the node links to a zone replica (its own process), so it sends summaries as in a mesh.
  const zone = WITH_PARENT ? await Proc.start(`zone ${ZONE}`, ['node', chainTopology(), ZONE], PROC) : undefined;
  const up = zone ? [zone[1].addresses[ZONE]!] : [];
  const [node, m] = await Proc.start(`node ${NODE}`, ['node', chainTopology(), NODE, ...up], PROC);
  const sims: Proc[] = [];
  try {
    const address = m.addresses[NODE]!;
    sims.push(...(await startSims(address, n, `a${n}-`)));
    go(sims);
    const c = await connected([node], n, 60_000 + n * 5, sims);
    log(`${c.agents}/${n} agents connected in ${c.seconds} s`);
    await sleep(1000); // every agent past its first load
    const cores = await idleCores([node, ...sims, ...(zone ? [zone[0]] : [])], IDLE_S);
    const zoneCores = zone ? cores.pop()! : undefined;
    const rep = await node.report();
    const rssIdle = procRssMiB(node.pid);
    log(
      `idle: node ${cores[0]} cores, agent-sims ${round(cores.slice(1).reduce((s, x) => s + x, 0))}${zone ? `, zone ${zoneCores}` : ''}; RSS ${round(rssIdle)} MiB`,
    );
    const l = await load(address, node, sims, LOAD_S);
    const after = await Promise.all([node, ...sims].map((p) => p.report()));
    const loadCores = round3(after[0]!.cpuUs / after[0]!.wallUs);
    const simCores = round3(after.slice(1).reduce((s, r) => s + r.cpuUs / r.wallUs, 0));
    const waiting = after.map((r) => round(r.runQueueWaitUs / r.wallUs));
    log(
      `load: ${l.tasksPerSecond} tasks/s (${l.completed}/${l.submitted}), p50 ${l.submitToResult.p50Ms} p99 ${l.submitToResult.p99Ms} ms; cores node ${loadCores}, agent-sims ${simCores}; waiting for CPU ${JSON.stringify(waiting)}`,
    );
    return {
      agents: n,
      connected: c.agents,
      connectSeconds: c.seconds,
      heartbeatIntervals: rep.heartbeatIntervals as Record<string, number>,
      rssIdleMiB: round(rssIdle),
      rssPeakMiB: round(procPeakRssMiB(node.pid)),
      idleCoresNode: cores[0]!,
      idleCoresZone: zoneCores,
      idleCoresAgentSims: round3(cores.slice(1).reduce((s, x) => s + x, 0)),
      load: l,
      loadCoresNode: loadCores,
      nodeCpuUsPerTask: round((after[0]!.cpuUs / Math.max(1, l.completed)) | 0),
      loadCoresAgentSims: simCores,
      loadWaitingForCpu: { node: waiting[0]!, agentSims: waiting.slice(1) },
    };
  } finally {
    for (const s of sims) await s.stop();
    await node.stop();
    await zone?.[0].stop();
  }
}

interface MeshRun {
  agents: number;
  connected: number;
  connectSeconds: number;
  idleCoresCellsNoAgents: number;
  idleCoresCells: number;
  idleCoresAgentSims: number;
  idleCoresByCell: Record<string, number>;
  nodeRssMiB: { max: number; mean: number };
  cellRssMiB: Record<string, number>;
  agentSimRssMiB: { max: number; sum: number };
  load: Load;
}

const depthOf = (path: string): number => (path === '/' ? 0 : path.split('/').length - 1);

/** Until the root's view of free slots stops growing (every summary in), bounded. */
async function settled(root: Proc, maxMs: number): Promise<void> {
  const by = Date.now() + maxMs;
  let last = -1;
  let same = 0;
  while (Date.now() < by && same < 4) {
    const free = (await root.report()).rootFree as number;
    same = free === last && free > 0 ? same + 1 : 0;
    last = free;
    await sleep(250);
  }
}

async function meshRun(total: number): Promise<MeshRun> {
  const yaml = readFileSync(EXAMPLE, 'utf8');
  const topo = parseTopology(yaml, EXAMPLE);
  const order = [...topo.cells].sort((a, b) => depthOf(a.path) - depthOf(b.path));
  log(`(b) the example mesh, ${order.length} cells a process each, ${total} agents`);
  const cells: Proc[] = [];
  const nodes: Proc[] = [];
  const sims: Proc[] = [];
  const addr = new Map<string, string>();
  try {
    // A tier at a time, its cells in parallel: each needs its parent's address.
    for (const depth of [...new Set(order.map((c) => depthOf(c.path)))]) {
      const tier = order.filter((c) => depthOf(c.path) === depth);
      const started = await Promise.allSettled(
        tier.map((c) => {
          const parent = c.parent ? addr.get(c.parent) : undefined;
          return Proc.start(`cell ${c.path}`, ['cells', yaml, parent ? `${c.path}=${parent}` : c.path]);
        }),
      );
      for (const [i, r] of started.entries()) {
        if (r.status === 'rejected') continue;
        const c = tier[i]!;
        addr.set(c.path, r.value[1].addresses[c.path]!);
        cells.push(r.value[0]);
        if (c.tier === 'node') nodes.push(r.value[0]);
      }
      const failed = started.find((r) => r.status === 'rejected');
      if (failed) throw (failed as PromiseRejectedResult).reason;
    }
    // The cells' own idle cost (summaries, link keepalives, sweeps) with no agent yet: what heartbeats add is above it.
    await sleep(1000);
    const bare = round3((await idleCores(cells, IDLE_S)).reduce((s, x) => s + x, 0));
    log(`idle with no agents: cells ${bare} cores`);
    const nodeCells = order.filter((c) => c.tier === 'node');
    const perNode = splitAgents(total, Math.ceil(total / nodeCells.length));
    // A node's agent-sims at a time, all of them before any agent connects: 24 processes compiling their
    // sources at once, or while the first ones' agents storm, took over Proc.start's 60 s (00:04 and 00:08
    // today, load 12-27).
    const t0 = Date.now();
    for (const [i, c] of nodeCells.entries())
      sims.push(...(await startSims(addr.get(c.path)!, perNode[i] ?? 0, `m${i}-`)));
    log(`${sims.length} agent-sim processes started in ${round((Date.now() - t0) / 1000)} s`);
    go(sims);
    const c = await connected(nodes, total, 90_000 + total * 2, sims);
    log(`${c.agents}/${total} agents connected in ${c.seconds} s`);
    const root = cells[0]!;
    await settled(root, 30_000);
    const cores = await idleCores([...cells, ...sims], IDLE_S);
    const cellCores = cores.slice(0, cells.length);
    const rss = nodes.map((p) => procRssMiB(p.pid));
    const cellRss = Object.fromEntries(cells.map((p) => [p.name, round(procRssMiB(p.pid))]));
    const idleCells = round3(cellCores.reduce((s, x) => s + x, 0));
    const idleSims = round3(cores.slice(cells.length).reduce((s, x) => s + x, 0));
    const simRss = sims.map((p) => procRssMiB(p.pid));
    log(`idle: cells ${idleCells} cores, agent-sims ${idleSims} cores; node RSS max ${round(Math.max(...rss))} MiB`);
    const l = await load(addr.get('/')!, root, [], LOAD_S, MESH_RATE);
    log(
      `load at the root: ${l.tasksPerSecond} tasks/s (${l.completed}/${l.submitted}), p99 ${l.submitToResult.p99Ms} ms`,
    );
    return {
      agents: total,
      connected: c.agents,
      connectSeconds: c.seconds,
      idleCoresCellsNoAgents: bare,
      idleCoresCells: idleCells,
      idleCoresAgentSims: idleSims,
      idleCoresByCell: Object.fromEntries(cells.map((p, i) => [p.name, cellCores[i]!])),
      nodeRssMiB: { max: round(Math.max(...rss)), mean: round(rss.reduce((s, x) => s + x, 0) / rss.length) },
      cellRssMiB: cellRss,
      agentSimRssMiB: { max: round(Math.max(...simRss)), sum: round(simRss.reduce((s, x) => s + x, 0)) },
      load: l,
    };
  } finally {
    for (const s of sims) await s.stop();
    for (const p of [...cells].reverse()) await p.stop();
  }
}

function nodeTable(runs: NodeRun[]): string {
  const ref = runs[0]!;
  const rows: Cell[][] = runs.map((r) => [
    r.agents.toLocaleString('en-US'),
    r.connected.toLocaleString('en-US'),
    Object.keys(r.heartbeatIntervals).join('/') || '-',
    r.rssIdleMiB,
    r.rssPeakMiB,
    r.idleCoresNode,
    r.idleCoresAgentSims,
    r.load.tasksPerSecond,
    r.load.submitToResult.p50Ms,
    r.load.submitToResult.p99Ms,
    r.nodeCpuUsPerTask,
    ...ratioRow(r, ref),
  ]);
  return renderTable(
    [
      'agents',
      'connected',
      'heartbeat ms',
      'RSS MiB',
      'peak RSS MiB',
      'idle cores node',
      'idle cores agent-sims',
      'tasks/s',
      'p50 ms',
      'p99 ms',
      'node CPU µs/task',
      'x RSS',
      'x idle node',
      'x tasks/s',
      'x p99',
      'x µs/task',
    ],
    rows,
  );
}

function meshTable(r: MeshRun): string {
  return renderTable(
    ['figure', 'value'],
    [
      ['agents (connected / asked)', `${r.connected} / ${r.agents}`],
      ['idle CPU, the 15 cell processes with no agents (cores)', r.idleCoresCellsNoAgents],
      ['idle CPU, the cell processes with the agents (cores)', r.idleCoresCells],
      ['idle CPU, the agent-sim processes (cores)', r.idleCoresAgentSims],
      [
        'heartbeat CPU in all: cells above their own idle + agent-sims',
        round3(r.idleCoresCells - r.idleCoresCellsNoAgents + r.idleCoresAgentSims),
      ],
      ['idle CPU in all with the agents (cores)', round3(r.idleCoresCells + r.idleCoresAgentSims)],
      ['agent-sim RSS MiB, max / sum', `${r.agentSimRssMiB.max} / ${r.agentSimRssMiB.sum}`],
      ['node replica RSS MiB, max / mean', `${r.nodeRssMiB.max} / ${r.nodeRssMiB.mean}`],
      [`tasks/s at the root (offered ${MESH_RATE}/s)`, r.load.tasksPerSecond],
      ['submit→result p50 / p99 ms', `${r.load.submitToResult.p50Ms} / ${r.load.submitToResult.p99Ms}`],
    ],
  );
}

async function main(): Promise<void> {
  const t0 = Date.now();
  const load0 = os.loadavg();
  log(`load average ${load0.map((x) => x.toFixed(2)).join(' ')} on ${os.cpus().length} cpus`);
  const runs: NodeRun[] = [];
  if (ONLY === undefined || ONLY === 'node') for (const n of SIZES) runs.push(await nodeRun(n));
  const mesh = (ONLY === undefined || ONLY === 'mesh') && MESH_AGENTS > 0 ? await meshRun(MESH_AGENTS) : undefined;
  // A reconnect storm with and without hello admission (bench/scale-storm.ts): only when asked (--only=storm).
  const storm = ONLY === 'storm' ? await (await import('./scale-storm.js')).stormRuns() : undefined;
  const tables = [
    storm ? `a reconnect storm against one node replica (bench/scale-storm.ts)\n${storm.table}` : '',
    runs.length ? `one node replica (x: ratio to the ${runs[0]!.agents}-agent run)\n${nodeTable(runs)}` : '',
    mesh ? `the example mesh, ${mesh.agents} agents\n${meshTable(mesh)}` : '',
  ]
    .filter(Boolean)
    .join('\n\n');
  const load1 = os.loadavg();
  const file = writeResults('scale', {
    quick: QUICK,
    seconds: round((Date.now() - t0) / 1000),
    loadAverage: { before: load0, after: load1 },
    settings: {
      sizes: SIZES,
      perSim: PER_SIM,
      rate: RATE,
      batch: BATCH,
      loadSeconds: LOAD_S,
      idleSeconds: IDLE_S,
      slots: SLOTS,
    },
    node: runs,
    mesh: mesh ?? null,
    storm: storm?.rounds ?? null,
    tables,
  });
  writeFileSync(file.replace(/\.json$/, '.txt'), `${tables}\n`);
  process.stdout.write(
    `\n${tables}\n\nload average before ${load0.map((x) => x.toFixed(2)).join(' ')}, after ${load1.map((x) => x.toFixed(2)).join(' ')}; ${round((Date.now() - t0) / 1000)} s\n${file}\n`,
  );
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bench:scale failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
