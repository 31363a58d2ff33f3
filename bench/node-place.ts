// `npm run bench:node`: what a node cell spends per placed task and per
// heartbeat as its agents grow, in one process, deterministically: no
// sockets, no other processes, virtual time.
//
// A real node Cell (its ledger, queue, dispatcher, policy picker, placement
// trail, circuit breakers) with real AgentSessions on a VirtualScheduler; each
// simulated agent is a stream object that the session writes encoded messages
// to and that hands the node decoded ones (as grpc-js would), so the node's
// code runs as it does in `meshlb serve` minus the transport. Per size of
// --sizes (default 100, 1,000, 20,000 agents of 4 slots, heartbeating at the
// interval their node gives them): the CPU of the node's code per placed task
// (--tasks no-op tasks at --rate per virtual second, SubmitBatch-sized
// submissions each virtual millisecond, results after --service-ms), per load
// message with no tasks flowing, the GC time and picker rebuilds, and every
// ratio to the first size. CPU is this process's `process.cpuUsage`, each
// size in a fresh child process so one size's heap does not tax the next.
// "promoted KiB/task" is the old generation's growth over the task phase per
// task (what scavenges promoted, plus what V8 allocated there directly; shown
// while no mark-compact ran in the phase): bytes, so the machine's load does not
// move it. --prof=DIR writes a CPU profile of the task phase; --heap-prof=DIR
// the sampled allocations of the phase that no scavenge collected (promoted,
// whether still alive or not).
//
// --slow-agents=N gives the last N agents --slow-service-ms (default 8x --service-ms): the two-speed case, where
// node-score holds tasks back for the fast agents while those are full (e.g. --sizes=20 --slow-agents=10
// --service-ms=45 --slow-service-ms=200 --rate=800: fast turnover just above the rate, as on a cold node).
//
// `--base=REF` runs the same with the src/ of git REF (e.g. main), extracted
// into tmp/, in the same run: the before/after of a change to the node path.
// Writes bench/results/node-place-<timestamp>.json and .txt.
import { EventEmitter } from 'node:events';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import v8 from 'node:v8';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { constants, PerformanceObserver } from 'node:perf_hooks';
import { implsFor, runChild } from './lib/base-src.js';
import { writeResults } from './lib/results.js';
import { renderTable, type Cell as TableCell } from './lib/table.js';

const arg = (name: string): string | undefined =>
  process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const num = (name: string, def: number): number => Number(arg(name) ?? def);
const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.join(here, '..');

interface Figures {
  impl: string;
  agents: number;
  tasks: number;
  cpuUsPerTask: number;
  gcMsPerKTask: number;
  scavengesPerKTask: number;
  majorGcs: number;
  heapMiB: number;
  /** Old-generation growth per task over the phase (KiB; what scavenges promoted, while no mark-compact ran). */
  promotedKiBPerTask: number;
  /** CPU per virtual second with no tasks: heartbeats, sweeps, timers. */
  idleCpuMsPerS: number;
  loads: number;
  cpuUsPerLoad: number;
  rebuilds: number;
  heartbeatMs: number;
  done: number;
}

/** A figure with `digits` decimals, or '-' where a child (e.g. a --base one that predates it) gave none. */
const fixed = (v: number | null | undefined, digits: number): string =>
  typeof v === 'number' && Number.isFinite(v) ? v.toFixed(digits) : '-';

if (process.argv.includes('--child')) await child();
else await parent();

async function parent(): Promise<void> {
  const sizes = (arg('sizes') ?? '100,1000,20000').split(',').map(Number);
  const base = arg('base');
  const impls = implsFor(repo, base);
  const load0 = os.loadavg()[0]!;
  const rows: Figures[] = [];
  // Alternate the impls per size, so the machine's load falls on both alike.
  for (const n of sizes) {
    for (const [name, src] of impls) {
      const args = process.argv.slice(2).filter((a) => !a.startsWith('--sizes') && !a.startsWith('--base'));
      const f = runChild<Figures>(
        fileURLToPath(import.meta.url),
        [`--src=${src}`, `--impl=${name}`, `--agents=${n}`, ...args],
        `${name} at ${n} agents`,
      );
      rows.push(f);
      process.stdout.write(
        `${name}, ${n} agents: ${fixed(f.cpuUsPerTask, 1)} µs/task, ${fixed(f.promotedKiBPerTask, 2)} KiB/task promoted, ${fixed(f.cpuUsPerLoad, 1)} µs/load\n`,
      );
    }
  }
  const load1 = os.loadavg()[0]!;
  const header = [
    'impl',
    'agents',
    'heartbeat',
    'heap MiB',
    'CPU µs/task',
    'ratio',
    'GC pause ms/1k tasks',
    'scavenges/1k',
    'promoted KiB/task',
    'major GCs',
    'rebuilds',
    'idle CPU ms/s',
    'CPU µs/load',
    'ratio',
  ];
  const table: TableCell[][] = [];
  for (const [name] of impls) {
    const mine = rows.filter((r) => r.impl === name);
    const ref = mine[0]!;
    for (const r of mine) {
      table.push([
        name,
        r.agents,
        `${r.heartbeatMs} ms`,
        Math.round(r.heapMiB),
        r.cpuUsPerTask.toFixed(1),
        `${(r.cpuUsPerTask / ref.cpuUsPerTask).toFixed(2)}x`,
        r.gcMsPerKTask.toFixed(1),
        r.scavengesPerKTask.toFixed(1),
        fixed(r.promotedKiBPerTask, 2),
        r.majorGcs,
        r.rebuilds,
        r.idleCpuMsPerS.toFixed(1),
        r.cpuUsPerLoad.toFixed(1),
        `${(r.cpuUsPerLoad / ref.cpuUsPerLoad).toFixed(2)}x`,
      ]);
    }
  }
  const text = `${renderTable(header, table)}\nload average ${load0.toFixed(2)} → ${load1.toFixed(2)} (1 min), ${os.cpus().length} cpus\n`;
  process.stdout.write(`\n${text}`);
  const file = writeResults('node-place', { sizes, base: base ?? null, rows, loadavg: [load0, load1] });
  writeFileSync(file.replace(/\.json$/, '.txt'), text);
  process.stdout.write(`${file}\n`);
}

/** Bytes in the old generation's spaces (objects a scavenge promoted land there). */
function oldBytes(): number {
  let n = 0;
  for (const sp of v8.getHeapSpaceStatistics())
    if (sp.space_name === 'old_space' || sp.space_name === 'lo_space') n += sp.space_used_size;
  return n;
}

/** A stream as AgentSessions sees one: it writes encoded messages and is handed decoded ones. */
interface FakeCall {
  on(ev: string, fn: (m: unknown) => void): FakeCall;
  emit(ev: string, m?: unknown): boolean;
  write(m: unknown, cb?: () => void): boolean;
  end(): void;
  getPeer(): string;
}

async function child(): Promise<void> {
  const src = arg('src')!;
  const n = num('agents', 100);
  const rate = num('rate', 2000);
  const tasks = num('tasks', 20000);
  const serviceMs = num('service-ms', 5);
  const slots = num('slots', 4);
  // --slow-agents=N: the last N agents run --slow-service-ms (default 8x) instead: two speeds, as bench:two-speed
  // has them, so node-score holds tasks back for the fast agents whenever those are full (hold-back.ts).
  const slowAgents = num('slow-agents', 0);
  const slowMs = num('slow-service-ms', serviceMs * 8);
  const imp = async <T>(p: string): Promise<T> => (await import(pathToFileURL(path.join(src, p)).href)) as T;
  const { Cell } = await imp<typeof import('../src/mesh/cell.js')>('mesh/cell.ts');
  const { AgentSessions } = await imp<typeof import('../src/mesh/agent-sessions.js')>('mesh/agent-sessions.ts');
  const { VirtualScheduler } =
    await imp<typeof import('../src/mesh/virtual-scheduler.js')>('mesh/virtual-scheduler.ts');
  const { parseTopology } = await imp<typeof import('../src/topology/parse.js')>('topology/parse.ts');
  const { meshOf } = await imp<typeof import('../src/mesh/mesh-identity.js')>('mesh/mesh-identity.ts');
  const { ConnectRequest, ConnectResponse } =
    await imp<typeof import('../src/gen/meshlb/v1/agent.js')>('gen/meshlb/v1/agent.ts');
  const { TaskSpec, Durability, ResultStatus } =
    await imp<typeof import('../src/gen/meshlb/v1/task.js')>('gen/meshlb/v1/task.ts');
  const { default: pino } = await import('pino');

  const { chainTopologyYaml } = await imp<typeof import('../src/topology/chain.js')>('topology/chain.ts');
  const topo = parseTopology(chainTopologyYaml({ name: 'bench-node', nodes: ['n'], basePort: 7900 }));
  const spec = topo.byPath.get('/r/z/n')!;
  const vs = new VirtualScheduler(1_000_000);
  const cell = new Cell(topo, spec, 1, { scheduler: vs, seed: 1, log: pino({ level: 'silent' }) });
  const sessions = new AgentSessions(cell, meshOf(topo));
  cell.attach({ agents: sessions });
  cell.start();
  await settle();

  let heartbeatMs = 1000;
  const due = new Map<number, Map<number, { taskId: string; attempt: number }[]>>();
  const calls: FakeCall[] = [];
  let assigned = 0;
  for (let i = 0; i < n; i++) {
    const call = new EventEmitter() as unknown as FakeCall & EventEmitter;
    call.write = (m: unknown, cb?: () => void): boolean => {
      const bytes = ConnectResponse.encode(m as never).finish();
      const msg = (
        m as {
          msg?: {
            $case: string;
            value: { tasks?: { taskId: string; attempt: number }[]; intervalMs?: number; heartbeatIntervalMs?: number };
          };
        }
      ).msg;
      if (msg?.$case === 'assignments') {
        const at = vs.now() + (i >= n - slowAgents ? slowMs : serviceMs);
        let byAgent = due.get(at);
        if (!byAgent) due.set(at, (byAgent = new Map()));
        const list = byAgent.get(i) ?? [];
        for (const t of msg.value.tasks!) list.push({ taskId: t.taskId, attempt: t.attempt });
        byAgent.set(i, list);
        assigned += msg.value.tasks!.length;
      } else if (msg?.$case === 'welcome') heartbeatMs = Math.max(heartbeatMs, msg.value.heartbeatIntervalMs!);
      else if (msg?.$case === 'heartbeat') heartbeatMs = Math.max(heartbeatMs, msg.value.intervalMs!);
      cb?.();
      return bytes.length >= 0;
    };
    call.end = () => undefined;
    call.getPeer = () => `agent-${i}`;
    calls.push(call);
    sessions.connect(call as never);
    send(i, {
      $case: 'hello',
      value: {
        agentId: `a${i}`,
        kinds: ['work'],
        slots,
        labels: [],
        mesh: topo.name,
        meshId: meshOf(topo).id,
        nodeCell: spec.path,
        running: [],
      },
    });
    if (i % 1000 === 999) await settle();
  }
  await settle();

  function send(i: number, msg: unknown): void {
    const req = ConnectRequest.decode(ConnectRequest.encode(ConnectRequest.fromPartial({ msg } as never)).finish());
    calls[i]!.emit('data', req);
  }
  async function settle(): Promise<void> {
    for (let k = 0; k < 5; k++) {
      await new Promise<void>((r) => setImmediate(r));
      vs.runDeferred();
    }
  }
  /** Loads of the agents due in virtual millisecond t (agent i beats at t ≡ i mod interval). */
  let loads = 0;
  const beat = (t: number): void => {
    for (let i = t % heartbeatMs; i < n; i += heartbeatMs) {
      send(i, {
        $case: 'load',
        value: { cpu: ((i * 7919 + t) % 100) / 100, memory: 0.3, inFlight: 0, draining: false },
      });
      loads++;
    }
  };
  const answer = (t: number): number => {
    const byAgent = due.get(t);
    if (!byAgent) return 0;
    due.delete(t);
    let k = 0;
    for (const [i, list] of byAgent) {
      send(i, {
        $case: 'results',
        value: {
          results: list.map((x) => ({
            taskId: x.taskId,
            attempt: x.attempt,
            status: ResultStatus.RESULT_STATUS_OK,
            output: Buffer.alloc(0),
          })),
        },
      });
      k += list.length;
    }
    return k;
  };
  let done = 0;
  let submitted = 0;
  let carry = 0;
  const step = async (withTasks: boolean): Promise<void> => {
    const t = vs.now();
    beat(t);
    done += answer(t);
    if (withTasks && submitted < tasks) {
      carry += rate / 1000;
      const k = Math.min(Math.floor(carry), tasks - submitted);
      carry -= k;
      if (k > 0) {
        const specs = Array.from({ length: k }, () =>
          TaskSpec.fromPartial({ kind: 'work', durability: Durability.DURABILITY_NONE, timeoutMs: 30_000 }),
        );
        submitted += k;
        await cell.submit(specs);
      }
    }
    vs.runDeferred();
    vs.advance(1);
  };

  // Warm-up: V8 compiles the path; the heartbeat interval settles.
  for (let t = 0; t < 3000 && submitted < Math.min(tasks, 4000); t++) await step(true);
  while (done < submitted) await step(false);

  // Heartbeats alone, 2 virtual seconds of loads.
  const hb0 = process.cpuUsage();
  const loads0 = loads;
  for (let t = 0; t < 2000; t++) await step(false);
  const hb = process.cpuUsage(hb0);
  const hbLoads = loads - loads0;

  // Tasks flowing.
  let gcMs = 0;
  let scavenges = 0;
  let majors = 0;
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      gcMs += e.duration;
      const kind = (e as unknown as { detail?: { kind?: number } }).detail?.kind ?? 0;
      if (kind === constants.NODE_PERFORMANCE_GC_MINOR) scavenges++;
      else if (kind === constants.NODE_PERFORMANCE_GC_MAJOR) majors++;
    }
  });
  obs.observe({ entryTypes: ['gc'] });
  const rebuilds0 = cell.dispatcher.rebuilds;
  // --prof=DIR: a CPU profile of this phase alone (not the agents' connects), for where the time goes.
  const profDir = arg('prof');
  const inspector = profDir ? new (await import('node:inspector')).Session() : undefined;
  const post = (m: string, p?: object): Promise<unknown> =>
    new Promise((res, rej) => inspector!.post(m, p ?? {}, (e, r) => (e ? rej(e) : res(r))));
  // --heap-prof=DIR: sampled allocations of this phase still uncollected at its end (no GC forced): what
  // survived a scavenge, dead or alive in the old generation (a mark-compact would have dropped the dead).
  const heapDir = arg('heap-prof');
  const hinspector = heapDir ? new (await import('node:inspector')).Session() : undefined;
  const hpost = (m: string, p?: object): Promise<unknown> =>
    new Promise((res, rej) => hinspector!.post(m, p ?? {}, (e, r) => (e ? rej(e) : res(r))));
  if (hinspector) {
    hinspector.connect();
    await hpost('HeapProfiler.enable');
    await hpost('HeapProfiler.startSampling', { samplingInterval: 4096, includeObjectsCollectedByMajorGC: true });
  }
  if (inspector) {
    inspector.connect();
    await post('Profiler.enable');
    await post('Profiler.setSamplingInterval', { interval: 100 });
    await post('Profiler.start');
  }
  submitted = 0;
  done = 0;
  const old0 = oldBytes();
  const c0 = process.cpuUsage();
  while (submitted < tasks || done < submitted) await step(true);
  const c = process.cpuUsage(c0);
  const promoted = oldBytes() - old0;
  if (inspector) {
    const { profile } = (await post('Profiler.stop')) as { profile: unknown };
    mkdirSync(profDir!, { recursive: true });
    writeFileSync(path.join(profDir!, `node-place-${n}.cpuprofile`), JSON.stringify(profile));
  }
  if (hinspector) {
    const { profile } = (await hpost('HeapProfiler.getSamplingProfile')) as { profile: unknown };
    await hpost('HeapProfiler.stopSampling');
    mkdirSync(heapDir!, { recursive: true });
    writeFileSync(path.join(heapDir!, `node-place-${n}.heapprofile`), JSON.stringify(profile));
  }
  await new Promise<void>((r) => setTimeout(r, 50)); // GC entries arrive on a later turn
  obs.disconnect();
  const out: Figures = {
    impl: arg('impl') ?? src,
    agents: n,
    tasks,
    done,
    cpuUsPerTask: (c.user + c.system) / tasks,
    gcMsPerKTask: (gcMs * 1000) / tasks,
    scavengesPerKTask: (scavenges * 1000) / tasks,
    majorGcs: majors,
    heapMiB: process.memoryUsage().heapUsed / 2 ** 20,
    promotedKiBPerTask: majors === 0 ? promoted / 1024 / tasks : NaN,
    idleCpuMsPerS: (hb.user + hb.system) / 1000 / 2,
    loads: hbLoads,
    cpuUsPerLoad: (hb.user + hb.system) / Math.max(1, hbLoads),
    rebuilds: cell.dispatcher.rebuilds - rebuilds0,
    heartbeatMs,
  };
  if (assigned < tasks) throw new Error(`only ${assigned} assigned`);
  process.stdout.write(`${JSON.stringify(out)}\n`);
  process.exit(0);
}
