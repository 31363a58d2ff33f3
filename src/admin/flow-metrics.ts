// Per-key gauges of flow control (docs/flow-control.md), read from the cells
// when scraped, with labels cell and key: only a cell that counts keys (the
// root) has series. In flight and limit come from the ledger (the same on
// every replica of the cell); waiting and oldest wait from the leader's gate
// (no series elsewhere).
// Tenant shares have three of their own per tenant (label tenant).
import type { Registry } from 'prom-client';
import type { MeteredCell } from '../mesh/meter.js';
import { registerCellGauges, type CellGaugeSpec } from './cell-gauges.js';

const GAUGES: readonly CellGaugeSpec[] = [
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

const TENANT_GAUGES: readonly CellGaugeSpec[] = [
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

/** The entries of a gate map (`c:key` / `r:key`) under `prefix`, by key, with `value` of each. */
function ofPrefix(m: ReadonlyMap<string, number>, prefix: string, value: (n: number) => number): [string, number][] {
  const out: [string, number][] = [];
  for (const [k, n] of m) if (k.startsWith(prefix)) out.push([k.slice(prefix.length), value(n)]);
  return out;
}

const backlog = (c: MeteredCell, prefix: string) => ofPrefix(c.home.flow.backlog(), prefix, (n) => n);

function oldest(c: MeteredCell, prefix: string): [string, number][] {
  const now = c.scheduler.now();
  return ofPrefix(c.home.flow.oldestWaiting(), prefix, (at) => Math.max(0, now - at) / 1000);
}

/** Register the flow gauges; `cells` gives one replica per cell path when scraped. */
export function registerFlowGauges(
  registry: Registry,
  prefix: string,
  cells: () => ReadonlyMap<string, MeteredCell>,
): void {
  registerCellGauges(registry, prefix, cells, 'key', GAUGES);
  registerCellGauges(registry, prefix, cells, 'tenant', TENANT_GAUGES);
}
