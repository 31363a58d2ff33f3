// What a cell's forecasts are set to, and what they recommend: the shapes the
// mesh (src/mesh/forecasts.ts), the admin API and metrics share. Here, not in
// the mesh, so the mesh's settings and meter can name them without a circle.
import { FORECAST_DEFAULTS } from './forecaster.js';
import { SCALE_DEFAULTS } from './recommend.js';

export interface ForecastSettings {
  /**
   * A node's pre-positioned queue room per kind is at most this fraction of its
   * slots of the kind (and never below prefetchRatio's share); 0 turns
   * pre-positioning off. Default 1. Topology: defaults.forecastPrefetch: false sets 0.
   */
  readonly prefetchCap: number;
  /** Summary intervals ahead the forecasts look. Default 4. */
  readonly horizon: number;
  /** The busy fraction of slots the scale recommendation plans for. Default 0.7. */
  readonly targetUtilization: number;
  readonly minAgents: number;
  readonly maxAgents: number;
}

export const FORECAST_SETTINGS: ForecastSettings = {
  prefetchCap: 1,
  horizon: FORECAST_DEFAULTS.horizon,
  ...SCALE_DEFAULTS,
};

/** One kind's recommendation, as the admin API and metrics show it. */
export interface ScaleRecommendation {
  readonly kind: string;
  /** Healthy agents serving the kind in the subtree now. */
  readonly currentAgents: number;
  readonly recommendedAgents: number;
  /** Tasks per second, `horizon` summary intervals ahead. */
  readonly forecastRate: number;
  /** Mean agent run time, ms (0 = not measured). */
  readonly forecastServiceMs: number;
  /** Slots of the kind per healthy agent now (1 with no agent). */
  readonly slotsPerAgent: number;
  readonly totalSlots: number;
}
