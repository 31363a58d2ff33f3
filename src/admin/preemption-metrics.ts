// meshlb_preemptions_total{cell,kind}: attempts a node cell preempted for a
// task of higher priority (docs/flow-control.md, "Preemption"), read from
// each cell's preemptor when scraped (the counter holds the cell's own count).
import { Counter, type Registry } from 'prom-client';
import type { MeteredCell } from '../mesh/meter.js';

export function registerPreemptionCounter(
  registry: Registry,
  prefix: string,
  cells: () => ReadonlyMap<string, MeteredCell>,
): void {
  new Counter({
    name: `${prefix}preemptions_total`,
    help: 'Running attempts a node cell preempted (cancelled with a grace, requeued uncounted) for a task of higher priority',
    labelNames: ['cell', 'kind'] as const,
    registers: [registry],
    collect(this: Counter<'cell' | 'kind'>) {
      this.reset();
      for (const [cell, c] of cells()) for (const [kind, n] of c.preemptor?.byKind ?? []) this.inc({ cell, kind }, n);
    },
  });
}
