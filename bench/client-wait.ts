// `npm run bench:client`: what a client that submits and waits one task at a
// time costs, two ways, against the same mesh in the same run:
//
//   per-task  one Submit call and one Watch stream per task (the SDK with
//             submitCoalesce: false, sharedWatch: false: the path before
//             WatchMany)
//   shared    the SDK's defaults: submits on one shared SubmitStream,
//             every wait on one shared WatchMany stream
//   batch     (only with --modes=...) the defaults before the shared
//             SubmitStream: submits coalesced into Submit/SubmitBatch calls
//             (sharedSubmit: false), waits on the shared WatchMany stream
//   stream-only  (only with --modes=...) one Submit call per task, waits on the
//             shared stream: what each half is worth
//
// The mesh is the four-tier chain of `npm run bench` (/ → /r → /r/z → /r/z/n)
// with its four cells in one process (bench/mesh-proc.ts) and 100 no-op
// agents of 16 slots in another; the client is `meshlb submit`'s generator
// (submitLoad) in this process, paced at each offered rate for a fixed time,
// waiting for every result, with up to 2,000 tasks in flight. Per point:
// achieved rate, submit-to-result p50/p99, and CPU per task of the client and
// of the mesh process. The JSON goes to bench/results/client-wait-*.json.
//
// Options: --quick (2 s per point instead of 5), --rates=500,1000,4000,
// --modes=per-task,shared (also batch, stream-only).
import { submitLoad, type SubmitSummary } from '../src/cli/submit.js';
import { chainTopologyYaml } from '../src/topology/chain.js';
import { Proc } from './lib/proc.js';
import { writeResults } from './lib/results.js';
import { renderTable, type Cell } from './lib/table.js';

const QUICK = process.argv.includes('--quick');
const arg = (name: string): string | undefined =>
  process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const RATES = (arg('rates') ?? '500,1000,4000').split(',').map(Number);
const MODES = (arg('modes') ?? 'per-task,shared').split(',') as Mode[];
const SECONDS = QUICK ? 2 : 5;
const CONCURRENCY = 2000;
const AGENTS = 100;
const SLOTS = 16;
const log = (s: string): void => void process.stderr.write(`[bench:client] ${s}\n`);

type Mode = 'per-task' | 'shared' | 'stream-only' | 'batch' | 'stream';

const TOPOLOGY = chainTopologyYaml({
  name: 'bench-client',
  nodes: ['n'],
  basePort: 7650,
  defaults: { summaryIntervalMs: 150, heartbeatTimeoutMs: 3000 },
  regionLabels: { location: 'eu-west' },
});
const CHAIN = ['/', '/r', '/r/z', '/r/z/n'];

interface Point {
  mode: Mode;
  offered_per_s: number;
  achieved_per_s: number;
  completed: number;
  unfinished: number;
  p50_ms: number;
  p99_ms: number;
  max_ms: number;
  client_cpu_us_per_task: number;
  mesh_cpu_us_per_task: number;
}

async function main(): Promise<void> {
  const [mesh, ready] = await Proc.start('cells (one process)', ['cells', TOPOLOGY, ...CHAIN]);
  const root = ready.addresses['/']!;
  const [agents] = await Proc.start('agents', ['agents', ready.addresses['/r/z/n']!, String(AGENTS), String(SLOTS)]);
  const points: Point[] = [];
  try {
    const by = Date.now() + 30_000;
    for (;;) {
      const r = await mesh.report();
      if ((r.rootFree as number) >= AGENTS * SLOTS) break;
      if (Date.now() > by) throw new Error(`mesh not ready: root sees ${String(r.rootFree)} free slots`);
      await new Promise((res) => setTimeout(res, 50));
    }
    // Warm both paths up before measuring: V8 compiles the per-message code of the client and
    // of the mesh during the first seconds of traffic, which would be charged to the first point.
    for (const mode of MODES) await run(root, mode, 1000, QUICK ? 1 : 3);
    for (const rate of RATES) {
      for (const mode of MODES) {
        await mesh.ask('reset');
        const cpu0 = process.cpuUsage();
        const s = await run(root, mode, rate, SECONDS);
        const cpu = process.cpuUsage(cpu0);
        const m = await mesh.report();
        const done = s.completed + s.failed + s.cancelled + s.dead_lettered;
        const p: Point = {
          mode,
          offered_per_s: rate,
          achieved_per_s: s.throughput_per_s,
          completed: s.completed,
          unfinished: s.unfinished,
          p50_ms: s.latency_ms.p50,
          p99_ms: s.latency_ms.p99,
          max_ms: s.latency_ms.max,
          client_cpu_us_per_task: Math.round((cpu.user + cpu.system) / Math.max(1, done)),
          mesh_cpu_us_per_task: Math.round(m.cpuUs / Math.max(1, done)),
        };
        points.push(p);
        log(
          `${mode} @ ${rate}/s: ${p.achieved_per_s}/s, p50 ${p.p50_ms} ms, p99 ${p.p99_ms} ms, ` +
            `client ${p.client_cpu_us_per_task} µs/task, mesh ${p.mesh_cpu_us_per_task} µs/task`,
        );
      }
    }
  } finally {
    await agents.stop();
    await mesh.stop();
  }
  const header = [
    'mode',
    'offered/s',
    'achieved/s',
    'p50 ms',
    'p99 ms',
    'client µs/task',
    'mesh µs/task',
    'unfinished',
  ];
  const rows: Cell[][] = points.map((p) => [
    p.mode,
    p.offered_per_s,
    p.achieved_per_s,
    p.p50_ms,
    p.p99_ms,
    p.client_cpu_us_per_task,
    p.mesh_cpu_us_per_task,
    p.unfinished,
  ]);
  const table = renderTable(header, rows);
  process.stdout.write(`${table}\n`);
  const file = writeResults('client-wait', {
    seconds_per_point: SECONDS,
    concurrency: CONCURRENCY,
    mesh: { cells: CHAIN, process: 'one process for the four cells', agents: AGENTS, slots: SLOTS },
    points,
    table,
  });
  log(`results: ${file}`);
}

function run(address: string, mode: Mode, rate: number, seconds: number): Promise<SubmitSummary> {
  return submitLoad({
    address,
    tasks: rate * seconds,
    rate,
    durationS: seconds,
    concurrency: CONCURRENCY,
    kind: 'bench',
    durability: 'logged',
    coalesce: mode === 'shared' || mode === 'batch',
    sharedSubmit: mode === 'shared' || mode === 'stream',
    sharedWatch: mode !== 'per-task',
    waitMs: 30_000,
    statsIntervalMs: 0,
    stderr: () => {},
  });
}

await main();
