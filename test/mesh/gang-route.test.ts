// Gangs above a node (src/mesh/gang-route.ts, docs/gang.md): the routing
// choice sends every member of a gang to ONE child with room for all of them,
// or none and gives back every credit it took, in every policy's picker; a
// child with room for the whole gang is found whatever the policy prefers for
// one member; members a parent sent wait at a cell until every member is
// queued there, then leave together to one child (or, at a node, to agents).
// Seeded fast-check (arbitraries.ts prints the seed on failure).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TaskSpec } from '../../src/gen/meshlb/v1/task.js';
import { createPolicy, listPolicies, makeCandidate, seededRandom } from '../../src/policies/index.js';
import type { Candidate, KindSlots, Picker } from '../../src/policies/index.js';
import { TaskQueue, type Popped } from '../../src/queue/index.js';
import { Ledger } from '../../src/mesh/ledger.js';
import { Gangs, type GangHost } from '../../src/mesh/gang.js';
import { GangRoute, gangNoChild, type GangPick } from '../../src/mesh/gang-route.js';
import { VirtualScheduler } from '../../src/mesh/virtual-scheduler.js';
import { FROM_PARENT, makeItem, routeKey, type WorkItem } from '../../src/mesh/types.js';
import { assertProperty } from '../policies/arbitraries.js';

const CONFIGS: Record<string, unknown> = { 'region-wrr': { blackoutPeriodMs: 0 } };

interface Child {
  /** Free slots per kind (absent: the child has no agent of the kind), and the most free at one agent. */
  readonly free: Partial<Record<'a' | 'b', number>>;
  readonly largest: number;
  /** The most free slots at one node below it (node_free), at most its free ones; absent: all at one node. */
  readonly node?: number;
}

/** A child cell as its summary shows it: credits and total slots per kind, the roomiest agent, the roomiest node. */
function childCandidate(id: string, c: Child): Candidate {
  const slots = new Map<string, KindSlots>();
  for (const [k, free] of Object.entries(c.free)) {
    const nodeFree = Math.min(free, c.node ?? free);
    slots.set(k, { free, total: free + 2, largestFree: Math.min(free, c.largest), largestTotal: 4, nodeFree });
  }
  return makeCandidate({ id, slots, healthyAgents: 2 });
}

interface Member {
  readonly kind: 'a' | 'b';
  readonly slots: number;
}

let seq = 0;
/** Members of one gang as a parent sends them (attempt 1, from the parent, home `/`). */
function gang(members: readonly Member[], id = 'g'): WorkItem[] {
  return members.map((m) => {
    const taskId = `t${++seq}`;
    const spec = TaskSpec.fromPartial({ kind: m.kind, slots: m.slots, gangId: id, gangSize: members.length });
    return makeItem(taskId, 1, '/', spec, FROM_PARENT, undefined, routeKey(taskId, 1), 1000, undefined, 0);
  });
}

const picks =
  (p: Picker): GangPick =>
  (m, exclude) =>
    p.pick({ kind: m.kind, priority: 'normal', slots: m.spec.slots, exclude });

/**
 * Whether `c` has room for every member: per kind their slots in its free ones, and the members of
 * several slots together within its roomiest agent's (a picker counts each one it sends against that
 * block, as it cannot know whether two blocks that big exist: src/policies/picker.ts).
 */
function room(c: Child, members: readonly Member[]): boolean {
  for (const k of ['a', 'b'] as const) {
    const of = members.filter((m) => m.kind === k);
    if (of.length === 0) continue;
    const free = c.free[k];
    if (free === undefined || of.reduce((s, m) => s + m.slots, 0) > Math.min(free, c.node ?? free)) return false;
    const big = of.filter((m) => m.slots > 1).reduce((s, m) => s + m.slots, 0);
    if (big > Math.min(free, c.largest)) return false;
  }
  return true;
}

const childArb = fc.record(
  {
    free: fc.record({ a: fc.integer({ min: 0, max: 6 }), b: fc.integer({ min: 0, max: 6 }) }, { requiredKeys: [] }),
    largest: fc.integer({ min: 1, max: 3 }),
    node: fc.integer({ min: 0, max: 6 }),
  },
  { requiredKeys: ['free', 'largest'] },
);
const memberArb = fc.record({ kind: fc.constantFrom<'a' | 'b'>('a', 'b'), slots: fc.integer({ min: 1, max: 2 }) });

describe('the routing choice above a node, in every policy', () => {
  for (const name of listPolicies()) {
    it(`${name}: every member to one child within its credits, or none and every credit back; a child with room is found`, () => {
      assertProperty(
        fc.property(
          fc.array(childArb, { minLength: 1, maxLength: 5 }),
          fc.array(memberArb, { minLength: 2, maxLength: 5 }),
          fc.integer(),
          (children, members, seed) => {
            const ids = children.map((_, i) => `/c${i}`);
            const cands = children.map((c, i) => childCandidate(ids[i]!, c));
            const p = createPolicy(name, CONFIGS[name], { random: seededRandom(seed) }).buildPicker(cands, 1_000_000);
            const before = [p.credits('a'), p.credits('b')];
            const items = gang(members);
            const placed = new GangRoute().pass(items, p, picks(p), () => cands);
            if (placed) {
              expect(placed.map(([m]) => m)).toEqual(items);
              const targets = new Set(placed.map(([, c]) => c));
              expect(targets.size).toBe(1);
              const c = children[ids.indexOf([...targets][0]!)]!;
              for (const k of ['a', 'b'] as const) {
                const used = members.filter((m) => m.kind === k).reduce((s, m) => s + m.slots, 0);
                expect(used).toBeLessThanOrEqual(Math.min(c.free[k] ?? 0, c.node ?? Infinity));
                expect(p.credits(k)).toBe(before[k === 'a' ? 0 : 1]! - used); // N members take N credits together
              }
            } else {
              expect([p.credits('a'), p.credits('b')]).toEqual(before);
              expect(children.some((c) => room(c, members))).toBe(false);
            }
          },
        ),
      );
    });
  }

  const build = (children: Record<string, Child>): [Picker, () => Candidate[]] => {
    const cands = Object.entries(children).map(([id, c]) => childCandidate(id, c));
    return [createPolicy('least-loaded', undefined, { random: seededRandom(1) }).buildPicker(cands, 0), () => cands];
  };

  it('goes past the child the policy prefers for one member to the one with room for all', () => {
    const [p, kids] = build({ '/big': { free: { a: 6 }, largest: 3 }, '/both': { free: { a: 1, b: 1 }, largest: 1 } });
    const items = gang([
      { kind: 'a', slots: 1 },
      { kind: 'b', slots: 1 },
    ]);
    const placed = new GangRoute().pass(items, p, picks(p), kids);
    expect(placed?.map(([, c]) => c)).toEqual(['/both', '/both']);
    expect(p.credits('a')).toBe(6);
  });

  it('goes only where one node below holds the gang, counting the gangs sent since the summary', () => {
    // /agg has credits for 6 but its roomiest node 2 free; /one a node with 3.
    const [p, kids] = build({
      '/agg': { free: { a: 6 }, largest: 1, node: 2 },
      '/one': { free: { a: 6 }, largest: 1, node: 3 },
    });
    const three = () =>
      gang([
        { kind: 'a', slots: 1 },
        { kind: 'a', slots: 1 },
        { kind: 'a', slots: 1 },
      ]);
    const route = new GangRoute();
    expect(route.pass(three(), p, picks(p), kids)?.map(([, c]) => c)).toEqual(['/one', '/one', '/one']);
    // The next gang of 3 before a new summary: /one's node is taken, /agg has none that holds it.
    expect(route.pass(three(), p, picks(p), kids)).toBeUndefined();
    expect(p.credits('a')).toBe(9);
  });

  it('never spreads a gang that no one child holds: 2 + 2 free over two children do not take 3', () => {
    const [p, kids] = build({ '/x': { free: { a: 2 }, largest: 2 }, '/y': { free: { a: 2 }, largest: 2 } });
    const items = gang([
      { kind: 'a', slots: 1 },
      { kind: 'a', slots: 1 },
      { kind: 'a', slots: 1 },
    ]);
    expect(new GangRoute().pass(items, p, picks(p), kids)).toBeUndefined();
    expect(p.credits('a')).toBe(4);
  });
});

describe('members a parent sent, at a cell', () => {
  function cell() {
    const scheduler = new VirtualScheduler(1000);
    const ledger = new Ledger({ retention: 100, defaultMaxAttempts: 3 });
    const queue = new TaskQueue<WorkItem>({ capacity: 100 });
    const host: GangHost = { ledger, leading: () => true, cancel: () => Promise.resolve(), warn: () => undefined };
    const gangs = new Gangs(host, queue, scheduler);
    /** One pump as the dispatcher's: every queued task of each kind popped, set aside ones put back per kind. */
    const pump = (p: Picker, targets?: () => readonly Candidate[]) => {
      gangs.pumping();
      const placed: [WorkItem, string][] = [];
      for (const kind of [...queue.kinds()]) {
        const parked: Popped<WorkItem>[] = [];
        for (let n = queue.sizeOfKind(kind); n > 0; n--) {
          const popped = queue.popKind(kind, scheduler.now());
          if (popped) placed.push(...gangs.place(popped, p, picks(p), parked, targets));
        }
        for (const x of parked) queue.requeue(x.task, x.enqueuedAt);
      }
      return placed;
    };
    return { queue, pump, scheduler };
  }

  it('wait until every member is queued here, then leave together to one child', () => {
    const c = cell();
    const items = gang([
      { kind: 'a', slots: 1 },
      { kind: 'a', slots: 1 },
      { kind: 'b', slots: 1 },
    ]);
    const cands = ['/c0', '/c1', '/c2'].map((id) => childCandidate(id, { free: { a: 4, b: 4 }, largest: 2 }));
    const p = createPolicy('round-robin', undefined, { random: seededRandom(3) }).buildPicker(cands, 0);
    const kids = () => cands;
    for (const it of items.slice(0, 2)) c.queue.push(it, 0);
    expect(c.pump(p, kids)).toHaveLength(0);
    expect(c.pump(p, kids)).toHaveLength(0);
    expect(items[0]!.waitingFor).toBe('for its gang (2 of 3 members queued here)');
    expect(p.credits('a')).toBe(12);
    c.queue.push(items[2]!, 0);
    const placed = c.pump(p, kids);
    expect(placed.map(([m]) => m.kind).sort()).toEqual(['a', 'a', 'b']);
    expect(new Set(placed.map(([, t]) => t)).size).toBe(1);
    expect(c.queue.size).toBe(0);
  });

  it('wait whole, saying why, when no child holds them all; leave once one does', () => {
    const c = cell();
    const items = gang([
      { kind: 'a', slots: 1 },
      { kind: 'a', slots: 1 },
    ]);
    for (const it of items) c.queue.push(it, 0);
    // Credits for 3 at /c0 (free and prefetch), but no node below it with 2 free; 1 at /c1.
    const small = [
      childCandidate('/c0', { free: { a: 3 }, largest: 1, node: 1 }),
      childCandidate('/c1', { free: { a: 1 }, largest: 1 }),
    ];
    const tight = createPolicy('least-loaded', undefined, { random: seededRandom(1) }).buildPicker(small, 0);
    for (let i = 0; i < 3; i++) expect(c.pump(tight, () => small)).toHaveLength(0);
    expect(c.queue.size).toBe(2);
    for (const it of items) expect(it.waitingFor).toBe(gangNoChild(2));
    expect(tight.credits('a')).toBe(4);
    const room = [
      childCandidate('/c0', { free: { a: 3 }, largest: 1, node: 1 }),
      childCandidate('/c1', { free: { a: 2 }, largest: 1 }),
    ];
    const roomy = createPolicy('least-loaded', undefined, { random: seededRandom(1) }).buildPicker(room, 0);
    expect(c.pump(roomy, () => room).map(([, t]) => t)).toEqual(['/c1', '/c1']);
  });

  it('at a node (no children), go to agents all together or not at all', () => {
    const c = cell();
    const items = gang([
      { kind: 'a', slots: 1 },
      { kind: 'a', slots: 1 },
    ]);
    for (const it of items) c.queue.push(it, 0);
    const agents = (free: number[]) =>
      createPolicy('least-loaded', undefined, { random: seededRandom(1) }).buildPicker(
        free.map((f, i) => makeCandidate({ id: `ag${i}`, slots: { a: [f, 1] } })),
        0,
      );
    for (let i = 0; i < 3; i++) expect(c.pump(agents([1, 0]))).toHaveLength(0);
    expect(items[0]!.waitingFor).toBe('for its gang (1 of 2 members placeable)');
    expect(
      c
        .pump(agents([1, 1]))
        .map(([, t]) => t)
        .sort(),
    ).toEqual(['ag0', 'ag1']);
  });

  it('two gangs under one id from two homes are two gangs', () => {
    const c = cell();
    const one = gang([
      { kind: 'a', slots: 1 },
      { kind: 'a', slots: 1 },
    ]);
    const otherHome = TaskSpec.fromPartial({ kind: 'a', gangId: 'g', gangSize: 2 });
    const stranger = makeItem('s1', 1, '/elsewhere', otherHome, FROM_PARENT, undefined, 's1#1', 1000, undefined, 0);
    c.queue.push(one[0]!, 0);
    c.queue.push(stranger, 0);
    const cands = [childCandidate('/c0', { free: { a: 4 }, largest: 1 })];
    const p = createPolicy('least-loaded', undefined, { random: seededRandom(1) }).buildPicker(cands, 0);
    const kids = () => cands;
    for (let i = 0; i < 3; i++) expect(c.pump(p, kids)).toHaveLength(0);
    c.queue.push(one[1]!, 0);
    let placed: [WorkItem, string][] = [];
    for (let i = 0; i < 3 && placed.length === 0; i++) placed = c.pump(p, kids);
    expect(placed.map(([m]) => m.taskId).sort()).toEqual(one.map((m) => m.taskId).sort());
    expect(c.queue.size).toBe(1);
  });
});
