// `npm run bench:submit-path`: what one submit costs the cell and the client,
// by the way the client SDK sends it, with nothing else running: one node
// cell as a real `meshlb serve` (as bench:two-speed starts it, no agents: the
// tasks wait queued), and this process submitting paced single submits, each
// awaited on its own (`await client.submit(...)`, as user code does), logged.
// The ways, alternated A B C A B C ... against the same process so the
// machine's other load falls on all alike:
//   shared  the SDK's defaults: a submit alone on the shared SubmitStream,
//           submits that coalesce in one SubmitBatch
//   stream  every submit on the shared SubmitStream (submitCoalesce: false)
//   batch   sharedSubmit: false: a unary Submit, or SubmitBatch when they coalesce
// Per leg: serve's CPU per submit (from /proc), the client's, and submit p50/p99.
// Flags: --rate=500 --tasks=1500 --rounds=3 --ways=shared,stream,batch. Bounded.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkHealth } from '../src/cli/health-check.js';
import { Supervisor } from '../src/cli/supervisor.js';
import { MeshClient, type MeshClientOptions } from '../src/client/index.js';
import { freePort } from './lib/ports.js';
import { procCpuUs } from './lib/procfs.js';
import { writeResults } from './lib/results.js';
import { renderTable, type Cell } from './lib/table.js';
import { dueBy, NODE_CELL, quantile, twoSpeedTopology } from './two-speed-lib.js';

const arg = (name: string): string | undefined =>
  process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const RATE = Number(arg('rate') ?? 500);
const TASKS = Number(arg('tasks') ?? 1500);
const ROUNDS = Number(arg('rounds') ?? 3);
const WAYS = (arg('ways') ?? 'shared,stream,batch').split(',');
const OPTIONS: Record<string, Partial<MeshClientOptions>> = {
  shared: {},
  stream: { submitCoalesce: false },
  batch: { sharedSubmit: false },
};
const BIN = fileURLToPath(new URL('../bin/meshlb.js', import.meta.url));
const log = (s: string): void => void process.stderr.write(`[bench:submit-path] ${s}\n`);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Leg {
  way: string;
  round: number;
  serve_us_per_submit: number;
  client_us_per_submit: number;
  p50_ms: number;
  p99_ms: number;
  load: number;
}

async function leg(node: string, servePid: number, way: string, round: number): Promise<Leg> {
  const client = new MeshClient({ address: node, deadlineMs: 30_000, ...OPTIONS[way] });
  // Warm the channel (and the stream) first: a connection is not what is measured.
  await client.submit({ kind: 'nobody', durability: 'logged' });
  const cpu0 = procCpuUs(servePid);
  const c0 = process.cpuUsage();
  const lat: number[] = [];
  const start = performance.now();
  const pending: Promise<void>[] = [];
  let sent = 0;
  while (sent < TASKS) {
    const due = dueBy(performance.now() - start, RATE, TASKS);
    for (; sent < due; sent++) {
      const t0 = performance.now();
      pending.push(
        client.submit({ kind: 'nobody', durability: 'logged' }).then(() => void lat.push(performance.now() - t0)),
      );
    }
    await sleep(1);
  }
  await Promise.all(pending);
  const cc = process.cpuUsage(c0);
  const serveUs = procCpuUs(servePid) - cpu0;
  client.close();
  lat.sort((a, b) => a - b);
  return {
    way,
    round,
    serve_us_per_submit: Math.round(serveUs / TASKS),
    client_us_per_submit: Math.round((cc.user + cc.system) / TASKS),
    p50_ms: Math.round(quantile(lat, 0.5) * 100) / 100,
    p99_ms: Math.round(quantile(lat, 0.99) * 100) / 100,
    load: Math.round(os.loadavg()[0]! * 100) / 100,
  };
}

const dir = mkdtempSync(join(os.tmpdir(), 'meshlb-submit-path-'));
const sup = new Supervisor({ onUnexpectedExit: (name, code) => log(`${name} exited ${code}`) });
const legs: Leg[] = [];
try {
  const addresses = (await Promise.all([0, 1, 2, 3].map(() => freePort()))).map((p) => `127.0.0.1:${p}`);
  const node = addresses[3]!;
  writeFileSync(join(dir, 'topology.yaml'), twoSpeedTopology('node-score', addresses));
  sup.start({
    name: 'serve',
    command: process.execPath,
    args: [
      BIN,
      'serve',
      '--topology',
      join(dir, 'topology.yaml'),
      '--cell',
      NODE_CELL,
      '--data-dir',
      join(dir, 'data'),
    ],
    env: { ...process.env, MESHLB_LOG_LEVEL: 'error' },
  });
  const by = Date.now() + 60_000;
  while ((await checkHealth(node, 'meshlb.v1.TaskService', 1000)) !== 'SERVING') {
    if (Date.now() > by) throw new Error('the node did not serve within 60 s');
    await sleep(100);
  }
  const pid = sup.get('serve').child.pid!;
  log(
    `${ROUNDS} rounds of ${WAYS.join(', ')}: ${TASKS} submits at ${RATE}/s each; load ${os.loadavg()[0]!.toFixed(2)}`,
  );
  for (const w of WAYS) await leg(node, pid, w, 0); // warm-up: V8 compiles both paths, the cell's too
  for (let round = 1; round <= ROUNDS; round++)
    for (const w of WAYS) {
      const l = await leg(node, pid, w, round);
      legs.push(l);
      log(JSON.stringify(l));
    }
} finally {
  await sup.stopAll(5000);
  rmSync(dir, { recursive: true, force: true });
}
const rows: Cell[][] = WAYS.map((w) => {
  const mine = legs.filter((l) => l.way === w);
  const f = (k: keyof Leg): string => mine.map((l) => String(l[k])).join(' / ');
  return [w, f('serve_us_per_submit'), f('client_us_per_submit'), f('p50_ms'), f('p99_ms')];
});
const table = renderTable(['way', 'serve µs/submit (per round)', 'client µs/submit', 'p50 ms', 'p99 ms'], rows);
process.stdout.write(
  `${table}\nload average per leg: ${legs.map((l) => `${l.way}#${l.round} ${l.load}`).join(', ')}\n`,
);
log(`results: ${writeResults('submit-path', { rate: RATE, tasks: TASKS, rounds: ROUNDS, legs, table })}`);
