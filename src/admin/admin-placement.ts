// What the admin API says about placement: the circuit breakers a cell holds
// for its targets (ListAgents, GetCell).
import { BreakerState, type Breaker } from '../gen/meshlb/v1/admin.js';
import type { BreakerInfo } from '../mesh/dispatcher-breakers.js';

const STATES: Record<BreakerInfo['state'], BreakerState> = {
  closed: BreakerState.BREAKER_STATE_CLOSED,
  open: BreakerState.BREAKER_STATE_OPEN,
  'half-open': BreakerState.BREAKER_STATE_HALF_OPEN,
};

/** A breaker as the admin API shows it; a target with no breaker yet is closed and unlimited. */
export function breakerMessage(b: BreakerInfo | undefined): Breaker {
  if (b === undefined) {
    return {
      state: BreakerState.BREAKER_STATE_CLOSED,
      consecutiveFailures: 0,
      errorRate: 0,
      outcomes: 0,
      openedUnixMs: 0,
      share: 1,
      trips: 0,
    };
  }
  return {
    state: STATES[b.state],
    consecutiveFailures: b.consecutiveFailures,
    errorRate: b.errorRate,
    outcomes: b.outcomes,
    openedUnixMs: b.openedAtMs,
    share: b.share,
    trips: b.trips,
  };
}
