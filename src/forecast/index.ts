// Short-horizon forecasts per cell and kind, and what they are used for
// (docs/policies.md, "Forecasts and scale recommendations"). Pure: no clock,
// no IO; the mesh (src/mesh/forecasts.ts) and bench:sched drive it.
export { checkHoltParams, dampedSum, Holt, HOLT_DEFAULTS, type HoltParams } from './holt.js';
export { FORECAST_DEFAULTS, Forecaster, SERVICE_HOLT, type ForecastConfig, type KindForecast } from './forecaster.js';
export { FORECAST_SETTINGS, type ForecastSettings, type ScaleRecommendation } from './settings.js';
export {
  aggregate,
  merge,
  prepositioned,
  recommendAgents,
  SCALE_DEFAULTS,
  type RateService,
  type ScaleParams,
} from './recommend.js';
