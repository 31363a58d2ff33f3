// Seeded workloads: arrival processes (Poisson at a rate that may vary in
// time, by thinning; bursts) and the mix of each stream (kinds, tenants,
// priorities, deadlines, affinities). Every task's service demand and failure
// draws are drawn here, once, so every policy runs exactly the same tasks.

import type { Label, Priority } from '../../src/policies/index.js';
import type { Rng } from '../../src/util/rng.js';
import type { TaskSpec } from './types.js';

export type Weighted<T> = readonly (readonly [T, number])[];

export interface Mix {
  readonly kinds: Weighted<string>;
  readonly tenants: Weighted<string>;
  readonly priorities?: Weighted<Priority>;
  /** Share of tasks with a deadline, drawn uniformly in [minMs, maxMs] after arrival. */
  readonly deadline?: { readonly share: number; readonly minMs: number; readonly maxMs: number };
  /** Per kind: share of its tasks that require one of the label sets (chosen uniformly). */
  readonly affinity?: Readonly<
    Record<string, { readonly share: number; readonly sets: readonly (readonly Label[])[] }>
  >;
}

export type Stream =
  | {
      readonly type: 'poisson';
      readonly fromMs: number;
      readonly toMs: number;
      /** Tasks/s at time t (ms); must stay within [0, maxRate]. */
      readonly rate: (t: number) => number;
      readonly maxRate: number;
      readonly mix: Mix;
    }
  | {
      readonly type: 'burst';
      readonly atMs: number;
      readonly widthMs: number;
      readonly count: number;
      readonly mix: Mix;
    };

function pick<T>(rng: Rng, xs: Weighted<T>): T {
  let sum = 0;
  for (const [, w] of xs) sum += w;
  let u = rng.next() * sum;
  for (const [x, w] of xs) if ((u -= w) < 0) return x;
  return xs[xs.length - 1]![0];
}

function task(rng: Rng, at: number, mix: Mix): Omit<TaskSpec, 'id'> {
  const kind = pick(rng, mix.kinds);
  const aff = mix.affinity?.[kind];
  const affinity = aff && rng.next() < aff.share ? aff.sets[Math.floor(rng.next() * aff.sets.length)] : undefined;
  const d = mix.deadline;
  const deadlineMs = d && rng.next() < d.share ? d.minMs + rng.next() * (d.maxMs - d.minMs) : undefined;
  return {
    at,
    kind,
    tenant: pick(rng, mix.tenants),
    priority: mix.priorities ? pick(rng, mix.priorities) : 'normal',
    ...(deadlineMs !== undefined ? { deadlineMs } : {}),
    ...(affinity ? { affinity } : {}),
    // Uniform in [0.5, 1.5] as the simulated agents of meshlb dev draw it.
    work: 0.5 + rng.next(),
    failDraws: [rng.next(), rng.next(), rng.next(), rng.next(), rng.next()],
  };
}

/** All streams' tasks, merged in arrival order with ids t0, t1, ... */
export function generate(rng: Rng, streams: readonly Stream[]): TaskSpec[] {
  const out: Omit<TaskSpec, 'id'>[] = [];
  for (const s of streams) {
    if (s.type === 'burst') {
      for (let i = 0; i < s.count; i++) out.push(task(rng, s.atMs + rng.next() * s.widthMs, s.mix));
      continue;
    }
    for (let t = s.fromMs; ;) {
      t += (-Math.log(1 - rng.next()) / s.maxRate) * 1000;
      if (t >= s.toMs) break;
      if (rng.next() * s.maxRate < s.rate(t)) out.push(task(rng, t, s.mix));
    }
  }
  out.sort((a, b) => a.at - b.at);
  return out.map((t, i) => ({ id: `t${i}`, ...t }));
}
