// The node's side of tasks of several slots (docs/gang.md): slots in use
// summed by cost (slot-map.ts), the largest free block and largest agent per
// kind kept incrementally (agent-capacity.ts) and matching a brute-force
// count, and the hold that keeps a big task from starving (slot-hold.ts).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AgentCapacity } from '../../src/mesh/agent-capacity.js';
import type { AgentSession } from '../../src/mesh/agent-session.js';
import { HOLD_AFTER_MS, HOLD_MS, SlotHolds } from '../../src/mesh/slot-hold.js';
import { SlotMap, slotsOf } from '../../src/mesh/slot-map.js';
import type { WorkItem } from '../../src/mesh/types.js';

const SEED = Number(process.env.FC_SEED ?? 4242);

function check<T>(prop: fc.IProperty<T>, numRuns = 200): void {
  try {
    fc.assert(prop, { seed: SEED, numRuns });
  } catch (e) {
    console.error(`property failed; replay with FC_SEED=${SEED}`);
    throw e;
  }
}

describe('SlotMap', () => {
  it('used is the sum of the costs of its entries through set, overwrite, delete and clear', () => {
    const m = new SlotMap<number>((v) => v);
    m.set('a', 4).set('b', 1).set('a', 2);
    expect(m.used).toBe(3);
    expect(m.delete('a')).toBe(true);
    expect(m.delete('a')).toBe(false);
    expect(m.used).toBe(1);
    m.clear();
    expect(m.used).toBe(0);
    // Past its table's first size (it grows at half full, re-inserting every entry): counted once each.
    for (let i = 0; i < 40; i++) m.set(`k${i}`, 1 + (i % 3));
    expect(m.used).toBe(79);
    expect(m.size).toBe(40);
  });

  it('slotsOf: 0 means 1', () => {
    expect(slotsOf({ slots: 0 })).toBe(1);
    expect(slotsOf({ slots: 4 })).toBe(4);
  });
});

/** What AgentCapacity reads of a session, mutable. */
interface FakeSession {
  dead: boolean;
  draining: boolean;
  kinds: readonly string[];
  slots: number;
  inFlight: number;
}

const opArb = fc.oneof(
  fc.record({ t: fc.constant('take' as const), i: fc.nat(), n: fc.integer({ min: 1, max: 5 }) }),
  fc.record({ t: fc.constant('free' as const), i: fc.nat(), n: fc.integer({ min: 1, max: 5 }) }),
  fc.record({ t: fc.constant('drain' as const), i: fc.nat() }),
  fc.record({ t: fc.constant('die' as const), i: fc.nat() }),
);

describe('AgentCapacity: largest free block and largest agent per kind', () => {
  it('match a brute-force count over the live agents after any sequence of takes, frees, drains and deaths', () => {
    check(
      fc.property(
        fc.array(
          fc.record({
            slots: fc.integer({ min: 1, max: 8 }),
            kinds: fc.constantFrom(['a'], ['b'], ['a', 'b']),
          }),
          { minLength: 1, maxLength: 8 },
        ),
        fc.array(opArb, { maxLength: 80 }),
        (shapes, ops) => {
          const cap = new AgentCapacity();
          const agents: FakeSession[] = shapes.map((s) => ({ ...s, dead: false, draining: false, inFlight: 0 }));
          for (const a of agents) cap.account(a as unknown as AgentSession, 1);
          for (const o of ops) {
            const a = agents[o.i % agents.length]!;
            const s = a as unknown as AgentSession;
            if (o.t === 'take' && !a.dead && a.inFlight + o.n <= a.slots) {
              a.inFlight += o.n;
              cap.slotsTaken(s, o.n);
            } else if (o.t === 'free' && !a.dead && a.inFlight >= o.n) {
              a.inFlight -= o.n;
              cap.slotsTaken(s, -o.n);
            } else if (o.t === 'drain' && !a.dead) {
              cap.update(s, () => (a.draining = !a.draining));
            } else if (o.t === 'die' && !a.dead) {
              cap.account(s, -1);
              a.dead = true;
            }
            for (const kind of ['a', 'b']) {
              const live = agents.filter((x) => !x.dead && x.kinds.includes(kind));
              const free = Math.max(0, ...live.filter((x) => !x.draining).map((x) => x.slots - x.inFlight));
              const total = Math.max(0, ...live.map((x) => x.slots));
              expect(cap.largest(kind)).toEqual({ free, total });
              const c = cap.byKind.get(kind);
              if (live.length > 0)
                expect(c!.free).toBe(live.filter((x) => !x.draining).reduce((n, x) => n + x.slots - x.inFlight, 0));
            }
          }
        },
      ),
    );
  });
});

function item(id: string, slots: number, arrivedMs: number): WorkItem {
  return { id, kind: 'k', spec: { slots }, arrivedMs } as unknown as WorkItem;
}

describe('SlotHolds: a big task that waited holds its kind, for a bounded time', () => {
  it('holds smaller tasks after HOLD_AFTER_MS, ends when the big one is placed', () => {
    const h = new SlotHolds();
    const big = item('big', 4, 0);
    const small = item('s', 1, 0);
    h.waited(big, HOLD_AFTER_MS - 1);
    expect(h.held(small, HOLD_AFTER_MS - 1)).toBe(0);
    h.waited(big, HOLD_AFTER_MS);
    expect(h.held(small, HOLD_AFTER_MS)).toBe(4);
    expect(h.held(big, HOLD_AFTER_MS)).toBe(0);
    expect(h.held(item('bigger', 4, 0), HOLD_AFTER_MS)).toBe(0);
    // Sent on: the hold ends.
    (big as { via: unknown }).via = { type: 'agent', agentId: 'a' };
    expect(h.held(small, HOLD_AFTER_MS + 1)).toBe(0);
    expect(h.size).toBe(0);
  });

  it('a hold lapses after HOLD_MS, and the kind is not held again for HOLD_MS', () => {
    const h = new SlotHolds();
    const big = item('big', 4, 0);
    const small = item('s', 1, 0);
    h.waited(big, HOLD_AFTER_MS);
    const end = HOLD_AFTER_MS + HOLD_MS;
    expect(h.held(small, end - 1)).toBe(4);
    expect(h.held(small, end)).toBe(0);
    h.waited(big, end + 1);
    expect(h.held(small, end + 1)).toBe(0);
    h.waited(big, end + HOLD_MS);
    expect(h.held(small, end + HOLD_MS)).toBe(4);
  });
});
