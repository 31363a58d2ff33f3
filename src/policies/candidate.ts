// A convenience constructor for Candidate with neutral defaults, for the cell
// code that maps summaries/agents to candidates and for tests.

import type { Candidate, KindLabels, KindSlots, Label, Utilization } from './types.js';

export interface CandidateInit {
  readonly id: string;
  /** kind → { free, total } or [free, total]. */
  readonly slots: ReadonlyMap<string, KindSlots> | Readonly<Record<string, KindSlots | readonly [number, number]>>;
  /** Slots shared by all kinds (an agent's slots): { free, total } or [free, total]. */
  readonly sharedSlots?: KindSlots | readonly [number, number];
  readonly healthyAgents?: number;
  readonly queueDepth?: number;
  readonly active?: number;
  readonly utilization?: Partial<Utilization>;
  readonly latencyEwmaMs?: number;
  readonly successEwma?: number;
  readonly labels?: readonly Label[] | Readonly<Record<string, string>>;
  /** A child cell's label sets per kind (Candidate.kindLabels). */
  readonly kindLabels?: ReadonlyMap<string, KindLabels>;
  readonly costPerTask?: number;
  readonly rttMs?: number;
  readonly qps?: number;
  readonly summaryAgeMs?: number;
  readonly draining?: boolean;
  readonly limited?: boolean;
}

export function makeCandidate(init: CandidateInit): Candidate {
  let slots: ReadonlyMap<string, KindSlots>;
  if (init.slots instanceof Map) {
    slots = init.slots;
  } else {
    const m = new Map<string, KindSlots>();
    for (const [k, v] of Object.entries(init.slots as Record<string, KindSlots | readonly [number, number]>)) {
      m.set(k, Array.isArray(v) ? { free: v[0]!, total: v[1]! } : (v as KindSlots));
    }
    slots = m;
  }
  const labels: readonly Label[] = Array.isArray(init.labels)
    ? (init.labels as readonly Label[])
    : Object.entries((init.labels ?? {}) as Record<string, string>).map(([key, value]) => ({ key, value }));
  const u = init.utilization ?? {};
  const c: Candidate = {
    id: init.id,
    slots,
    healthyAgents: init.healthyAgents ?? 1,
    queueDepth: init.queueDepth ?? 0,
    active: init.active ?? 0,
    utilization: { cpu: u.cpu ?? 0, memory: u.memory ?? 0, gpu: u.gpu ?? 0, network: u.network ?? 0 },
    latencyEwmaMs: init.latencyEwmaMs ?? 0,
    successEwma: init.successEwma ?? 1,
    labels,
    summaryAgeMs: init.summaryAgeMs ?? 0,
    draining: init.draining ?? false,
    ...(init.sharedSlots !== undefined
      ? {
          sharedSlots: Array.isArray(init.sharedSlots)
            ? { free: init.sharedSlots[0]!, total: init.sharedSlots[1]! }
            : (init.sharedSlots as KindSlots),
        }
      : {}),
    ...(init.kindLabels !== undefined ? { kindLabels: init.kindLabels } : {}),
    ...(init.costPerTask !== undefined ? { costPerTask: init.costPerTask } : {}),
    ...(init.rttMs !== undefined ? { rttMs: init.rttMs } : {}),
    ...(init.qps !== undefined ? { qps: init.qps } : {}),
    ...(init.limited ? { limited: true } : {}),
  };
  return c;
}
