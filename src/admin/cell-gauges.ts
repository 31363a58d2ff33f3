// Gauges read from every cell when scraped: each gauge is a name, a help line
// and a reader giving a cell's series as [label value, value] pairs for one
// label beside `cell` (kind, key, tenant). The flow, tenant, queue and
// forecast gauges are all this shape; the pairs are recomputed per scrape, so
// nothing here runs on a hot path.
import { Gauge, type Registry } from 'prom-client';
import type { MeteredCell } from '../mesh/meter.js';

export type CellRows = (c: MeteredCell) => Iterable<readonly [string, number]>;
export type CellGaugeSpec = readonly [name: string, help: string, read: CellRows];

/** Register `gauges` with labels cell and `label`; `cells` gives one replica per cell path when scraped. */
export function registerCellGauges(
  registry: Registry,
  prefix: string,
  cells: () => ReadonlyMap<string, MeteredCell>,
  label: string,
  gauges: readonly CellGaugeSpec[],
): void {
  for (const [name, help, read] of gauges) {
    new Gauge({
      name: `${prefix}${name}`,
      help,
      labelNames: ['cell', label],
      registers: [registry],
      collect(this: Gauge) {
        this.reset();
        for (const [cell, c] of cells()) for (const [v, n] of read(c)) this.set({ cell, [label]: v }, n);
      },
    });
  }
}
