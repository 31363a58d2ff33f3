// Small builders for table tests.

import { createPolicy, makeCandidate, seededRandom } from '../../src/policies/index.js';
import type { CandidateInit, Candidate, Picker, TaskInfo } from '../../src/policies/index.js';

export const task = (kind = 'a', extra: Partial<TaskInfo> = {}): TaskInfo => ({ kind, priority: 'normal', ...extra });

export const cand = (id: string, init: Partial<CandidateInit> = {}): Candidate =>
  makeCandidate({ id, slots: { a: [10, 10] }, ...init });

export function picker(name: string, cands: Candidate[], config?: unknown, seed = 7, now = 0): Picker {
  return createPolicy(name, config, { random: seededRandom(seed) }).buildPicker(cands, now);
}

/** Routes n picks of `t` and counts them per candidate (non-routes under '-'). */
export function tally(p: Picker, n: number, t: TaskInfo = task()): Record<string, number> {
  const out: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const r = p.pick(t);
    const k = r.type === 'route' ? r.candidate : '-';
    out[k] = (out[k] ?? 0) + 1;
  }
  return out;
}
