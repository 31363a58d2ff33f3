// The BullMQ side of `npm run bench:peers` (bench/peers.ts forks this file
// with IPC, as bench/mesh.ts forks bench/mesh-proc.ts):
//
//   worker REDIS_PORT CONCURRENCY   one BullMQ Worker on the queue `bench`, a no-op
//                                   processor (the peer of meshlb's no-op agents); per
//                                   completed job it records submit-to-result latency
//                                   from the submit time in the job's data, when BullMQ
//                                   emits 'completed' (the job is recorded complete in
//                                   Redis: the peer of meshlb's home ledger recording
//                                   the result).
//
// IPC as bench/lib/proc.ts: reset, report, count; it exits when the parent goes away.
import { Worker, type Job } from 'bullmq';
import { nowUs } from './lib/clock.js';
import { ChildReporter } from './lib/child.js';

export const QUEUE = 'bench';

/** The job's data: the submit time on the host's monotonic clock (bench/lib/clock.ts). */
export interface BenchJob {
  t: number;
}

async function worker(port: number, concurrency: number): Promise<void> {
  const rep = new ChildReporter();
  const w = new Worker<BenchJob>(QUEUE, async () => undefined, {
    connection: { host: '127.0.0.1', port },
    concurrency,
    // Nothing kept after it ends: the bench reads its figures from the events.
    removeOnComplete: { count: 0 },
    removeOnFail: { count: 0 },
  });
  w.on('completed', (job: Job<BenchJob>) => rep.record(nowUs() - job.data.t));
  w.on('error', (err) => process.stderr.write(`[bullmq worker] ${err.message}\n`));
  await w.waitUntilReady();
  rep.listen(() => w.close(true));
  rep.ready();
}

const [role, ...args] = process.argv.slice(2);
if (role === 'worker') await worker(Number(args[0]), Number(args[1]));
