// Tasks of several slots (TaskSpec.slots, docs/gang.md) in every policy's
// picker: a route of N slots only where N are free at one agent, never more
// slots used than an agent has, best fit, and wait (queue) versus spill-up
// exactly as the agents' sizes say. Seeded fast-check (arbitraries.ts prints
// the seed on failure).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createPolicy, listPolicies, makeCandidate, seededRandom } from '../../src/policies/index.js';
import type { Candidate, KindSlots } from '../../src/policies/index.js';
import { assertProperty } from './arbitraries.js';
import { cand, picker, task } from './helpers.js';

const CONFIGS: Record<string, unknown> = { 'region-wrr': { blackoutPeriodMs: 0 } };

interface AgentShape {
  readonly slots: number;
  readonly used: number;
  readonly kinds: readonly ('a' | 'b')[];
}

const agentArb = fc
  .record({
    slots: fc.integer({ min: 1, max: 8 }),
    usedShare: fc.double({ min: 0, max: 1, noNaN: true }),
    kinds: fc.constantFrom<readonly ('a' | 'b')[]>(['a'], ['b'], ['a', 'b']),
  })
  .map(({ slots, usedShare, kinds }) => ({ slots, used: Math.floor(usedShare * slots), kinds }));

/** As AgentSessions.candidates builds them: one pool of slots for all an agent's kinds (its used held by 'a'). */
function agentCandidate(id: string, a: AgentShape): Candidate {
  const slots = new Map<string, KindSlots>();
  const shared = { free: a.slots - a.used, total: a.slots };
  if (a.kinds.length === 1) slots.set(a.kinds[0]!, shared);
  else for (const k of a.kinds) slots.set(k, { free: a.slots - (k === 'a' ? a.used : 0), total: a.slots });
  return makeCandidate({ id, slots, ...(a.kinds.length > 1 ? { sharedSlots: shared } : {}) });
}

const op = fc.oneof(
  fc.record({
    type: fc.constant('pick' as const),
    kind: fc.constantFrom('a', 'b'),
    slots: fc.integer({ min: 1, max: 6 }),
  }),
  fc.record({ type: fc.constant('release' as const), which: fc.nat() }),
);

describe('tasks of several slots, in every policy', () => {
  for (const name of listPolicies()) {
    it(`${name}: never more slots than an agent has; routes exactly when some agent has the slots free; queue vs spill by size`, () => {
      assertProperty(
        fc.property(
          fc.array(agentArb, { minLength: 1, maxLength: 6 }),
          fc.array(op, { minLength: 1, maxLength: 60 }),
          fc.integer(),
          (agents, ops, seed) => {
            const ids = agents.map((_, i) => `ag${i}`);
            const p = createPolicy(name, CONFIGS[name], { random: seededRandom(seed) }).buildPicker(
              agents.map((a, i) => agentCandidate(ids[i]!, a)),
              1_000_000,
            );
            const used = agents.map((a) => a.used);
            const routed: { i: number; kind: string; slots: number }[] = [];
            for (const o of ops) {
              if (o.type === 'release') {
                if (routed.length === 0) continue;
                const [r] = routed.splice(o.which % routed.length, 1);
                used[r!.i]! -= r!.slots;
                p.release(ids[r!.i]!, r!.kind, r!.slots);
                continue;
              }
              const serving = agents.map((_, i) => i).filter((i) => agents[i]!.kinds.includes(o.kind as 'a'));
              const fits = serving.filter((i) => agents[i]!.slots - used[i]! >= o.slots);
              const r = p.pick(task(o.kind, { slots: o.slots }));
              if (r.type === 'route') {
                const i = ids.indexOf(r.candidate);
                expect(fits).toContain(i);
                if (o.slots > 1) {
                  // Best fit: no other agent that fits had fewer free slots.
                  for (const j of fits)
                    expect(agents[j]!.slots - used[j]!).toBeGreaterThanOrEqual(agents[i]!.slots - used[i]!);
                }
                used[i]! += o.slots;
                expect(used[i]!).toBeLessThanOrEqual(agents[i]!.slots);
                routed.push({ i, kind: o.kind, slots: o.slots });
              } else if (o.slots > 1) {
                expect(fits).toEqual([]);
                const big = serving.some((i) => agents[i]!.slots >= o.slots);
                expect(r.type).toBe(serving.length === 0 ? 'spillUp' : big ? 'queue' : 'spillUp');
                if (serving.length > 0)
                  expect(r.reason).toBe(big ? `no agent with ${o.slots} free slots` : `no agent with ${o.slots} slots`);
              } else {
                expect(fits).toEqual([]);
              }
            }
          },
        ),
        150,
      );
    });
  }
});

describe('tasks of several slots at a cell (children report their largest free block)', () => {
  // Child /x has 8 free, spread over agents of 2 free each; /y has 4 free, all on one agent.
  const x = cand('/x', { slots: { a: { free: 8, total: 16, largestFree: 2, largestTotal: 4 } } });
  const y = cand('/y', { slots: { a: { free: 4, total: 8, largestFree: 4, largestTotal: 4 } } });

  for (const name of listPolicies()) {
    it(`${name}: a 4-slot task goes only where 4 are free at one agent, once; then it waits; 1-slot tasks still go`, () => {
      const p = picker(name, [x, y], CONFIGS[name]);
      expect(p.pick(task('a', { slots: 4 }))).toEqual({ type: 'route', candidate: '/y' });
      // /y's block is taken: /x still has 8 free, but no agent with 4 of them.
      expect(p.pick(task('a', { slots: 4 }))).toEqual({ type: 'queue', reason: 'no agent with 4 free slots' });
      expect(p.credits('a')).toBe(8);
      expect(p.pick(task('a'))).toMatchObject({ type: 'route' });
    });
  }

  it('spills up when no child has an agent that big', () => {
    expect(picker('zone-least-conn', [x, y]).pick(task('a', { slots: 5 }))).toEqual({
      type: 'spillUp',
      reason: 'no agent with 5 slots',
    });
  });

  it('peers that report no largest block: free and total stand in', () => {
    const old = cand('/old', { slots: { a: [4, 4] } });
    const p = picker('zone-least-conn', [old]);
    expect(p.pick(task('a', { slots: 4 }))).toEqual({ type: 'route', candidate: '/old' });
    expect(p.pick(task('a', { slots: 1 }))).toEqual({ type: 'queue', reason: 'all candidates of the kind are full' });
  });
});
