// npm run bench:raft — Raft commit throughput and latency of a 3-replica group
// in separate processes (sync on, 100-byte entries) at 1, 64 and 256 concurrent
// proposers, next to a same-run baseline of raw lmdb durable writes (one put per
// commit, awaited until flushed, same concurrency) on this machine.
// Proposers run inside the leader's process (RaftKv.Bench), so the figures are
// Raft's: propose -> replicate -> fsync on a quorum -> commit -> applied.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { open } from 'lmdb';
import { RaftRole } from '../src/gen/meshlb/v1/raft.js';
import { freePort, poll, Replica } from '../examples/raft-kv/cluster.js';
import { call, type BenchResponse } from '../examples/raft-kv/service.js';
import { LatencyHistogram, type LatencySummary } from './lib/histogram.js';
import { writeResults } from './lib/results.js';
import { renderTable } from './lib/table.js';

const { values } = parseArgs({ options: { quick: { type: 'boolean' }, only: { type: 'string' } } });
const quick = values.quick ?? false;
const ENTRY_BYTES = 100;
const ALL_LEVELS = [
  { concurrency: 1, count: quick ? 300 : 2_000 },
  { concurrency: 64, count: quick ? 5_000 : 40_000 },
  { concurrency: 256, count: quick ? 10_000 : 80_000 },
];
// --only 1,64: a subset of the levels (for A/B runs while tuning; the targets need 1 and 64).
const only = values.only?.split(',').map(Number);
const LEVELS = only ? ALL_LEVELS.filter((l) => only.includes(l.concurrency)) : ALL_LEVELS;
const MAX_MS = quick ? 5_000 : 15_000;

interface Row {
  concurrency: number;
  ops: number;
  opsPerSec: number;
  latency: LatencySummary;
  errors: number;
  /** Raft only: CPU time (user + system) of the three server processes per commit, in microseconds. */
  cpuUsPerCommit?: number;
}

/** CPU time (user + system) a process has used so far, in ms, from /proc (Linux); undefined elsewhere. */
function cpuMs(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    // Fields after the command name (which may contain spaces): utime and stime are the 12th and 13th.
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1000) / 100; // USER_HZ is 100 on Linux
  } catch {
    return undefined;
  }
}

/**
 * Raw lmdb durable writes at the same concurrency: each worker awaits one put
 * at a time ('put': lmdb-js async put, overlappingSync off so the promise means
 * fsync'd; concurrent puts share a transaction, lmdb's own group commit), or
 * ('sync') one synchronous fsync'd transaction per put, the way LmdbStorage writes.
 */
async function baseline(dir: string, mode: 'put' | 'sync', concurrency: number, count: number): Promise<Row> {
  const db = open({
    path: path.join(dir, `baseline-${mode}-${concurrency}.lmdb`),
    overlappingSync: false,
    noSync: false,
    mapSize: 1 << 30,
  });
  const value = Buffer.alloc(ENTRY_BYTES, 0x61);
  const h = new LatencyHistogram();
  let issued = 0;
  const start = performance.now();
  const deadline = start + MAX_MS;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (issued < count && performance.now() < deadline) {
        const k = issued++;
        const t = performance.now();
        if (mode === 'put') await db.put(k, value);
        else {
          db.transactionSync(() => db.putSync(k, value));
          await new Promise((r) => setImmediate(r)); // let the other workers in, like a real caller would
        }
        h.recordMs(performance.now() - t);
      }
    }),
  );
  const elapsed = performance.now() - start;
  await db.close();
  const latency = h.summary();
  return { concurrency, ops: latency.count, opsPerSec: (latency.count / elapsed) * 1000, latency, errors: 0 };
}

async function main(): Promise<void> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'meshlb-bench-raft-'));
  const loadBefore = os.loadavg();
  const ids = ['n1', 'n2', 'n3'];
  const ports = [await freePort(), await freePort(), await freePort()];
  const peers = ids.map((id, i) => `${id}=127.0.0.1:${ports[i]}`).join(',');
  const reps = ids.map((id, i) => new Replica(id, ports[i]!, path.join(root, id), peers));
  const base: Row[] = [];
  let single: Row | undefined;
  const raft: Row[] = [];
  try {
    console.log(`baseline: raw lmdb durable writes (${ENTRY_BYTES} B) in ${root}`);
    for (const l of LEVELS) base.push(await baseline(root, 'put', l.concurrency, l.count));
    single = await baseline(root, 'sync', 1, LEVELS[0]!.count);
    await Promise.all(reps.map((r) => r.start()));
    const leader = await poll(
      async () => {
        const st = await Promise.all(reps.map((r) => r.getStatus()));
        const l = st.find((s) => s?.role === RaftRole.RAFT_ROLE_LEADER);
        return l && st.every((s) => s?.leaderId === l.nodeId) ? reps.find((r) => r.id === l.nodeId) : undefined;
      },
      15_000,
      'a leader',
    );
    console.log(`raft: 3 processes, leader ${leader.id}; warming up`);
    await call(leader.kv, 'bench', { concurrency: 16, count: 2_000, valueBytes: ENTRY_BYTES, maxMs: 5_000 }, 30_000);
    // CPU per commit is the figure least disturbed by other jobs on a shared machine (latency is not).
    const cpuNow = () =>
      reps.reduce<number | undefined>((sum, x) => {
        const c = cpuMs(x.proc?.pid);
        return sum === undefined || c === undefined ? undefined : sum + c;
      }, 0);
    for (const l of LEVELS) {
      const cpu0 = cpuNow();
      const r = await call<unknown, BenchResponse>(
        leader.kv,
        'bench',
        { ...l, valueBytes: ENTRY_BYTES, maxMs: MAX_MS },
        MAX_MS + 30_000,
      );
      const cpu1 = cpuNow();
      const h = new LatencyHistogram();
      for (const us of r.latenciesUs) h.recordUs(us);
      const latency = h.summary();
      const cpuUsPerCommit =
        cpu0 !== undefined && cpu1 !== undefined && latency.count > 0
          ? ((cpu1 - cpu0) * 1000) / latency.count
          : undefined;
      raft.push({
        concurrency: l.concurrency,
        ops: latency.count,
        opsPerSec: (latency.count / r.elapsedMs) * 1000,
        latency,
        errors: r.errors,
        ...(cpuUsPerCommit !== undefined ? { cpuUsPerCommit } : {}),
      });
      console.log(`  ${l.concurrency} proposers: ${latency.count} commits in ${r.elapsedMs.toFixed(0)} ms`);
    }
  } finally {
    for (const r of reps) {
      await r.kill();
      r.status.close();
      r.kv.close();
    }
    fs.rmSync(root, { recursive: true, force: true });
  }

  const rows = raft.map((r, i) => {
    const b = base[i]!;
    return [
      r.concurrency,
      r.opsPerSec,
      b.opsPerSec,
      r.opsPerSec / b.opsPerSec,
      r.latency.p50Ms,
      b.latency.p50Ms,
      r.latency.p50Ms / b.latency.p50Ms,
      r.latency.p99Ms,
      b.latency.p99Ms,
      r.latency.p99Ms / b.latency.p99Ms,
      r.errors,
      r.cpuUsPerCommit ?? NaN,
    ];
  });
  console.log('');
  console.log(
    renderTable(
      [
        'proposers',
        'raft commits/s',
        'lmdb puts/s',
        'x base',
        'raft p50 ms',
        'lmdb p50 ms',
        'x base',
        'raft p99 ms',
        'lmdb p99 ms',
        'x base',
        'errors',
        'cpu us/commit',
      ],
      rows,
    ),
  );
  // The stricter of the two single-write references: whichever durable write was faster here.
  const singleP50 = Math.min(base[0]!.latency.p50Ms, single!.latency.p50Ms);
  console.log('');
  console.log(
    `one durable lmdb write, p50: async put ${base[0]!.latency.p50Ms} ms, synchronous transaction ${single!.latency.p50Ms} ms (p99 ${single!.latency.p99Ms} ms)`,
  );
  const p50Ratio = raft[0]!.latency.p50Ms / singleP50;
  const at64 = raft[1]!.opsPerSec;
  const targets = {
    p50At1WithinFourTimesBaseline: { ratio: p50Ratio, met: p50Ratio <= 4 },
    commitsPerSecAt64AtLeast15000: { value: at64, met: at64 >= 15_000 },
  };
  console.log('');
  console.log(
    `target: p50 at 1 proposer <= 4x one durable lmdb write: ${p50Ratio.toFixed(2)}x -> ${targets.p50At1WithinFourTimesBaseline.met ? 'met' : 'NOT met'}`,
  );
  console.log(
    `target: >= 15,000 commits/s at 64 proposers: ${Math.round(at64).toLocaleString('en-US')} -> ${targets.commitsPerSecAt64AtLeast15000.met ? 'met' : 'NOT met'}`,
  );
  // The machine is shared: the figures only mean something next to its load.
  const loadAfter = os.loadavg();
  const fmtLoad = (l: number[]) => l.map((x) => x.toFixed(2)).join(' ');
  console.log(
    `load average (1/5/15 min): ${fmtLoad(loadBefore)} before, ${fmtLoad(loadAfter)} after, ${os.cpus().length} CPUs`,
  );
  const file = writeResults('raft', {
    entryBytes: ENTRY_BYTES,
    quick,
    raft,
    baseline: base,
    singleSyncWrite: single,
    targets,
    loadAverage: { before: loadBefore, after: loadAfter },
  });
  console.log(`results: ${file}`);
}

await main();
