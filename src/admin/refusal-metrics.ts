// meshlb_refusals_total{cell,outcome} and meshlb_refusal_backoff_seconds_total{cell}:
// sends of a cell's attempts refused before they started (docs/mesh.md, "Attempt
// numbers and refusals"), read from each cell when scraped (the counters hold the
// replica's own counts since it started). Outcomes: `kept` (a home attempt kept its
// number), `renumbered` (past the bound: a new number), `resent_at_once` (a task's
// first refusal), `backed_off` (held for a backoff first), `no_match_below` (a child
// said no agent below it matches the task's affinity).
import { Counter, type Registry } from 'prom-client';
import type { MeteredCell } from '../mesh/meter.js';

export function registerRefusalCounters(
  registry: Registry,
  prefix: string,
  cells: () => ReadonlyMap<string, MeteredCell>,
): void {
  new Counter({
    name: `${prefix}refusals_total`,
    help: "Sends of a cell's attempts refused before they started, by what became of them",
    labelNames: ['cell', 'outcome'] as const,
    registers: [registry],
    collect(this: Counter<'cell' | 'outcome'>) {
      this.reset();
      for (const [cell, c] of cells()) {
        const r = c.home.refusals?.counts();
        if (r === undefined) continue;
        this.inc({ cell, outcome: 'kept' }, r.kept);
        this.inc({ cell, outcome: 'renumbered' }, r.renumbered);
        this.inc({ cell, outcome: 'resent_at_once' }, r.immediate);
        this.inc({ cell, outcome: 'backed_off' }, r.delayed);
        this.inc({ cell, outcome: 'no_match_below' }, r.noMatchBelow);
      }
    },
  });
  new Counter({
    name: `${prefix}refusal_backoff_seconds_total`,
    help: 'Time refused attempts were held before they were sent again (their backoffs summed)',
    labelNames: ['cell'] as const,
    registers: [registry],
    collect(this: Counter<'cell'>) {
      this.reset();
      for (const [cell, c] of cells()) {
        const r = c.home.refusals?.counts();
        if (r !== undefined) this.inc({ cell }, r.delayedMs / 1000);
      }
    },
  });
}
