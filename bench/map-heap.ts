// `npx tsx --expose-gc bench/map-heap.ts`: what a long-lived map churned once per task costs, a V8 Map
// against src/util/string-map.ts's StringMap, with 1, 16 and 256 entries in flight (a cell's routes and
// its queue's ids at low rate, at half of peak, near full rate). Each map is made and promoted to the old
// generation first, as a cell's are; then --ops keys (route keys as the mesh makes them) are set and each
// deleted `inFlight` sets later. Printed per case: CPU ns per set+delete (the process's CPU time, which a
// busy machine moves little), bytes the old generation took in per op (promoted by scavenges plus
// allocated there directly: a Map's new tables are made in the old generation when its table is there),
// and the scavenges and mark-compacts of the loop. The same process runs both maps, alternated,
// `--rounds` times (default 3).
import { GCProfiler, getHeapSpaceStatistics } from 'node:v8';
import { hashOf, StringMap } from '../src/util/string-map.js';
import { renderTable, type Cell } from './lib/table.js';

const arg = (name: string, d: number): number =>
  Number(process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? d);
const OPS = arg('ops', 1_000_000);
const ROUNDS = arg('rounds', 3);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with --expose-gc: npx tsx --expose-gc bench/map-heap.ts');

interface Churned {
  set(k: string, v: object): unknown;
  delete(k: string): boolean;
  get(k: string): object | undefined;
}

/** Old and large-object space in use. */
function oldUsed(spaces: readonly { spaceName: string; spaceUsedSize: number }[]): number {
  let n = 0;
  for (const s of spaces) if (s.spaceName === 'old_space' || s.spaceName === 'large_object_space') n += s.spaceUsedSize;
  return n;
}

function oldUsedNow(): number {
  return oldUsed(getHeapSpaceStatistics().map((s) => ({ spaceName: s.space_name, spaceUsedSize: s.space_used_size })));
}

function run(
  make: () => Churned,
  inFlight: number,
): { ns: number; oldPerOp: number; scavenges: number; marks: number } {
  const m = make();
  const keys = Array.from({ length: OPS }, (_, i) => `01JF${(1e9 + i * 7919).toString(36)}Q#${1 + (i % 3)}`);
  // Flat strings, as decoded ids are (a concatenation is flattened, a new string, at its first hashing).
  for (const k of keys) hashOf(k);
  // Promote the map (and its first table) as a cell's long-lived maps are.
  gc!();
  gc!();
  const value = {};
  const prof = new GCProfiler();
  const start = oldUsedNow();
  prof.start();
  const t0 = process.cpuUsage();
  for (let i = 0; i < OPS; i++) {
    m.set(keys[i]!, value);
    if (i >= inFlight) m.delete(keys[i - inFlight]!);
  }
  const cpu = process.cpuUsage(t0);
  const ns = ((cpu.user + cpu.system) * 1e3) / OPS;
  const r = prof.stop();
  let oldAdded = 0;
  let after = start;
  let scavenges = 0;
  let marks = 0;
  for (const s of r?.statistics ?? []) {
    const before = oldUsed(s.beforeGC.heapSpaceStatistics);
    const now = oldUsed(s.afterGC.heapSpaceStatistics);
    oldAdded += Math.max(0, before - after);
    if (s.gcType === 'Scavenge') {
      scavenges++;
      oldAdded += Math.max(0, now - before);
    } else if (s.gcType === 'MarkSweepCompact') marks++;
    after = now;
  }
  oldAdded += Math.max(0, oldUsedNow() - after);
  if (m.get(keys[OPS - 1]!) !== value) throw new Error('lost the last key');
  return { ns, oldPerOp: oldAdded / OPS, scavenges, marks };
}

const rows: Cell[][] = [];
for (const inFlight of [1, 16, 256]) {
  for (let round = 0; round < ROUNDS; round++) {
    for (const [name, make] of [
      ['Map', () => new Map<string, object>()],
      ['StringMap', () => new StringMap<object>()],
    ] as const) {
      const f = run(make, inFlight);
      rows.push([String(inFlight), name, f.ns.toFixed(0), f.oldPerOp.toFixed(1), String(f.scavenges), String(f.marks)]);
    }
  }
}
console.log(`${OPS} set+delete per case, ${ROUNDS} rounds alternated`);
console.log(
  renderTable(
    ['in flight', 'map', 'CPU ns per set+delete', 'old-gen bytes per op', 'scavenges', 'mark-compacts'],
    rows,
  ),
);
