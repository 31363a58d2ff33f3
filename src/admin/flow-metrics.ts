// Per-key gauges of flow control (docs/flow-control.md), read from the cells
// when scraped, with labels cell and key: only a cell that counts keys (the
// root) has series. In flight and limit come from the ledger (the same on
// every replica of the cell); waiting and oldest wait from the leader's gate
// (no series elsewhere).
// Tenant shares have three of their own per tenant (label tenant).
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
  [
    'flow_oldest_wait_seconds',
    'How long the longest-waiting task of a concurrency key has waited at the root leader for a permit',
    (c) => oldest(c, 'c:'),
  ],
  [
    'flow_rate_oldest_wait_seconds',
    'How long the longest-waiting task of a rate-limit key has waited at the root leader',
    (c) => oldest(c, 'r:'),
  ],
];

function oldest(c: MeteredCell, prefix: string): [string, number][] {
  const now = c.scheduler.now();
  const out: [string, number][] = [];
  for (const [k, at] of c.home.flow.oldestWaiting())
    if (k.startsWith(prefix)) out.push([k.slice(prefix.length), Math.max(0, now - at) / 1000]);
  return out;
}

const TENANT_GAUGES: readonly (readonly [string, string, Read])[] = [
  [
    'tenant_in_flight',
    "Slots a tenant with a share holds: its attempts out, and lost ones that may still run (at the tasks' home)",
    (c) => c.ledger.flow.shares.permits.counts(),
  ],
  ['tenant_min_slots', "A tenant's guaranteed minimum of slots (tenants with one)", (c) => share(c, 'min')],
  ['tenant_max_slots', "A tenant's ceiling of slots in flight (tenants with one)", (c) => share(c, 'max')],
  [
    'tenant_waiting',
    'Tasks waiting at the home leader because their tenant is at its ceiling',
    (c) => c.ledger.flow.shares.tenants().map((t) => [t, c.home.flow.tenants.waitingOf(t)] as const),
  ],
];

function share(c: MeteredCell, which: 'min' | 'max'): [string, number][] {
  const s = c.ledger.flow.shares;
  return s.tenants().flatMap((t): [string, number][] => (s.share(t)[which] > 0 ? [[t, s.share(t)[which]]] : []));
}

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
  for (const [name, help, read] of TENANT_GAUGES) {
    new Gauge({
      name: `${prefix}${name}`,
      help,
      labelNames: ['cell', 'tenant'],
      registers: [registry],
      collect(this: Gauge<'cell' | 'tenant'>) {
        this.reset();
        for (const [cell, c] of cells()) for (const [tenant, v] of read(c)) this.set({ cell, tenant }, v);
      },
    });
  }
}
