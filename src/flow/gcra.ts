// The generic cell rate algorithm (GCRA), pure: one number of state per key,
// its theoretical arrival time (TAT). A key allows `units` per `periodMs`
// sustained and `burst` units at once from idle. A request of n units moves
// the TAT to max(TAT, now) + n·T (T = periodMs / units, the emission
// interval) and is allowed while the new TAT is at most burst·T ahead of now;
// refused, it may go at newTat − burst·T, and the TAT stays. No clock here:
// the caller passes `now` (the ledger passes the time its command carries, so
// every replica computes the same).

export interface RateRule {
  /** Units allowed per period, sustained. */
  readonly units: number;
  readonly periodMs: number;
  /** Units allowed at once from idle (>= 1). */
  readonly burst: number;
}

export type RateAnswer =
  { readonly ok: true; readonly tat: number } | { readonly ok: false; readonly retryAtMs: number };

/** Emission interval: ms per unit. */
export const emissionMs = (r: RateRule): number => r.periodMs / r.units;

/**
 * May `n` units go at `now` given the key's TAT (0 = never used)? A request
 * larger than the burst can never go; it is answered with the time it would
 * go if it fitted, so callers refuse such requests up front (validation).
 */
export function gcra(tat: number, now: number, n: number, r: RateRule): RateAnswer {
  const t = emissionMs(r);
  const next = Math.max(tat, now) + n * t;
  const allowAt = next - r.burst * t;
  if (allowAt <= now) return { ok: true, tat: next };
  return { ok: false, retryAtMs: allowAt };
}
