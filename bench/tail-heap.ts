// `npx tsx --expose-gc bench/tail-heap.ts`: the heap each per-message step that session 15 changed allocates,
// the old way against the new, in one process, alternated (docs/performance.md, "Session 15: the paced tail, hop by
// hop"). At 500 tasks/s a cell runs each of these once or twice per task, so bytes per op here are bytes per
// task there; unlike the mesh bench's `heap bytes allocated/task`, they do not move with the machine's load
// (which changes how many tasks a message carries). Per case: heap bytes allocated per op (v8.GCProfiler:
// what each collection found in use less what the previous one left, plus what is in use at the end) and
// CPU ns per op.
//
//   deferral    a light caller's deferral after a quiet spell, run as a microtask: Node's queueMicrotask
//               with a closure per call (before) against turn-defer.ts (a FIFO and a shared runner)
//   next turn   a deferral on the next turn: setImmediate with a closure per call against turn-defer.ts
//   kinds       the kinds a pump serves, one kind queued: a generator over a Map's entries spread into an
//               array (before) against TaskQueue.kinds()
//   largest     the largest key with a count above 0 of a Map of 3 slot sizes: over its entries (before)
//               against over its keys (agent-capacity.ts)
//   framing     a link message of one dispatch made ready to write: serialized, then framed (before)
//               against written behind its frame header (wire-codec.ts, grpc-frame.ts frameOf)
import { GCProfiler, getHeapStatistics } from 'node:v8';
import { Dispatch, TaskSpec } from '../src/gen/meshlb/v1/task.js';
import type { OpenResponse } from '../src/gen/meshlb/v1/link.js';
import { encodeOpenResponse } from '../src/mesh/wire-codec.js';
import { TaskQueue } from '../src/queue/index.js';
import { frameMessage, frameOf } from '../src/util/grpc-frame.js';
import { turnDefer } from '../src/util/turn-defer.js';
import { renderTable, type Cell } from './lib/table.js';

const arg = (name: string, d: number): number =>
  Number(process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? d);
const OPS = arg('ops', 200_000);
const ROUNDS = arg('rounds', 3);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with --expose-gc: npx tsx --expose-gc bench/tail-heap.ts');

/** Bytes allocated and CPU ns per op of `body` run `OPS` times (awaited in slices of `slice` ops). */
async function measure(
  body: (i: number) => void,
  slice: number,
  drain: () => Promise<void>,
): Promise<[number, number]> {
  for (let i = 0; i < Math.min(OPS, 20_000); i += slice) {
    for (let j = 0; j < slice; j++) body(j);
    await drain();
  }
  gc!();
  const prof = new GCProfiler();
  let after = getHeapStatistics().used_heap_size;
  prof.start();
  const t0 = process.cpuUsage();
  for (let i = 0; i < OPS; i += slice) {
    for (let j = 0; j < slice; j++) body(i + j);
    await drain();
  }
  const cpu = process.cpuUsage(t0);
  const r = prof.stop();
  let bytes = 0;
  for (const s of r?.statistics ?? []) {
    bytes += Math.max(0, s.beforeGC.heapStatistics.usedHeapSize - after);
    after = s.afterGC.heapStatistics.usedHeapSize;
  }
  bytes += Math.max(0, getHeapStatistics().used_heap_size - after);
  return [bytes / OPS, ((cpu.user + cpu.system) * 1e3) / OPS];
}

let sink = 0;
const work = (): void => {
  sink++;
};
const tick = (): Promise<void> => new Promise((r) => setImmediate(r));
const micro = (): Promise<void> => Promise.resolve();
// Every deferral a microtask (no quiet spell needed, no run limit): the path a light caller takes at 500/s.
const soon = turnDefer(() => 0, { mode: 'soon', quietMs: 0, max: Infinity, turnMax: Infinity });
const turn = turnDefer(() => 0, { mode: 'turn' });

const lanes = new Map<string, number[]>([['bench', [1]]]);
function* kindsBefore(): IterableIterator<string> {
  for (const [kind, l] of lanes) if (l.length > 0) yield kind;
}
const queue = new TaskQueue<{ id: string; kind: string; tenant: string; priority: 'normal' }>({ capacity: 16 });
queue.push({ id: 't1', kind: 'bench', tenant: '', priority: 'normal' }, 0);

const sizes = new Map<number, number>([
  [16, 3],
  [8, 0],
  [4, 1],
]);
const maxEntries = (m: Map<number, number>): number => {
  let best = 0;
  for (const [k, n] of m) if (n > 0 && k > best) best = k;
  return best;
};
const maxKeys = (m: Map<number, number>): number => {
  let best = 0;
  for (const k of m.keys()) if (k > best && m.get(k)! > 0) best = k;
  return best;
};

const spec = TaskSpec.fromPartial({ kind: 'bench', payload: Buffer.alloc(16), tenant: 'acme' });
const msg: OpenResponse = {
  msg: {
    $case: 'dispatches',
    value: {
      tasks: [Dispatch.fromPartial({ taskId: '01JFX0A7Q-1k2', attempt: 1, homeCell: '/', spec, leaseMs: 30_000 })],
    },
  },
} as OpenResponse;
const encodePlain = (m: OpenResponse): Buffer => encodeOpenResponse(m);

const cases: [string, string, (i: number) => void, number, () => Promise<void>][] = [
  ['deferral', 'queueMicrotask + closure', () => queueMicrotask(() => work()), 100, micro],
  ['deferral', 'turn-defer', () => soon.defer(work, 1), 100, micro],
  ['next turn', 'setImmediate + closure', () => setImmediate(() => work()), 100, tick],
  ['next turn', 'turn-defer', () => turn.defer(work), 100, tick],
  ['kinds', 'generator, spread', () => void (sink += [...kindsBefore()].length), 1000, micro],
  ['kinds', 'TaskQueue.kinds()', () => void (sink += queue.kinds().length), 1000, micro],
  ['largest', 'over entries', () => void (sink += maxEntries(sizes)), 1000, micro],
  ['largest', 'over keys', () => void (sink += maxKeys(sizes)), 1000, micro],
  ['framing', 'serialize, then frame', () => void (sink += frameMessage(encodePlain(msg)).length), 1000, micro],
  ['framing', 'frameOf', () => void (sink += frameOf(encodeOpenResponse, msg).length), 1000, micro],
];

const rows: Cell[][] = [];
for (let round = 0; round < ROUNDS; round++)
  for (const [step, how, body, slice, drain] of cases) {
    const [bytes, ns] = await measure(body, slice, drain);
    rows.push([String(round + 1), step, how, bytes.toFixed(0), ns.toFixed(0)]);
  }
console.log(`${OPS} ops per case, ${ROUNDS} rounds alternated (sink ${sink > 0 ? 'used' : 'empty'})`);
console.log(renderTable(['round', 'step', 'how', 'heap bytes per op', 'CPU ns per op'], rows));
