// Per-key gauges of flow control (docs/flow-control.md), read from the cells
// when scraped, with labels cell and key: only a cell that counts keys (the
// root) has series. In flight and limit come from the ledger (the same on
// every replica of the cell); waiting from the leader's gate (0 elsewhere).
import { Gauge, type Registry } from 'prom-client';
import type { MeteredCell } from '../mesh/meter.js';

type Read = (c: MeteredCell) => Iterable<readonly [string, number]>;

const GAUGES: readonly (readonly [string, string, Read])[] = [
  [
    'flow_in_flight',
    'Concurrency permits held per key: attempts out, and lost ones that may still run (mesh-wide, at the root)',
    (c) => c.ledger.flow.permits.counts(),
  ],
  [
    'flow_limit',
    "A concurrency key's limit (topology or runtime); keys without one have no series",
    (c) => {
      const f = c.ledger.flow;
      return [...f.keys()].map((k) => [k, f.limit(k)] as const).filter(([, l]) => Number.isFinite(l));
    },
  ],
  ['flow_waiting', 'Tasks waiting at the root leader for a permit of their concurrency key', (c) => backlog(c, 'c:')],
  ['flow_rate_waiting', 'Tasks waiting at the root leader for their rate-limit key', (c) => backlog(c, 'r:')],
];

function backlog(c: MeteredCell, prefix: string): [string, number][] {
  const out: [string, number][] = [];
  for (const [k, n] of c.home.flow.backlog()) if (k.startsWith(prefix)) out.push([k.slice(prefix.length), n]);
  return out;
}

/** Register the flow gauges; `cells` gives one replica per cell path when scraped. */
export function registerFlowGauges(
  registry: Registry,
  prefix: string,
  cells: () => ReadonlyMap<string, MeteredCell>,
): void {
  for (const [name, help, read] of GAUGES) {
    new Gauge({
      name: `${prefix}${name}`,
      help,
      labelNames: ['cell', 'key'],
      registers: [registry],
      collect(this: Gauge<'cell' | 'key'>) {
        this.reset();
        for (const [cell, c] of cells()) for (const [key, v] of read(c)) this.set({ cell, key }, v);
      },
    });
  }
}
