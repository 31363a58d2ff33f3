// Shared generators and a reference model of eligibility for policy tests.

import fc from 'fast-check';
import { makeCandidate } from '../../src/policies/candidate.js';
import type { Candidate, Label, TaskInfo } from '../../src/policies/types.js';
import { PRIORITIES } from '../../src/queue/priority.js';

/** Seed for every property; override with FC_SEED=<n> to replay a failure. */
export const SEED = process.env['FC_SEED'] !== undefined ? Number(process.env['FC_SEED']) : 20261122;

/** fc.assert with the seed fixed and printed on failure. */
export function assertProperty<Ts>(prop: fc.IProperty<Ts>, numRuns = 200): void {
  try {
    fc.assert(prop, { seed: SEED, numRuns });
  } catch (e) {
    console.error(`property failed; replay with FC_SEED=${SEED}`);
    throw e;
  }
}

export const KINDS = ['a', 'b', 'c'] as const;
/** 'd' is a kind no candidate ever has. */
export const TASK_KINDS = ['a', 'b', 'c', 'd'] as const;
const LABELS: readonly Label[] = [
  { key: 'region', value: 'eu' },
  { key: 'region', value: 'us' },
  { key: 'gpu', value: 'a100' },
  { key: 'zone', value: 'z1' },
];

const slotArb = fc.record({ free: fc.integer({ min: -1, max: 5 }), total: fc.integer({ min: 0, max: 4 }) });

const candidateBody = fc.record({
  slots: fc.dictionary(fc.constantFrom(...KINDS), slotArb, { maxKeys: 3 }),
  shared: fc.option(slotArb, { nil: undefined }),
  labels: fc.subarray([...LABELS]),
  draining: fc.integer({ min: 0, max: 4 }).map((x) => x === 0),
  active: fc.nat(20),
  queueDepth: fc.nat(20),
  cpu: fc.double({ min: 0, max: 1, noNaN: true }),
  memory: fc.double({ min: 0, max: 1, noNaN: true }),
  latencyEwmaMs: fc.double({ min: 0, max: 1000, noNaN: true }),
  successEwma: fc.double({ min: 0, max: 1, noNaN: true }),
  cost: fc.option(fc.double({ min: 0, max: 10, noNaN: true }), { nil: undefined }),
  rtt: fc.option(fc.double({ min: 0, max: 300, noNaN: true }), { nil: undefined }),
  qps: fc.option(fc.double({ min: 0, max: 500, noNaN: true }), { nil: undefined }),
  summaryAgeMs: fc.nat(1000),
});

export const candidatesArb: fc.Arbitrary<Candidate[]> = fc.array(candidateBody, { maxLength: 8 }).map((bodies) =>
  bodies.map((b, i) =>
    makeCandidate({
      id: `c${i}`,
      slots: Object.fromEntries(Object.entries(b.slots).map(([k, s]) => [k, s])),
      labels: b.labels,
      draining: b.draining,
      active: b.active,
      queueDepth: b.queueDepth,
      utilization: { cpu: b.cpu, memory: b.memory },
      latencyEwmaMs: b.latencyEwmaMs,
      successEwma: b.successEwma,
      summaryAgeMs: b.summaryAgeMs,
      ...(b.shared !== undefined ? { sharedSlots: b.shared } : {}),
      ...(b.cost !== undefined ? { costPerTask: b.cost } : {}),
      ...(b.rtt !== undefined ? { rttMs: b.rtt } : {}),
      ...(b.qps !== undefined ? { qps: b.qps } : {}),
    }),
  ),
);

export const taskArb: fc.Arbitrary<TaskInfo> = fc
  .record({
    kind: fc.constantFrom(...TASK_KINDS),
    priority: fc.constantFrom(...PRIORITIES),
    affinity: fc.subarray([...LABELS], { maxLength: 2 }),
    location: fc.option(fc.constantFrom('eu', 'us', 'z1'), { nil: undefined }),
    exclude: fc.subarray(['c0', 'c1', 'c2']),
  })
  .map((t) => {
    const out: TaskInfo = {
      kind: t.kind,
      priority: t.priority,
      affinity: t.affinity,
      exclude: t.exclude,
      ...(t.location !== undefined ? { location: t.location } : {}),
    };
    return out;
  });

/** Reference model: credits per candidate per kind, and shared pools, as the spec defines them. */
export class CreditModel {
  private readonly credits = new Map<string, number>();
  private readonly pools = new Map<string, number>();

  constructor(private readonly cands: readonly Candidate[]) {
    const whole = (s: { free: number; total: number }) => Math.max(0, Math.min(Math.floor(s.free), s.total));
    for (const c of cands) {
      if (c.sharedSlots) this.pools.set(c.id, whole(c.sharedSlots));
      for (const [kind, s] of c.slots) {
        if (!c.draining && s.total > 0) this.credits.set(`${c.id}/${kind}`, whole(s));
      }
    }
  }

  /** Candidates that could ever serve the task here (kind, not draining, affinity, not excluded). */
  serving(task: TaskInfo): Candidate[] {
    return this.cands.filter(
      (c) =>
        this.credits.has(`${c.id}/${task.kind}`) &&
        !(task.exclude ?? []).includes(c.id) &&
        (task.affinity ?? []).every((a) => c.labels.some((l) => l.key === a.key && l.value === a.value)),
    );
  }

  /** Routable credits: min(kind credit, shared pool). */
  credit(id: string, kind: string): number {
    return Math.min(this.credits.get(`${id}/${kind}`) ?? 0, this.pools.get(id) ?? Infinity);
  }

  /** Σ credit over candidates, what Picker.credits(kind) must report. */
  total(kind: string): number {
    return this.cands.reduce((n, c) => n + this.credit(c.id, kind), 0);
  }

  take(id: string, kind: string): void {
    this.credits.set(`${id}/${kind}`, (this.credits.get(`${id}/${kind}`) ?? 0) - 1);
    if (this.pools.has(id)) this.pools.set(id, this.pools.get(id)! - 1);
  }
}
