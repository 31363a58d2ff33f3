// What the forecasts are used for, as pure arithmetic: a subtree's forecast
// from its children's, the agents a cell should have per kind (scale
// recommendations), and how much work a node asks its parent to pre-position
// in its local queue. docs/policies.md, "Forecasts and scale recommendations".

/** A forecast of one kind: arrivals per second and mean service time (ms, 0 = unknown). */
export interface RateService {
  readonly rate: number;
  readonly serviceMs: number;
}

const finite = (x: number): number => (Number.isFinite(x) && x > 0 ? x : 0);

/**
 * Children's forecasts of one kind, summed: rates add up; the service time is
 * their mean weighted by rate (the time an arriving task of the subtree can
 * expect), or the plain mean of the known ones while no child forecasts
 * arrivals.
 */
export function aggregate(children: readonly RateService[]): RateService {
  let rate = 0;
  let weighted = 0;
  let known = 0;
  let sum = 0;
  for (const c of children) {
    const r = finite(c.rate);
    const s = finite(c.serviceMs);
    rate += r;
    if (s > 0) {
      weighted += r * s;
      known++;
      sum += s;
    }
  }
  const serviceMs = rate > 0 && weighted > 0 ? weighted / rate : known > 0 ? sum / known : 0;
  return { rate, serviceMs };
}

/**
 * A cell's forecast for its subtree: its own arrivals and its children's
 * aggregate. The rate is the larger of the two, not their sum: what the cell
 * sends down is counted again below, and what arrives below directly (tasks
 * submitted at a lower cell) is not seen here. The service time is measured
 * where agents run, so a node's own is used and a cell above takes its
 * children's.
 */
export function merge(own: RateService, children: RateService | undefined): RateService {
  const rate = Math.max(finite(own.rate), finite(children?.rate ?? 0));
  const serviceMs = finite(own.serviceMs) || finite(children?.serviceMs ?? 0);
  return { rate, serviceMs };
}

export interface ScaleParams {
  /** The busy fraction of slots to plan for, 0 < u ≤ 1 (headroom for bursts and forecast error). */
  readonly targetUtilization: number;
  readonly minAgents: number;
  readonly maxAgents: number;
}

export const SCALE_DEFAULTS: ScaleParams = { targetUtilization: 0.7, minAgents: 0, maxAgents: 10_000 };

/**
 * Agents wanted for one kind (Little's law): busy slots = rate × service time;
 * agents = ⌈busy / (slots per agent × target utilization)⌉, clamped to
 * [minAgents, maxAgents]. Unknown service time or no arrivals: minAgents.
 */
export function recommendAgents(f: RateService, slotsPerAgent: number, p: ScaleParams = SCALE_DEFAULTS): number {
  const busy = (finite(f.rate) * finite(f.serviceMs)) / 1000;
  const per = finite(slotsPerAgent) || 1;
  const u = p.targetUtilization > 0 && p.targetUtilization <= 1 ? p.targetUtilization : 1;
  const want = busy > 0 ? Math.ceil(busy / (per * u) - 1e-9) : 0;
  return Math.min(Math.max(want, p.minAgents), Math.max(p.minAgents, p.maxAgents));
}

/**
 * The queue room a node advertises to its parent for one kind beyond its free
 * slots (prefetch_slots): the static share `base` (prefetchRatio × slots), or,
 * when the forecast says the node will finish more than that before the parent
 * can answer its next summary (`leadMs`), the forecast throughput over that
 * lead — never more than `capRatio` × slots. Throughput is the forecast
 * arrival rate, at most what the slots can serve at the forecast service time.
 */
export function prepositioned(f: RateService, slots: number, base: number, leadMs: number, capRatio: number): number {
  const baseline = Math.max(0, Math.floor(finite(base)));
  if (!(capRatio > 0) || slots <= 0) return baseline;
  const cap = Math.ceil(slots * capRatio);
  const service = finite(f.serviceMs);
  const capacityRate = service > 0 ? (slots * 1000) / service : Infinity;
  const throughput = Math.min(finite(f.rate), capacityRate);
  const ahead = Math.ceil((throughput * finite(leadMs)) / 1000 - 1e-9);
  return Math.max(baseline, Math.min(cap, ahead));
}
