// Debounce keys in the simulated runs (docs/flow-control.md, "Debounce and
// singleton"), from a random stream of their own (seeded from the run's
// seed), so adding them changes none of the other draws: 1-3 bursts of 2-8
// submits of one fresh debounce key at the root, 0-200 ms apart, periods of
// 100-600 ms. The `debounce` check: a debounced task's first attempt starts no
// earlier than its window can end — the latest answered submit that folded
// into it plus the period, or the burst's first submit plus the max wait
// (a submit's time in the ledger is at least when it was sent, so this is a
// lower bound of the window the ledger kept, through any failover).
import { Durability, TaskSpec } from '../../../src/gen/meshlb/v1/task.js';
import { DEFAULT_MAX_WAIT_PERIODS } from '../../../src/flow/keyed.js';
import { Rng } from '../../../src/util/rng.js';

export const planDebounce = (seed: number): Rng => new Rng((Math.imul(seed, 0x27d4eb2d) ^ 0xdeb0) >>> 0);

/** One burst's submits: the specs, and when each is to be sent (relative to the burst). */
export function debounceBurst(rng: Rng, kinds: readonly string[], burst: number): { spec: TaskSpec; atMs: number }[] {
  const periodMs = rng.int(100, 600);
  const kind = rng.pick(kinds);
  const out: { spec: TaskSpec; atMs: number }[] = [];
  let at = 0;
  for (let i = rng.int(2, 8); i > 0; i--) {
    const spec = TaskSpec.fromPartial({
      idempotencyKey: `db${burst}-${out.length}`,
      kind,
      durability: Durability.DURABILITY_LOGGED,
      debounceKey: `deb${burst}`,
      debouncePeriodMs: periodMs,
      payload: Buffer.from(`${burst}-${out.length}`),
    });
    out.push({ spec, atMs: at });
    at += rng.int(0, 200);
  }
  return out;
}

/** The lower bounds of debounced tasks' windows, and when each first started at an agent. */
export class DebounceWatch {
  private readonly bound = new Map<string, { first: number; last: number; periodMs: number; maxWaitMs: number }>();
  private readonly firstStart = new Map<string, number>();
  folds = 0;

  /** `clock`: the run's time, as the Checker's (ms since the run began). */
  constructor(readonly clock: () => number) {}

  /** A submit of a burst whose first submit was sent at `burstMs` was sent at `sentMs` and answered with `taskId`. */
  answered(taskId: string, spec: TaskSpec, burstMs: number, sentMs: number): void {
    const b = this.bound.get(taskId);
    if (b) {
      this.folds++;
      b.last = Math.max(b.last, sentMs);
    } else {
      const maxWaitMs = spec.debounceMaxWaitMs || DEFAULT_MAX_WAIT_PERIODS * spec.debouncePeriodMs;
      this.bound.set(taskId, { first: burstMs, last: sentMs, periodMs: spec.debouncePeriodMs, maxWaitMs });
    }
  }

  started(taskId: string, atMs: number): void {
    if (!this.firstStart.has(taskId)) this.firstStart.set(taskId, atMs);
  }

  stats(): { tasks: number; folds: number; started: number } {
    const started = [...this.bound.keys()].filter((id) => this.firstStart.has(id)).length;
    return { tasks: this.bound.size, folds: this.folds, started };
  }

  /** Debounced tasks that started before their window could have ended. */
  *early(): Iterable<string> {
    for (const [id, b] of this.bound) {
      const start = this.firstStart.get(id);
      const end = Math.min(b.last + b.periodMs, b.first + b.maxWaitMs);
      if (start !== undefined && start < end)
        yield `debounced ${id} started at ${start} ms, before its window could end at ${end} ms`;
    }
  }
}
