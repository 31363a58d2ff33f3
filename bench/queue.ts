// Micro-benchmark of the pending-task queue and the pickers (not a test).
// Run: npx tsx bench/queue.ts   Prints ops/s per operation; numbers vary by machine.

import { performance } from 'node:perf_hooks';
import { createPolicy, listPolicies, makeCandidate, seededRandom } from '../src/policies/index.js';
import type { Candidate, TaskInfo } from '../src/policies/index.js';
import { PRIORITIES, TaskQueue, type QueueTask } from '../src/queue/index.js';

const rnd = seededRandom(42);
const KINDS = ['llm', 'gpu', 'cpu'];

function makeTasks(n: number, prefix: string): QueueTask[] {
  return Array.from({ length: n }, (_, i) => ({
    id: `${prefix}${i}`,
    kind: KINDS[i % KINDS.length]!,
    tenant: `tenant${Math.floor(rnd() * 10)}`,
    priority: PRIORITIES[Math.floor(rnd() * 4)]!,
    ...(rnd() < 0.2 ? { deadline: 1e9 + Math.floor(rnd() * 1e6) } : {}),
  }));
}

function measure(label: string, ops: number, fn: () => void): void {
  const t0 = performance.now();
  fn();
  const ms = performance.now() - t0;
  console.log(
    `${label.padEnd(44)} ${String(Math.round((ops / ms) * 1000)).padStart(12)} ops/s  (${ops} ops, ${ms.toFixed(1)} ms)`,
  );
}

const N = 100_000;
{
  const q = new TaskQueue<QueueTask>({ capacity: N });
  const tasks = makeTasks(N, 'a');
  measure('queue.push (100k, 3 kinds, 10 tenants)', N, () => tasks.forEach((t, i) => q.push(t, i)));
  measure('queue.pop (drain 100k)', N, () => {
    while (q.pop(N)) {
      // drain
    }
  });
}
{
  const q = new TaskQueue<QueueTask>({ capacity: 20_000 });
  makeTasks(10_000, 'w').forEach((t) => q.push(t, 0));
  const more = makeTasks(N, 's');
  measure('queue push+pop steady at 10k deep', 2 * N, () => {
    for (let i = 0; i < N; i++) {
      q.push(more[i]!, i);
      q.pop(i);
    }
  });
}
{
  const q = new TaskQueue<QueueTask>({ capacity: N });
  const tasks = makeTasks(N, 'r');
  tasks.forEach((t) => q.push(t, 0));
  measure('queue.remove by id (100k)', N, () => tasks.forEach((t) => q.remove(t.id)));
}
{
  const q = new TaskQueue<QueueTask>({ capacity: N });
  makeTasks(N, 'k').forEach((t) => q.push(t, 0));
  measure('queue.popKind (one of 3 kinds, 30k)', 30_000, () => {
    for (let i = 0; i < 30_000; i++) q.popKind('gpu', 1);
  });
}

// Pickers: 50 candidates, a new snapshot every 1000 picks (summaries arrive).
function candidates(n: number): Candidate[] {
  return Array.from({ length: n }, (_, i) =>
    makeCandidate({
      id: `c${i}`,
      slots: { llm: [1000, 1000], gpu: [500, 1000] },
      labels: { region: i % 2 ? 'eu' : 'us' },
      active: Math.floor(rnd() * 100),
      queueDepth: Math.floor(rnd() * 10),
      utilization: { cpu: rnd(), memory: rnd() },
      latencyEwmaMs: rnd() * 200,
      successEwma: 0.9 + rnd() * 0.1,
      rttMs: rnd() * 100,
      qps: 10 + rnd() * 100,
      costPerTask: rnd(),
    }),
  );
}
const cands = candidates(50);
const task: TaskInfo = { kind: 'llm', priority: 'normal', location: 'eu' };
const PICKS = 200_000;
for (const name of listPolicies()) {
  const policy = createPolicy(name, name === 'region-wrr' ? { blackoutPeriodMs: 0 } : undefined, { random: rnd });
  measure(`pick ${name} (50 candidates)`, PICKS, () => {
    let p = policy.buildPicker(cands, 0);
    for (let i = 0; i < PICKS; i++) {
      if (i % 1000 === 999) p = policy.buildPicker(cands, i);
      p.pick(task);
    }
  });
}
