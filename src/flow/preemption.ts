// Preemption, the pure decisions (docs/flow-control.md, "Preemption"): which
// running attempts a node preempts for the tasks of high priority that wait
// for a slot of a saturated kind, and how many it may preempt a second. The
// node cell (src/mesh/preemptor.ts) feeds it what it sees and acts on the
// answer; nothing here reads a clock or holds a task.
//
// The rules, each checked by a property in test/flow/preemption.test.ts:
// - nothing is preempted while a slot of the kind is free (freeSlots > 0);
// - only a waiting task of rank <= thresholdRank preempts (rank 0 = critical),
//   and only an attempt of strictly lower priority (higher rank);
// - one victim per waiting task, each victim once; at most `budget` victims;
// - a task of N slots preempts only an attempt holding at least N (with no
//   slot free, that agent then has N free; a smaller victim frees too few);
// - the victim is the lowest priority running attempt, the youngest of those
//   (the least work thrown away), then the smallest key (determinism).
import type { PreemptionSpec } from '../topology/types.js';

/** Service ranks as in src/queue/priority.ts: 0 critical, 1 high, 2 normal, 3 low. */
export const PRIORITY_RANKS: Readonly<Record<PreemptionSpec['minPriority'], number>> = {
  critical: 0,
  high: 1,
  normal: 2,
};

/** The topology's `preemption:` section when it has none: off. */
export const PREEMPTION_DEFAULTS: PreemptionSpec = {
  enabled: false,
  minPriority: 'critical',
  graceMs: 5000,
  maxPerSecond: 10,
};

/** A queued task that may preempt (rank <= threshold), in service order. */
export interface Preemptor {
  readonly id: string;
  readonly rank: number;
  /** Slots it takes at one agent (omitted: 1). */
  readonly slots?: number;
}

/** A running attempt on an agent that serves the kind. */
export interface RunningAttempt {
  readonly key: string;
  readonly agentId: string;
  readonly rank: number;
  /** When it was assigned (ms): the youngest goes first. */
  readonly startedMs: number;
  /** Slots it holds (omitted: 1). */
  readonly slots?: number;
}

export interface VictimChoice {
  readonly preemptor: string;
  readonly victim: RunningAttempt;
}

export interface PreemptionInput {
  /** Free slots of the kind on the agents the cell sees (usable ones). */
  readonly freeSlots: number;
  /** Tasks waiting for a slot of the kind with no victim yet, in service order. */
  readonly waiting: readonly Preemptor[];
  /** Attempts that may be preempted (not already chosen). */
  readonly running: readonly RunningAttempt[];
  /** A task preempts only if its rank is at most this (0: critical only). */
  readonly thresholdRank: number;
  /** Preemptions the cell may still make now (its rate limit). */
  readonly budget: number;
  /** Whether the preemptor may run on that agent (its affinity); default yes. */
  readonly fits?: (preemptor: string, agentId: string) => boolean;
}

/** Lower priority first, then the youngest, then the smallest key. */
function better(a: RunningAttempt, b: RunningAttempt): boolean {
  if (a.rank !== b.rank) return a.rank > b.rank;
  if (a.startedMs !== b.startedMs) return a.startedMs > b.startedMs;
  return a.key < b.key;
}

export function chooseVictims(o: PreemptionInput): VictimChoice[] {
  const out: VictimChoice[] = [];
  if (o.freeSlots > 0 || o.budget <= 0) return out;
  const taken = new Set<string>();
  for (const p of o.waiting) {
    if (out.length >= o.budget) break;
    if (p.rank > o.thresholdRank) continue;
    let best: RunningAttempt | undefined;
    for (const r of o.running) {
      if (r.rank <= p.rank || taken.has(r.key) || (r.slots ?? 1) < (p.slots ?? 1)) continue;
      if (o.fits && !o.fits(p.id, r.agentId)) continue;
      if (best === undefined || better(r, best)) best = r;
    }
    if (best === undefined) continue;
    taken.add(best.key);
    out.push({ preemptor: p.id, victim: best });
  }
  return out;
}

/**
 * At most `maxPerSecond` preemptions in any window of one second: the times
 * of the last ones, in a ring.
 */
export class PreemptionBudget {
  private readonly times: number[] = [];

  constructor(private readonly maxPerSecond: number) {}

  /** Preemptions allowed at `now`. */
  available(now: number): number {
    while (this.times.length > 0 && now - this.times[0]! >= 1000) this.times.shift();
    return Math.max(0, this.maxPerSecond - this.times.length);
  }

  spend(now: number): void {
    this.times.push(now);
  }
}
