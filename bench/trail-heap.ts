// What a cell's placement trail (src/mesh/dispatcher-trail.ts) keeps alive:
// the heap its ring of TRAIL_DECISIONS decisions holds once full, beyond an
// empty ring, when each decision comes with an explanation as explainView
// makes it (`--candidates` listed, default 8 as at a node of many agents; 1
// as at a cell with one child). In one process, deterministic, after full GCs:
// what a busy cell's scavenges copy for as long as a decision stays in the
// ring (about 2 s at 500 tasks/s). Run: `npx tsx --expose-gc bench/trail-heap.ts`.
import { Trail, TRAIL_CANDIDATES, TRAIL_DECISIONS } from '../src/mesh/dispatcher-trail.js';
import { explainView, type ExplainSource } from '../src/policies/explain.js';
import type { ScoreRule, TaskInfo } from '../src/policies/index.js';

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with --expose-gc: npx tsx --expose-gc bench/trail-heap.ts');
const arg = process.argv.find((a) => a.startsWith('--candidates='));
const size = Math.max(1, Number(arg?.slice('--candidates='.length) ?? TRAIL_CANDIDATES));
const used = (): number => {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
};
const rule: ScoreRule = { score: 'expected delay, ms', rule: 'lowest score; ties at random', better: 'lower' };
const ids = Array.from({ length: size }, (_, i) => `agent-${i}`);
const taskIds = Array.from({ length: TRAIL_DECISIONS }, (_, i) => `task-${i}`);
const src = (chosen: number): ExplainSource => ({
  size,
  chosen,
  id: (p) => ids[p]!,
  ok: () => true,
  whyNot: () => '',
  score: (p) => ((p * 7919) % 101) / 3,
  credits: (p) => p % 4,
});
const task = { kind: 'k' } as TaskInfo;
const fill = (trail: Trail, round: number): void => {
  for (let n = 0; n < TRAIL_DECISIONS; n++) {
    const c = (n + round) % size;
    const e = explainView(rule, [], task, ids[c]!, TRAIL_CANDIDATES, src(c));
    trail.decided({ taskId: taskIds[n]!, attempt: 1, kind: 'k' }, n, 'p', 'agent', ids[c]!, e, '');
  }
};
fill(new Trail(), 0); // compiled and warm before measuring
const held: number[] = [];
for (let round = 0; round < 5; round++) {
  const trail = new Trail(); // its ring and arrays are made before measuring
  const before = used();
  fill(trail, round);
  held.push(used() - before);
  if (trail.size !== TRAIL_DECISIONS) throw new Error('the ring did not fill');
}
held.sort((a, b) => a - b);
const median = held[2]!;
console.log(
  `trail of ${TRAIL_DECISIONS} decisions, ${Math.min(size, TRAIL_CANDIDATES)} candidates listed each: ` +
    `${(median / 1024).toFixed(0)} KB held once full, median of 5 fills (${Math.round(median / TRAIL_DECISIONS)} bytes a decision)`,
);
