// `npx tsx bench/raft-pace.ts`: the CPU a one-voter Raft group on lmdb (fsync on, as a node cell's
// data dir) spends per proposal when paced as a logged task's two commits at 800 tasks/s: 8
// proposals of 300 bytes and one ReadIndex read every 5 ms (1,600 proposals/s), in this process,
// for --ms (default 4,000) after a 1 s warm-up. CPU is process.cpuUsage (lmdb's writer thread
// and V8's helpers included) over the proposals made; the figure is the runtime's and storage's
// alone (no ledger, no gRPC). For an A/B, run it from two trees in turn (docs/performance.md, "Durable
// (LOGGED) tasks"). Bounded: every proposal has the runtime's deadline, the run a fixed length.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MemoryNetwork, RaftReplica } from '../src/raft/index.js';

const arg = (name: string): string | undefined =>
  process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const MS = Number(arg('ms') ?? 4_000);
const PER_TURN = 8;
const TURN_MS = 5;

// Raft's timers are unref'd (a replica never holds a process open by itself): this does, until the end.
const keepAlive = setInterval(() => undefined, 1_000);
const dir = mkdtempSync(path.join(os.tmpdir(), 'meshlb-raft-pace-'));
const net = new MemoryNetwork();
const replica = new RaftReplica({
  groupId: 'pace',
  id: 'a',
  peers: { a: 'a' },
  dataDir: dir,
  transport: net.transport('a'),
  stateMachine: { apply: (_d, index) => index, snapshot: () => new Uint8Array(0), restore: () => undefined },
});

async function run(ms: number): Promise<{ proposals: number; cpuUs: number }> {
  const payload = new Uint8Array(300).fill(7);
  const started = Date.now();
  const cpu0 = process.cpuUsage();
  const pending: Array<Promise<unknown>> = [];
  let proposals = 0;
  while (Date.now() - started < ms) {
    for (let i = 0; i < PER_TURN; i++) pending.push(replica.propose(payload));
    pending.push(replica.read());
    proposals += PER_TURN;
    await new Promise((resolve) => setTimeout(resolve, TURN_MS));
  }
  await Promise.all(pending);
  const cpu = process.cpuUsage(cpu0);
  return { proposals, cpuUs: cpu.user + cpu.system };
}

try {
  await replica.waitForLeader({ timeoutMs: 10_000 });
  await run(1_000);
  const { proposals, cpuUs } = await run(MS);
  const [load] = os.loadavg();
  console.log(
    `raft-pace: ${proposals} proposals in ${MS} ms, ${(cpuUs / proposals).toFixed(1)} µs CPU per proposal ` +
      `(load average ${load!.toFixed(2)})`,
  );
} finally {
  await replica.stop();
  clearInterval(keepAlive);
  rmSync(dir, { recursive: true, force: true });
}
