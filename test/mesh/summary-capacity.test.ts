// What a node cell reports upward about its agents' slots (issue 8): the
// prefetch a node offers on top of its agents' free slots (prefetchRatio)
// must never make a summary claim more free slots than there are slots. Two
// idle agents of 4 slots were reported as `freeSlots: 12, totalSlots: 8`.
// The parent's credit (free + prefetch) is what it was: only the report changed.
import { describe, expect, it } from 'vitest';
import type { AgentSession } from '../../src/mesh/agent-session.js';
import { AgentCapacity } from '../../src/mesh/agent-capacity.js';
import type { AgentSessions } from '../../src/mesh/agent-sessions.js';
import { Cell } from '../../src/mesh/cell.js';
import type { ChildLinks } from '../../src/mesh/child-links.js';
import { FROM_PARENT, makeItem } from '../../src/mesh/types.js';
import { TaskSpec } from '../../src/gen/meshlb/v1/task.js';
import { parseTopology } from '../../src/topology/parse.js';

const TOPO = parseTopology(`
name: unit
addressing: { host: 127.0.0.1, basePort: 7000 }
cells: { name: / }
`);

/** Just what AgentCapacity reads of a session. */
function agent(slots: number, inFlight = 0): AgentSession {
  return { dead: false, draining: false, kinds: ['k'], slots, inFlight } as unknown as AgentSession;
}

function nodeWith(agents: AgentSession[], prefetchRatio?: number) {
  const capacity = new AgentCapacity();
  for (const a of agents) capacity.account(a, 1);
  const cell = new Cell(TOPO, TOPO.byPath.get('/')!, 1, {
    seed: 1,
    ...(prefetchRatio !== undefined ? { prefetchRatio } : {}),
  });
  const side = {
    load: () => ({
      capacity: capacity.byKind,
      largest: (kind: string) => capacity.largest(kind),
      healthyAgents: agents.length,
      cpu: 0,
      memory: 0,
      latencyEwmaMs: 0,
      successEwma: 1,
    }),
  };
  cell.attach({ agents: side as unknown as AgentSessions });
  return cell.summaries.build(1, 0, '').kinds;
}

describe('a node summary never reports more free slots than slots', () => {
  it('two idle agents of 4 slots: 8 free of 8, and the prefetch (half the slots by default) apart', () => {
    expect(nodeWith([agent(4), agent(4)])).toEqual([
      // The roomiest agent has 4 free of its 4 (a task of 5 slots cannot go there).
      {
        kind: 'k',
        freeSlots: 8,
        totalSlots: 8,
        healthyAgents: 2,
        prefetchSlots: 4,
        queued: 0,
        preemptible: 0,
        forecastRate: 0,
        forecastServiceMs: 0,
        largestFree: 4,
        largestTotal: 4,
        // A gang of up to 8 (docs/gang.md) fits this node: its free slots, without the prefetch.
        nodeFree: 8,
        // This stand-in for the agents reports no speeds (node-completion.ts does for real sessions).
        speedServiceMs: [],
        speedSlots: [],
        speedFree: [],
        labelGroups: [],
        unknownLabelKeys: [],
        labelsKnown: false,
      },
    ]);
    expect(nodeWith([agent(4), agent(4)], 1)[0]).toMatchObject({ freeSlots: 8, totalSlots: 8, prefetchSlots: 8 });
    expect(nodeWith([agent(4), agent(4)], 0)[0]).toMatchObject({ freeSlots: 8, totalSlots: 8, prefetchSlots: 0 });
  });

  it('the credit (free + prefetch) is the free agent slots plus the prefetch; free stays within the slots', () => {
    for (const [inFlight, credit] of [
      [[4, 4], 4],
      [[3, 4], 5],
      [[1, 1], 10],
      [[0, 2], 10],
    ] as const) {
      const [k] = nodeWith(inFlight.map((n) => agent(4, n)));
      expect(k!.freeSlots + k!.prefetchSlots).toBe(credit);
      expect(k!.freeSlots).toBeLessThanOrEqual(k!.totalSlots);
    }
  });
});

describe('node_free: the most free slots at one node below, for gangs (docs/gang.md)', () => {
  it("a node reports its agents' free slots without the prefetch; a cell above, its roomiest node's less what it holds queued", () => {
    // 3 free at the agents; the credit offers the prefetch too (6 of 6), node_free does not.
    expect(nodeWith([agent(4, 1), agent(2, 2)])[0]).toMatchObject({ freeSlots: 6, nodeFree: 3 });
    const cell = new Cell(TOPO, TOPO.byPath.get('/')!, 1, { seed: 1 });
    const side = {
      links: new Map(),
      load: () => ({
        capacity: new Map([['k', { free: 10, total: 12, healthy: 3 }]]),
        nodeFree: (kind: string) => (kind === 'k' ? 5 : 0),
        healthyAgents: 3,
        cpu: 0,
        memory: 0,
        latencyEwmaMs: 0,
        successEwma: 1,
      }),
    };
    cell.attach({ children: side as unknown as ChildLinks });
    const spec = TaskSpec.fromPartial({ kind: 'k' });
    for (const id of ['a', 'b'])
      cell.queue.push(makeItem(id, 1, '/x', spec, FROM_PARENT, undefined, `${id}#1`, 1000, undefined, 0), 0);
    expect(cell.summaries.build(1, 0, '').kinds[0]).toMatchObject({ nodeFree: 3 });
  });
});

describe('kinds judged and not sent are refilled, never a summary that went out', () => {
  it('a recycled list is filled with the new figures; one not recycled is left as it was', () => {
    const cell = new Cell(TOPO, TOPO.byPath.get('/')!, 1, { seed: 1 });
    let capacity = new Map([
      ['a', { free: 2, total: 4, healthy: 1 }],
      ['b', { free: 3, total: 4, healthy: 1 }],
    ]);
    const side = {
      links: new Map(),
      load: () => ({ capacity, healthyAgents: 2, cpu: 0, memory: 0, latencyEwmaMs: 0, successEwma: 1 }),
    };
    cell.attach({ children: side as unknown as ChildLinks });
    const s = cell.summaries;
    const judged = s.kinds(s.load(0), 0);
    expect(judged.map((k) => [k.kind, k.freeSlots])).toEqual([
      ['a', 2],
      ['b', 3],
    ]);
    s.recycle(judged);
    capacity = new Map([['b', { free: 1, total: 4, healthy: 1 }]]);
    const again = s.kinds(s.load(0), 0);
    expect(again).toBe(judged);
    expect(again.map((k) => [k.kind, k.freeSlots, k.speedServiceMs])).toEqual([['b', 1, []]]);
    // Sent (not recycled): the next judgement builds its own.
    const sent = s.build(1, 0, '').kinds;
    capacity = new Map([['b', { free: 4, total: 4, healthy: 1 }]]);
    expect(s.kinds(s.load(0), 0)).not.toBe(sent);
    expect(sent[0]!.freeSlots).toBe(1);
  });
});
