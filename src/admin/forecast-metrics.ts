// Per-kind gauges of forecasts and scale recommendations (src/mesh/forecasts.ts),
// read from the cells when scraped, with labels cell and kind: what an
// autoscaler reads beside GetScaleRecommendations. The leader's figures (its
// forecasts); a replica that does not lead shows what it measured itself.
import type { Registry } from 'prom-client';
import type { ScaleRecommendation } from '../forecast/index.js';
import type { MeteredCell } from '../mesh/meter.js';
import { registerCellGauges } from './cell-gauges.js';

type Read = (r: ScaleRecommendation) => number;

const GAUGES: readonly (readonly [string, string, Read])[] = [
  [
    'scale_recommended_agents',
    "Agents a cell's subtree should have for the kind: forecast rate x service time / (slots per agent x target utilization)",
    (r) => r.recommendedAgents,
  ],
  ['scale_current_agents', "Healthy agents serving the kind in the cell's subtree now", (r) => r.currentAgents],
  [
    'forecast_arrival_rate',
    'Forecast tasks per second of the kind arriving in the subtree, a few summary intervals ahead',
    (r) => r.forecastRate,
  ],
  [
    'forecast_service_seconds',
    'Forecast mean time an agent runs a task of the kind (0: not measured)',
    (r) => r.forecastServiceMs / 1000,
  ],
];

/** Register the forecast gauges; `cells` gives one replica per cell path when scraped. */
export function registerForecastGauges(
  registry: Registry,
  prefix: string,
  cells: () => ReadonlyMap<string, MeteredCell>,
): void {
  registerCellGauges(
    registry,
    prefix,
    cells,
    'kind',
    GAUGES.map(([name, help, read]) => [
      name,
      help,
      (c: MeteredCell) => (c.forecasts?.recommendations() ?? []).map((r) => [r.kind, read(r)] as const),
    ]),
  );
}
