// Per-kind gauges of forecasts and scale recommendations (src/mesh/forecasts.ts),
// read from the cells when scraped, with labels cell and kind: what an
// autoscaler reads beside GetScaleRecommendations. The leader's figures (its
// forecasts); a replica that does not lead shows what it measured itself.
import { Gauge, type Registry } from 'prom-client';
import type { ScaleRecommendation } from '../forecast/index.js';
import type { MeteredCell } from '../mesh/meter.js';

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
  for (const [name, help, read] of GAUGES) {
    new Gauge({
      name: `${prefix}${name}`,
      help,
      labelNames: ['cell', 'kind'],
      registers: [registry],
      collect(this: Gauge<'cell' | 'kind'>) {
        this.reset();
        for (const [cell, c] of cells())
          for (const r of c.forecasts?.recommendations() ?? []) this.set({ cell, kind: r.kind }, read(r));
      },
    });
  }
}
