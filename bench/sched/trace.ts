// npx tsx bench/sched/trace.ts [--scenario heterogeneous] [--seeds 1,4] [--zone node-score] [--node P]
//
// Where did the tail tasks go? Runs one scenario's seeds with the tier
// defaults and with the given policy in place of the default at one tier, the
// same tasks, and traces every task's last attempt: the time it waited at home
// (the zone), at its node, its run, on which agent (speed class, and whether
// that agent was the node's slow start), and, when it started, the fastest
// agent with a free slot at its own node and at the other nodes. It prints
// per run the slowest 1% by those parts, and for every task how many started
// on an agent at least twice as slow as one free elsewhere. Virtual time: the
// same on any machine.

import { DEFAULT_POLICY_BY_TIER, listPolicies } from '../../src/policies/index.js';
import { renderTable, type Cell } from '../lib/table.js';
import { SCENARIOS } from './scenarios.js';
import { runScenario } from './sim.js';
import type { SimAgent, SimTask } from './task.js';
import type { PolicyByTier, SimTier } from './types.js';
import type { SimCell } from './cells.js';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const scenario = arg('scenario') ?? 'heterogeneous';
const seeds = (arg('seeds') ?? '1,4').split(',').map(Number);
const alt: [SimTier, string][] = [];
for (const tier of ['region', 'zone', 'node'] as const) {
  const p = arg(tier);
  if (p === undefined) continue;
  if (!listPolicies().includes(p)) throw new Error(`unknown policy ${p}`);
  alt.push([tier, p]);
}
if (!SCENARIOS[scenario]) throw new Error(`unknown scenario ${scenario}`);

interface Rec {
  arrival: number;
  attempts: number;
  served: number;
  atNode: number;
  node: string;
  start: number;
  agent: SimAgent | undefined;
  speed: number;
  runMs: number;
  /** Fastest free agent's speed at the task's own node, and at the other nodes, when it started. */
  fastestHere: number;
  fastestElsewhere: number;
  done: number;
  /** At the zone's last pick: the chosen node's score, the best eligible score, eligible nodes. */
  zoneScore: number;
  zoneBest: number;
  zoneEligible: number;
}

const DEFAULTS: PolicyByTier = {
  region: DEFAULT_POLICY_BY_TIER.region,
  zone: DEFAULT_POLICY_BY_TIER.zone,
  node: DEFAULT_POLICY_BY_TIER.node,
};

function fastestFree(cells: readonly SimCell[]): number {
  let best = 0;
  for (const c of cells)
    for (const a of c.agents) if (a.up && a.inFlight < a.spec.slots && a.spec.speed > best) best = a.spec.speed;
  return best;
}

function trace(v: number, policies: PolicyByTier): Rec[] {
  const sc = SCENARIOS[scenario]!(1, v);
  const recs = new Map<string, Rec>();
  const rec = (t: SimTask): Rec => {
    let r = recs.get(t.id);
    if (!r)
      recs.set(
        t.id,
        (r = {
          arrival: t.spec.at,
          attempts: 0,
          served: NaN,
          atNode: NaN,
          node: '',
          start: NaN,
          agent: undefined,
          speed: 0,
          runMs: 0,
          fastestHere: 0,
          fastestElsewhere: 0,
          done: NaN,
          zoneScore: NaN,
          zoneBest: NaN,
          zoneEligible: 0,
        }),
      );
    return r;
  };
  runScenario(sc, policies, {
    trace: {
      served: (t, now) => {
        rec(t).served = now;
      },
      atNode: (t, node, now) => {
        const r = rec(t);
        r.atNode = now;
        r.node = node.id;
      },
      started: (t, a, now) => {
        const r = rec(t);
        r.attempts = t.attempt;
        r.start = now;
        r.agent = a;
        r.speed = a.spec.speed;
        r.runMs = t.runMs;
        const node = a.node;
        const siblings = node.parent?.children.filter((c) => c !== node && c.up) ?? [];
        r.fastestHere = fastestFree([node]);
        r.fastestElsewhere = fastestFree(siblings);
      },
      completed: (t, now) => {
        rec(t).done = now;
      },
      routed: (cell, t, picker, to) => {
        if (cell.tier !== 'zone') return;
        const e = picker.explain(t, to, 8);
        const r = rec(t);
        const ok = e.candidates.filter((c) => c.eligible || c.id === to);
        r.zoneScore = e.candidates.find((c) => c.id === to)?.score ?? NaN;
        r.zoneBest = Math.min(...ok.map((c) => c.score));
        r.zoneEligible = ok.length;
      },
    },
  });
  return [...recs.values()].filter((r) => Number.isFinite(r.done));
}

const cls = (s: number): string => (s < 2 ? 'x1-2' : s < 4 ? 'x2-4' : 'x4-8');
const mean = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
const f1 = (x: number): string => x.toFixed(1);

const header = [
  'seed / run',
  'p99 ms',
  'tail n',
  'tail on x1-2 / x2-4 / x4-8',
  'tail retried',
  'tail: home wait',
  'node wait',
  'run',
  'tail slow start',
  'tail: faster free here / elsewhere',
  'all: starts on an agent 2x slower than one free elsewhere',
  'same at its own node',
  'all: home wait mean / p99',
  'all starts on x1-1.5 / 1.5-2 / 2-3 / 3-4 / 4-8',
  'starts on x1-1.5: the zone chose the best score / not (another eligible node scored lower)',
  'tail: the zone chose the best score / not',
  'tail by arrival: 0-1 s / 1-4 s / 4 s-',
  'starts on x1-1.5: the zone expected (score) under half / half to 1 / over 1 of the agent mean time',
];
const rows: Cell[][] = [];
const perNode: Cell[][] = [];
for (const v of seeds) {
  const runs: [string, PolicyByTier][] = [['default', DEFAULTS]];
  for (const [tier, p] of alt) runs.push([`${tier}: ${p}`, { ...DEFAULTS, [tier]: p }]);
  const sc = SCENARIOS[scenario]!(1, v);
  for (const [name, pol] of runs) {
    const rs = trace(v, pol);
    const times = rs.map((r) => r.done - r.arrival).sort((a, b) => a - b);
    const p99 = times[Math.floor(0.99 * times.length)]!;
    const tail = rs.filter((r) => r.done - r.arrival >= p99);
    const by = (c: string): number => tail.filter((r) => cls(r.speed) === c).length;
    const slowStart = tail.filter(
      (r) => r.agent !== undefined && r.start - r.agent.upSince < r.agent.spec.slowStartMs,
    ).length;
    rows.push([
      `${v} ${name}`,
      f1(p99),
      tail.length,
      `${by('x1-2')} / ${by('x2-4')} / ${by('x4-8')}`,
      tail.filter((r) => r.attempts > 1).length,
      f1(mean(tail.map((r) => r.served - r.arrival))),
      f1(mean(tail.map((r) => r.start - r.atNode))),
      f1(mean(tail.map((r) => r.runMs))),
      slowStart,
      `${tail.filter((r) => r.fastestHere >= 2 * r.speed).length} / ${tail.filter((r) => r.fastestElsewhere >= 2 * r.speed).length}`,
      rs.filter((r) => r.fastestElsewhere >= 2 * r.speed).length,
      rs.filter((r) => r.fastestHere >= 2 * r.speed).length,
      (() => {
        const w = rs.map((r) => r.served - r.arrival).sort((a, b) => a - b);
        return `${f1(mean(w))} / ${f1(w[Math.floor(0.99 * w.length)]!)}`;
      })(),
      [1.5, 2, 3, 4, 99]
        .map((hi, i, a) => rs.filter((r) => r.speed < hi && r.speed >= (i ? a[i - 1]! : 0)).length)
        .join(' / '),
      (() => {
        const slow = rs.filter((r) => r.speed < 1.5 && Number.isFinite(r.zoneScore));
        const best = slow.filter((r) => r.zoneScore <= r.zoneBest).length;
        return `${best} / ${slow.length - best}`;
      })(),
      (() => {
        const z = tail.filter((r) => Number.isFinite(r.zoneScore));
        const best = z.filter((r) => r.zoneScore <= r.zoneBest).length;
        return `${best} / ${z.length - best}`;
      })(),
      [1000, 4000, Infinity]
        .map((hi, i, a) => tail.filter((r) => r.arrival < hi && r.arrival >= (i ? a[i - 1]! : 0)).length)
        .join(' / '),
      (() => {
        const slow = rs.filter((r) => r.speed < 1.5 && Number.isFinite(r.zoneScore));
        const x = slow.map((r) => r.zoneScore / (sc.kinds['work']! / r.speed));
        return `${x.filter((q) => q < 0.5).length} / ${x.filter((q) => q >= 0.5 && q < 1).length} / ${x.filter((q) => q >= 1).length}`;
      })(),
    ]);
    const nodes = [...new Set(rs.map((r) => r.node))].sort();
    perNode.push([
      `${v} ${name}`,
      ...nodes.map((n) => {
        const at = rs.filter((r) => r.node === n);
        const t = tail.filter((r) => r.node === n).length;
        return `${n.split('/').pop()}: ${at.length} tasks, tail ${t}, node wait ${f1(mean(at.map((r) => r.start - r.atNode)))}`;
      }),
    ]);
  }
}
console.log(`${scenario}: the slowest 1% (tail) of each run's tasks, by where their last attempt went (ms)`);
if (process.argv.includes('--lines'))
  for (const r of rows) console.log(r.map((c, i) => `${header[i]}: ${String(c)}`).join('; '));
else console.log(renderTable(header, rows));
console.log(`\nper node: tasks whose last attempt ran there, of them in the tail, mean wait at the node (ms)`);
for (const r of perNode) console.log(r.join('  '));
