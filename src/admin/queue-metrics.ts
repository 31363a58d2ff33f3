// Queue gauges per kind and tenant (issue 13's "why is it waiting"): how many
// tasks each cell holds queued, how long the oldest has waited, and how many
// attempts it has sent on, read from the cells when scraped. A cell's queue
// is bounded (capacity), so a scrape walks at most that many entries; the
// series are bounded too: past MAX_SERIES (kind, tenant) pairs per cell the
// rest are summed under tenant "(other)", so a tenant-per-request workload
// cannot blow up Prometheus.
import { Gauge, type Registry } from 'prom-client';
import type { KindTenant, MeteredCell } from '../mesh/meter.js';

export const MAX_SERIES = 200;
export const OTHER = '(other)';

interface Row {
  backlog: number;
  oldestMs: number;
  inFlight: number;
}

/** One cell's rows by (kind, tenant), at `now` (the cell's clock). */
export function queueRows(c: MeteredCell, now: number): Map<string, Row & KindTenant> {
  const rows = new Map<string, Row & KindTenant>();
  const row = (t: KindTenant): Row & KindTenant => {
    let k = `${t.kind}\u0000${t.tenant}`;
    let r = rows.get(k);
    if (r) return r;
    let tenant = t.tenant;
    if (rows.size >= MAX_SERIES) {
      tenant = OTHER;
      k = `${t.kind}\u0000${OTHER}`;
      r = rows.get(k);
      if (r) return r;
    }
    r = { kind: t.kind, tenant, backlog: 0, oldestMs: 0, inFlight: 0 };
    rows.set(k, r);
    return r;
  };
  for (const [task, enqueuedAt] of c.queue.withEnqueuedAt()) {
    const r = row(task);
    r.backlog++;
    r.oldestMs = Math.max(r.oldestMs, now - enqueuedAt);
  }
  for (const item of c.routes.values()) if (item.via !== undefined) row(item).inFlight++;
  return rows;
}

const GAUGES: readonly (readonly [string, string, (r: Row) => number])[] = [
  ['queue_backlog', 'Tasks queued in the cell, per kind and tenant', (r) => r.backlog],
  [
    'queue_oldest_wait_seconds',
    'How long the oldest task queued in the cell has waited, per kind and tenant (0 with none queued)',
    (r) => r.oldestMs / 1000,
  ],
  ['queue_in_flight', 'Attempts the cell sent on with no result yet, per kind and tenant', (r) => r.inFlight],
];

/** Register the queue gauges; `cells` gives one replica per cell path when scraped. */
export function registerQueueGauges(
  registry: Registry,
  prefix: string,
  cells: () => ReadonlyMap<string, MeteredCell>,
): void {
  // One walk of each cell per scrape, shared by the three gauges (the first to collect takes it).
  let cache: { at: number; rows: Map<string, Map<string, Row & KindTenant>> } | undefined;
  const read = (): Map<string, Map<string, Row & KindTenant>> => {
    const t = performance.now();
    if (cache && t - cache.at < 500) return cache.rows;
    const rows = new Map<string, Map<string, Row & KindTenant>>();
    for (const [path, c] of cells()) rows.set(path, queueRows(c, c.scheduler.now()));
    cache = { at: t, rows };
    return rows;
  };
  for (const [name, help, value] of GAUGES) {
    new Gauge({
      name: `${prefix}${name}`,
      help,
      labelNames: ['cell', 'kind', 'tenant'],
      registers: [registry],
      collect(this: Gauge<'cell' | 'kind' | 'tenant'>) {
        this.reset();
        for (const [cell, rows] of read())
          for (const r of rows.values()) this.set({ cell, kind: r.kind, tenant: r.tenant }, value(r));
      },
    });
  }
}
