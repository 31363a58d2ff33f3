// The soak (issue 9, item 7): a topology as real processes — one `meshlb serve`
// per replica on free ports with its own --data-dir in a temporary root, two
// `meshlb agent-sim` processes per node cell — under steady load submitted
// through the client SDK, with agent churn: every churn period one agent-sim
// is killed (SIGKILL and SIGTERM in turn) and a fresh one started in its place.
// Every sample period it reads each replica's resident memory (VmRSS in
// /proc/<pid>/status) and open file descriptors (entries of /proc/<pid>/fd).
// After a warm-up it fits a line per replica and fails on a slope past the
// bounds; it also fails on a replica that exits, and on tasks the mesh does
// not finish. See ./cli.ts (`npm run soak`) and ./soak.test.ts (CI).
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { checkHealth } from '../../src/cli/health-check.js';
import { Supervisor } from '../../src/cli/supervisor.js';
import { MeshClient, TaskState } from '../../src/client/index.js';
import { parseTopology, topologyToDocument } from '../../src/topology/parse.js';
import { cellSlug } from '../../src/topology/paths.js';
import type { Topology } from '../../src/topology/types.js';
import { freePort } from '../helpers/process.js';
import type { SoakBounds } from './bounds.js';
import { fitSlope, formatSamples, type ProcessFigures, type Sample } from './figures.js';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface SoakOptions {
  readonly minutes: number;
  /** The topology's YAML (its addresses are replaced by free ports). */
  readonly topologyYaml: string;
  /** Tasks submitted per second (default 40). */
  readonly rate?: number;
  /** Agents in each agent-sim process (default 4, 4 slots each). */
  readonly agentsPerSim?: number;
  /** One agent-sim killed and replaced every this many seconds (default 10). */
  readonly churnEverySec?: number;
  /** Default 5. */
  readonly sampleEverySec?: number;
  /** Samples before this are not fitted (default a quarter of the run, at least 30 s). */
  readonly warmupSec?: number;
  readonly bounds: SoakBounds;
  readonly seed?: number;
  /** Where the JSON figures go (none when absent). */
  readonly out?: string;
  readonly progress?: (line: string) => void;
  /** Ends the run early (its processes stopped, the reason among the problems): a test's CPU budget. */
  readonly signal?: AbortSignal;
}

export interface SoakResult {
  readonly ok: boolean;
  readonly problems: string[];
  readonly topology: string;
  readonly minutes: number;
  readonly warmupSec: number;
  readonly bounds: SoakBounds;
  readonly tasks: {
    submitted: number;
    completed: number;
    failed: number;
    unfinished: number;
    refused: number;
    skipped: number;
    p50Ms: number;
    p99Ms: number;
  };
  readonly churn: { kills: number; terms: number; starts: number };
  readonly processes: ProcessFigures[];
  readonly table: string[];
}

const KIND = 'soak';

/** The topology with every replica on a free port of 127.0.0.1. */
async function onFreePorts(yaml: string): Promise<Topology> {
  const declared = parseTopology(yaml, '<soak topology>');
  const taken = new Set<number>();
  const ports = new Map<string, number>();
  for (const c of declared.cells) {
    for (const r of c.replicas) {
      let p = await freePort();
      while (taken.has(p)) p = await freePort();
      taken.add(p);
      ports.set(r.id, p);
    }
  }
  const doc = topologyToDocument(declared, (_c, r) => `127.0.0.1:${ports.get(r.id)!}`);
  return parseTopology(stringify(doc), '<soak topology on free ports>');
}

function readSample(pid: number, t: number): Sample | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = Number(/^VmRSS:\s+(\d+)\s+kB/m.exec(status)?.[1] ?? NaN);
    const fds = readdirSync(`/proc/${pid}/fd`).length;
    return { t, rssMb: Math.round((kb / 1024) * 10) / 10, fds };
  } catch {
    return undefined; // gone between the check and the read: the exit is reported on its own
  }
}

function quantile(sorted: readonly number[], q: number): number {
  if (!sorted.length) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

export async function soak(o: SoakOptions): Promise<SoakResult> {
  const say = o.progress ?? ((l: string) => process.stderr.write(`${l}\n`));
  const rate = o.rate ?? 40;
  const sampleMs = (o.sampleEverySec ?? 5) * 1000;
  const churnMs = (o.churnEverySec ?? 10) * 1000;
  const durationMs = o.minutes * 60_000;
  const warmupSec = o.warmupSec ?? Math.max(30, (o.minutes * 60) / 4);
  const problems: string[] = [];
  const topology = await onFreePorts(o.topologyYaml);
  const root = mkdtempSync(join(tmpdir(), 'meshlb-soak-'));
  const topologyFile = join(root, 'topology.yaml');
  writeFileSync(topologyFile, stringify(topologyToDocument(topology)));
  const bin = join(repo, 'bin', 'meshlb.js');
  const env = { ...process.env, MESHLB_LOG_LEVEL: 'warn' };
  const replicaNames = new Map<string, string>(); // process name -> cell#replica
  const sup = new Supervisor({
    onUnexpectedExit: (name, code) => {
      const last = [...sup.get(name).tail].reverse().find((l) => l.trim() !== '') ?? '';
      problems.push(`${name} exited unexpectedly with ${code}${last ? `: ${last.slice(0, 300)}` : ''}`);
    },
  });
  sup.installSignalHandlers(() => void sup.stopAll(2000));
  const samples = new Map<string, Sample[]>();
  const latencies: number[] = [];
  const tasks = { submitted: 0, completed: 0, failed: 0, unfinished: 0, refused: 0, skipped: 0 };
  const churn = { kills: 0, terms: 0, starts: 0 };
  let client: MeshClient | undefined;
  const timers: NodeJS.Timeout[] = [];
  /** A wait that ends the run when `o.signal` aborts. */
  const pause = (ms: number): Promise<void> =>
    new Promise((res, rej) => {
      const stop = (): void => {
        clearTimeout(t);
        rej(new Error(String(o.signal?.reason ?? 'aborted')));
      };
      const t = setTimeout(() => {
        o.signal?.removeEventListener('abort', stop);
        res();
      }, ms);
      if (o.signal?.aborted) stop();
      else o.signal?.addEventListener('abort', stop, { once: true });
    });
  try {
    // 1. every replica, then all SERVING
    for (const c of topology.cells) {
      for (const r of c.replicas) {
        const name = `${c.path}#${r.replica}`;
        replicaNames.set(name, name);
        const dataDir = join(root, `${cellSlug(c.path)}-${r.replica}`);
        sup.start({
          name,
          command: process.execPath,
          args: [bin, 'serve', '--topology', topologyFile, '--cell', c.path, '--replica', String(r.replica)].concat([
            '--data-dir',
            dataDir,
          ]),
          env,
        });
      }
    }
    const replicas = topology.cells.flatMap((c) => c.replicas);
    say(`soak: ${replicas.length} replicas of ${topology.name} starting (data in ${root})`);
    const readyBy = Date.now() + 120_000;
    for (const r of replicas) {
      while ((await checkHealth(r.address, '', 1000)) !== 'SERVING') {
        if (Date.now() > readyBy) throw new Error(`replica ${r.id} at ${r.address} not SERVING after 120 s`);
        if (problems.length) throw new Error(problems.join('; '));
        await pause(200);
      }
    }
    // 2. two agent-sims per node cell
    const nodes = topology.cells.filter((c) => c.tier === 'node');
    let generation = 0;
    const startSim = (cell: string, slot: number): string => {
      const name = `agents ${cell} ${slot} gen${generation++}`;
      const address = topology.byPath
        .get(cell)!
        .replicas.map((r) => r.address)
        .join(',');
      sup.start({
        name,
        command: process.execPath,
        args: [bin, 'agent-sim', '--address', address, '--agents', String(o.agentsPerSim ?? 4), '--slots', '4']
          .concat(['--kinds', KIND, '--service-time-ms', '20', '--service-jitter-ms', '10', '--mesh', topology.name])
          .concat([
            '--id-prefix',
            `soak-${cellSlug(cell)}-${generation}`,
            '--seed',
            String((o.seed ?? 1) + generation),
          ]),
        env,
      });
      churn.starts++;
      return name;
    };
    const sims = nodes.map((n) => [startSim(n.path, 0), startSim(n.path, 1)]);
    client = new MeshClient({
      address: topology.byPath.get('/')!.replicas.map((r) => r.address),
      deadlineMs: 10_000,
    });
    // 3. steady load, churn and samples for the duration
    const started = Date.now();
    const elapsed = () => (Date.now() - started) / 1000;
    const pending = new Set<string>();
    const mesh = client;
    const submitOne = async () => {
      if (pending.size >= rate * 60) {
        tasks.skipped++;
        return;
      }
      const t0 = Date.now();
      let id: string;
      try {
        id = (await mesh.submit({ kind: KIND, payload: 'x'.repeat(64) })).taskId;
      } catch {
        tasks.refused++;
        return;
      }
      tasks.submitted++;
      pending.add(id);
      try {
        const done = await mesh.waitForResult(id, { timeoutMs: durationMs + 120_000 });
        if (done.state === TaskState.TASK_STATE_COMPLETED) {
          tasks.completed++;
          latencies.push(Date.now() - t0);
        } else tasks.failed++;
      } catch {
        // still pending: counted as unfinished at the end
        return;
      }
      pending.delete(id);
    };
    // Paced by the clock, not by counting ticks: on a loaded machine an interval fires late or not at
    // all for a while, and a tick-counted pace then offers less than `rate` (the CI soak once offered
    // 3,799 tasks in 2 minutes at 40/s while the machine ran other work). What is due by now goes out.
    const tick = Math.max(20, Math.round(1000 / rate));
    let issued = 0;
    timers.push(
      setInterval(() => {
        for (const due = Math.floor(elapsed() * rate); issued < due; issued++) void submitOne();
      }, tick),
    );
    const sample = () => {
      const t = Math.round(elapsed());
      for (const name of replicaNames.keys()) {
        const p = sup.get(name);
        const s = p.running && p.child.pid ? readSample(p.child.pid, t) : undefined;
        if (!s) continue;
        const list = samples.get(name);
        if (list) list.push(s);
        else samples.set(name, [s]);
      }
    };
    sample();
    timers.push(setInterval(sample, sampleMs));
    let churning = false;
    let turn = 0;
    timers.push(
      setInterval(() => {
        if (churning || !nodes.length) return;
        churning = true;
        const i = turn % nodes.length;
        const slot = Math.floor(turn / nodes.length) % 2;
        const name = sims[i]![slot]!;
        const hard = turn % 2 === 0;
        turn++;
        void (hard ? sup.kill(name) : sup.stop(name, 5000))
          .then(() => {
            if (hard) churn.kills++;
            else churn.terms++;
            sims[i]![slot] = startSim(nodes[i]!.path, slot);
          })
          .finally(() => {
            churning = false;
          });
      }, churnMs),
    );
    const progressTimer = setInterval(() => {
      say(
        `soak: ${Math.round(elapsed())} s: submitted ${tasks.submitted}, completed ${tasks.completed}, pending ${pending.size}, churn ${churn.kills + churn.terms}`,
      );
    }, 15_000);
    timers.push(progressTimer);
    await pause(durationMs);
    sample();
    for (const t of timers.splice(0)) clearInterval(t);
    // 4. let what is in flight finish (bounded), then count what did not
    const drainBy = Date.now() + 60_000;
    while (pending.size && Date.now() < drainBy) await pause(200);
    tasks.unfinished = pending.size;
  } catch (err) {
    problems.push(`soak stopped: ${err instanceof Error ? err.message : String(err)}`);
  } finally {
    for (const t of timers) clearInterval(t);
    client?.close();
    await sup.stopAll(5000);
    rmSync(root, { recursive: true, force: true });
  }

  const processes: ProcessFigures[] = [...samples].map(([name, s]) => {
    const fitted = s.filter((x) => x.t >= warmupSec);
    return {
      name,
      samples: s,
      rssSlopeMbPerMin: fitSlope(fitted.map((x) => [x.t / 60, x.rssMb])),
      fdsSlopePerMin: fitSlope(fitted.map((x) => [x.t / 60, x.fds])),
    };
  });
  for (const p of processes) {
    const rssBound = p.name.startsWith('/#') ? o.bounds.homeRssMbPerMin : o.bounds.rssMbPerMin;
    if (p.rssSlopeMbPerMin > rssBound)
      problems.push(
        `${p.name}: RSS grew ${p.rssSlopeMbPerMin.toFixed(2)} MB/min after the warm-up (bound ${rssBound})`,
      );
    if (p.fdsSlopePerMin > o.bounds.fdsPerMin)
      problems.push(
        `${p.name}: open fds grew ${p.fdsSlopePerMin.toFixed(2)}/min after the warm-up (bound ${o.bounds.fdsPerMin})`,
      );
  }
  const lost = tasks.unfinished + tasks.failed;
  if (tasks.submitted === 0) problems.push('no task was accepted');
  if (lost > tasks.submitted * 0.01)
    problems.push(`${tasks.failed} failed and ${tasks.unfinished} unfinished of ${tasks.submitted} tasks (over 1%)`);
  latencies.sort((a, b) => a - b);
  const result: SoakResult = {
    ok: problems.length === 0,
    problems,
    topology: topology.name,
    minutes: o.minutes,
    warmupSec,
    bounds: o.bounds,
    tasks: { ...tasks, p50Ms: quantile(latencies, 0.5), p99Ms: quantile(latencies, 0.99) },
    churn,
    processes,
    table: formatSamples(processes, warmupSec),
  };
  if (o.out) writeFileSync(o.out, `${JSON.stringify(result, null, 1)}\n`);
  return result;
}
