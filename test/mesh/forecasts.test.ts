// A cell's forecasts in its summaries (src/mesh/forecasts.ts): a node forecasts
// its arrivals and its agents' run times, pre-positions queue room by them
// (never past its slots, off by switch), and a parent aggregates its
// children's forecasts into its own and into scale recommendations.
import { describe, expect, it } from 'vitest';
import type { KindCapacity, Summary } from '../../src/gen/meshlb/v1/link.js';
import type { AgentSession } from '../../src/mesh/agent-session.js';
import { AgentCapacity } from '../../src/mesh/agent-capacity.js';
import type { AgentSessions } from '../../src/mesh/agent-sessions.js';
import { Cell } from '../../src/mesh/cell.js';
import type { ChildLinks } from '../../src/mesh/child-links.js';
import type { CellOptions } from '../../src/mesh/types.js';
import { parseTopology } from '../../src/topology/parse.js';

const topo = (defaults = '') =>
  parseTopology(`
name: unit
addressing: { host: 127.0.0.1, basePort: 7000 }
${defaults}
cells: { name: / }
`);

function agent(slots: number): AgentSession {
  return { dead: false, draining: false, kinds: ['k'], slots, inFlight: 0 } as unknown as AgentSession;
}

/** A node cell of two 4-slot agents on a hand-moved clock (summary interval 100 ms). */
function node(opts: CellOptions = {}, defaults = '') {
  let now = 0;
  const t = topo(defaults);
  const cell = new Cell(t, t.byPath.get('/')!, 1, { seed: 1, now: () => now, summaryIntervalMs: 100, ...opts });
  const capacity = new AgentCapacity();
  for (const a of [agent(4), agent(4)]) capacity.account(a, 1);
  const load = () => ({
    capacity: capacity.byKind,
    healthyAgents: 2,
    cpu: 0,
    memory: 0,
    latencyEwmaMs: 0,
    successEwma: 1,
  });
  cell.attach({ agents: { load } as unknown as AgentSessions });
  /** `perSecond` arrivals of kind k, each run `serviceMs` by an agent, for `ms`; then the summary's kind k. */
  const drive = (perSecond: number, serviceMs: number, ms: number): KindCapacity => {
    const end = now + ms;
    const gap = 1000 / perSecond;
    for (let t = now; t < end; t += gap) {
      now = t;
      cell.forecasts.arrived('k', now);
      cell.forecasts.served('k', serviceMs, now);
    }
    now = end;
    cell.forecasts.tick(now);
    return cell.summaries.build(1, now, '').kinds[0]!;
  };
  return { cell, drive, load };
}

describe('a node forecasts its arrivals and pre-positions queue room by them', () => {
  it('reports the forecast rate and service time in its summary', () => {
    const { drive } = node();
    const k = drive(100, 30, 3000);
    expect(k.forecastRate).toBeGreaterThan(90);
    expect(k.forecastRate).toBeLessThan(110);
    expect(k.forecastServiceMs).toBeCloseTo(30, 6);
  });

  it('offers the static share while quiet, more under load, never past its slots', () => {
    const { drive } = node();
    // Quiet: 5/s for 200 ms of lead is 1 task, below the static half of 8 slots.
    expect(drive(5, 30, 3000).prefetchSlots).toBe(4);
    // 30/s x 200 ms = 6.
    const mid = drive(30, 30, 5000);
    expect(mid.freeSlots + mid.prefetchSlots).toBe(8 + 6);
    // 400/s would be 80 ahead: capped at the 8 slots.
    const busy = drive(400, 10, 3000);
    expect(busy.prefetchSlots).toBe(8);
    expect(busy.freeSlots).toBeLessThanOrEqual(busy.totalSlots);
  });

  it('keeps the static share with pre-positioning off (cell option or topology)', () => {
    expect(node({ forecast: { prefetchCap: 0 } }).drive(400, 10, 3000).prefetchSlots).toBe(4);
    const off = node({}, 'defaults: { forecastPrefetch: false }');
    expect(off.cell.settings.forecast.prefetchCap).toBe(0);
    const k = off.drive(400, 10, 3000);
    expect(k.prefetchSlots).toBe(4);
    // The forecast still goes up.
    expect(k.forecastRate).toBeGreaterThan(300);
  });

  it('recommends agents from the forecast: 400/s x 10 ms = 4 busy slots, 4 slots an agent at 70% -> 2', () => {
    const { cell, drive, load } = node();
    drive(400, 10, 3000);
    const [r] = cell.forecasts.recommendations(load());
    expect(r).toMatchObject({ kind: 'k', currentAgents: 2, recommendedAgents: 2, slotsPerAgent: 4, totalSlots: 8 });
    drive(1600, 10, 4000);
    expect(cell.forecasts.recommendations(load())[0]!.recommendedAgents).toBe(6); // 16 / 2.8
  });
});

describe('a parent aggregates its children', () => {
  const kind = (rate: number, serviceMs: number, total: number): KindCapacity => ({
    kind: 'k',
    freeSlots: 0,
    totalSlots: total,
    healthyAgents: total / 4,
    prefetchSlots: 0,
    queued: 0,
    preemptible: 0,
    forecastRate: rate,
    forecastServiceMs: serviceMs,
    largestFree: 0,
    largestTotal: 0,
    nodeFree: 0,
    speedServiceMs: [],
    speedSlots: [],
    speedFree: [],
    labelGroups: [],
    unknownLabelKeys: [],
    labelsKnown: false,
  });
  const child = (kinds: KindCapacity[], closed = false) => ({ closed, summary: { kinds } as unknown as Summary });

  it('sums rates, weighs service times by rate, ignores closed links, and carries it up', () => {
    const t = topo();
    const cell = new Cell(t, t.byPath.get('/')!, 1, { seed: 1, now: () => 0 });
    const links = new Map([
      ['/a', child([kind(100, 20, 8)])],
      ['/b', child([kind(300, 40, 16)])],
      ['/c', child([kind(1000, 1000, 4)], true)],
    ]);
    const capacity = new Map([['k', { free: 0, total: 24, healthy: 6 }]]);
    const load = () => ({ capacity, healthyAgents: 6, cpu: 0, memory: 0, latencyEwmaMs: 0, successEwma: 1 });
    cell.attach({ children: { links, load } as unknown as ChildLinks });
    expect(cell.forecasts.forKind('k')).toEqual({ rate: 400, serviceMs: 35 });
    const [k] = cell.summaries.build(1, 0, '').kinds;
    expect(k).toMatchObject({ forecastRate: 400, forecastServiceMs: 35, prefetchSlots: 0 });
    // 400/s x 35 ms = 14 busy slots; 4 slots an agent at 70%: 5.
    expect(cell.forecasts.recommendations(load())).toEqual([
      {
        kind: 'k',
        currentAgents: 6,
        recommendedAgents: 5,
        forecastRate: 400,
        forecastServiceMs: 35,
        slotsPerAgent: 4,
        totalSlots: 24,
      },
    ]);
  });
});
