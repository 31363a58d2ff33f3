// node-score's picker kept up to date (Picker.update) against one freshly
// built from the same figures: after any sequence of agent joins, leaves,
// heartbeats, assignments and completions, the live picker picks an agent of
// the best score (the one a fresh picker would pick, or an equally scored
// one), its credits are a fresh picker's, and its explanations list the best
// scores. The agents are modelled the way AgentSessions keeps them
// (src/mesh/agent-candidate.ts builds the same candidates).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  createPolicy,
  makeCandidate,
  NODE_SCORE_DEFAULTS,
  seededRandom,
  UNMEASURED_SPEEDUP,
  type Candidate,
  type Picker,
} from '../../src/policies/index.js';
import { assertProperty } from './arbitraries.js';
import { task } from './helpers.js';

interface Agent {
  id: string;
  kinds: readonly string[];
  slots: number;
  held: Map<string, number>;
  lat: number;
  /** Per kind, for an agent of several (agent-speed.ts kindLatencyOf); absent: not measured. */
  kindLat: Map<string, number>;
  succ: number;
  cpu: number;
  mem: number;
}

/** An agent that has run nothing yet: no latency measured, every attempt a success. */
const freshAgent = (id: string, kinds: readonly string[], slots: number): Agent => ({
  id,
  kinds,
  slots,
  held: new Map(),
  lat: 0,
  kindLat: new Map(),
  succ: 1,
  cpu: 0,
  mem: 0,
});

const inFlight = (a: Agent): number => [...a.held.values()].reduce((x, y) => x + y, 0);

/** As src/mesh/agent-candidate.ts builds an agent's candidate. */
function candidateOf(a: Agent): Candidate {
  const free = Math.max(0, a.slots - inFlight(a));
  const slots: Record<string, { free: number; total: number; latencyEwmaMs?: number }> = {};
  for (const k of a.kinds)
    slots[k] =
      a.kinds.length === 1
        ? { free, total: a.slots }
        : { free: a.slots - (a.held.get(k) ?? 0), total: a.slots, latencyEwmaMs: a.kindLat.get(k) ?? 0 };
  return makeCandidate({
    id: a.id,
    slots,
    ...(a.kinds.length > 1 ? { sharedSlots: [free, a.slots] as const } : {}),
    active: inFlight(a),
    utilization: { cpu: a.cpu, memory: a.mem },
    latencyEwmaMs: a.lat,
    successEwma: a.succ,
  });
}

/** node-score's expected delay written out from its formula (default config); trial: no latency data. */
function refDelay(agents: readonly Agent[], a: Agent, kind: string): number {
  const d = NODE_SCORE_DEFAULTS;
  const measured = agents.map((x) => x.lat).filter((l) => l > 0);
  const prior = measured.length ? Math.min(...measured) * UNMEASURED_SPEEDUP : d.latencyRefMs;
  const trialMs = measured.length ? Math.max(...measured) : d.latencyRefMs;
  // A measured agent's time of the kind, else its own; the unmeasured the prior.
  const t = a.lat > 0 ? (a.kindLat.get(kind) ?? a.lat) : prior;
  const st = (t / Math.max(d.minSuccess, a.succ)) * (1 + d.cpu * a.cpu + d.memory * a.mem);
  const credit = Math.min(
    a.slots - (a.kinds.length > 1 ? (a.held.get(kind) ?? 0) : inFlight(a)),
    a.slots - inFlight(a),
  );
  const busy = a.slots - credit;
  return st * (1 + d.load * (busy / a.slots)) + (a.lat > 0 ? 0 : busy * trialMs);
}

const eligible = (agents: readonly Agent[], kind: string, exclude?: string): Agent[] =>
  agents.filter(
    (a) =>
      a.kinds.includes(kind) &&
      a.id !== exclude &&
      inFlight(a) < a.slots &&
      (a.kinds.length === 1 || (a.held.get(kind) ?? 0) < a.slots),
  );

const close = (x: number, y: number): boolean => Math.abs(x - y) <= 1e-9 * Math.max(1, Math.abs(x), Math.abs(y));

type Op =
  | { op: 'join'; kinds: readonly string[]; slots: number }
  | { op: 'leave'; who: number }
  | { op: 'beat'; who: number; cpu: number; mem: number }
  | { op: 'pick'; kind: string; excl: boolean }
  | { op: 'done'; who: number; lat: number; ok: boolean };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant('join' as const),
      kinds: fc.constantFrom(['a'], ['b'], ['a', 'b']),
      slots: fc.integer({ min: 1, max: 4 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('leave' as const), who: fc.nat(50) }) },
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant('beat' as const),
      who: fc.nat(50),
      cpu: fc.constantFrom(0, 0.2, 0.5, 1),
      mem: fc.constantFrom(0, 0.5),
    }),
  },
  {
    weight: 8,
    arbitrary: fc.record({ op: fc.constant('pick' as const), kind: fc.constantFrom('a', 'b'), excl: fc.boolean() }),
  },
  {
    weight: 5,
    arbitrary: fc.record({
      op: fc.constant('done' as const),
      who: fc.nat(50),
      lat: fc.constantFrom(5, 10, 10, 20, 40),
      ok: fc.boolean(),
    }),
  },
);

describe('node-score kept up to date (update) against a fresh picker', () => {
  it('picks a best-scoring agent, with a fresh picker credits and explanations, through any sequence', () => {
    assertProperty(
      fc.property(
        fc.array(opArb, { minLength: 1, maxLength: 120 }),
        fc.integer({ min: 1, max: 12 }),
        fc.nat(),
        (ops, n0, seed) => {
          const policy = createPolicy('node-score', undefined, { random: seededRandom(seed) });
          const agents: Agent[] = [];
          let next = 0;
          const join = (kinds: readonly string[], slots: number): void => {
            agents.push(freshAgent(`a${next++}`, kinds, slots));
          };
          for (let i = 0; i < n0; i++) join(i % 3 === 2 ? ['a', 'b'] : [i % 2 ? 'b' : 'a'], 1 + (i % 4));
          const build = (): Picker => policy.buildPicker(agents.map(candidateOf), 0);
          let live = build();
          const update = (a: Agent): void => expect(live.update!(candidateOf(a))).toBe(true);
          for (const o of ops) {
            const a = agents.length > 0 && 'who' in o ? agents[o.who % agents.length]! : undefined;
            if (o.op === 'join' || (o.op === 'leave' && a)) {
              // Agents coming and going rebuild the picker (the dispatcher does the same).
              if (o.op === 'join') {
                join(o.kinds, o.slots);
                expect(live.update!(candidateOf(agents[agents.length - 1]!))).toBe(false);
              } else agents.splice(agents.indexOf(a!), 1);
              live = build();
            } else if (o.op === 'beat' && a) {
              a.cpu = o.cpu;
              a.mem = o.mem;
              update(a);
            } else if (o.op === 'done' && a) {
              const kind = [...a.held.entries()].find(([, n]) => n > 0)?.[0];
              if (kind === undefined) continue;
              a.held.set(kind, a.held.get(kind)! - 1);
              a.lat = o.lat;
              // Kinds of one agent that run for different times: b three times a's (a mix in a.lat).
              if (a.kinds.length > 1) a.kindLat.set(kind, kind === 'b' ? 3 * o.lat : o.lat / 2);
              a.succ = o.ok ? 1 : 0.5;
              // As AgentSessions does: the freed slot back to the picker, then the new figures.
              live.release(a.id, kind);
              update(a);
            } else if (o.op === 'pick') {
              const excl = o.excl && agents.length > 1 ? agents[0]!.id : undefined;
              const t = task(o.kind, excl ? { exclude: [excl] } : {});
              const ok = eligible(agents, o.kind, excl);
              const best = Math.min(...ok.map((x) => refDelay(agents, x, o.kind)));
              const fresh = build();
              const r = live.pick(t);
              const f = fresh.pick(t);
              expect(r.type).toBe(f.type);
              if (r.type !== 'route' || f.type !== 'route') continue;
              const chosen = agents.find((x) => x.id === r.candidate)!;
              expect(ok).toContain(chosen);
              expect(close(refDelay(agents, chosen, o.kind), best)).toBe(true);
              expect(
                close(
                  refDelay(
                    agents,
                    agents.find((x) => x.id === f.candidate)!,
                    o.kind,
                  ),
                  best,
                ),
              ).toBe(true);
              if (!excl) {
                // Explained from the index (no scan): the chosen one first, the best others after it.
                const e = live.explain(t, chosen.id, 4);
                expect(e.eligible).toBe(ok.length);
                expect(e.candidates[0]!.id).toBe(chosen.id);
                expect(close(e.candidates[0]!.score, best)).toBe(true);
                const others = ok
                  .filter((x) => x !== chosen)
                  .map((x) => refDelay(agents, x, o.kind))
                  .sort((x, y) => x - y);
                const listed = e.candidates
                  .slice(1)
                  .filter((c) => c.eligible)
                  .map((c) => c.score);
                expect(listed.length).toBe(Math.min(3, others.length));
                listed.forEach((s, i) => expect(close(s, others[i]!)).toBe(true));
              }
              chosen.held.set(o.kind, (chosen.held.get(o.kind) ?? 0) + 1);
            }
            const fresh = build();
            for (const k of ['a', 'b']) expect(live.credits(k)).toBe(fresh.credits(k));
          }
        },
      ),
      300,
    );
  });

  it('refuses what only a rebuild can take: an unknown agent, a draining one, other kinds', () => {
    const a = freshAgent('x', ['a'], 2);
    const p = createPolicy('node-score', undefined, { random: seededRandom(1) }).buildPicker([candidateOf(a)], 0);
    expect(p.update!(makeCandidate({ id: 'y', slots: { a: [1, 1] } }))).toBe(false);
    expect(p.update!(makeCandidate({ id: 'x', slots: { a: [2, 2] }, draining: true }))).toBe(false);
    expect(p.update!(makeCandidate({ id: 'x', slots: { b: [2, 2] } }))).toBe(false);
    // Refused: nothing changed.
    expect(p.credits('a')).toBe(2);
    expect(p.update!(makeCandidate({ id: 'x', slots: { a: [1, 2] }, latencyEwmaMs: 3 }))).toBe(true);
    expect(p.credits('a')).toBe(1);
  });
});
