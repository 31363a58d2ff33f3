// One cell's forecasts per task kind (src/forecast): what it measures itself
// (tasks entering its queue; at a node, how long its agents run them), what
// its children's summaries forecast, and what both are used for — the
// forecast fields of its own summary, the queue room a node pre-positions
// (summary.ts) and the scale recommendations (admin, metrics).
//
// Soft state of the leader, like summaries: a replica that starts leading
// starts measuring afresh (and counts the tasks it requeues from the ledger
// as arrivals). Time is the cell's injected clock, so the simulator replays it.
import {
  aggregate,
  FORECAST_DEFAULTS,
  Forecaster,
  merge,
  prepositioned,
  recommendAgents,
  type ForecastSettings,
  type RateService,
  type ScaleRecommendation,
} from '../forecast/index.js';
import type { KindCapacity } from '../gen/meshlb/v1/link.js';
import type { SubtreeLoad } from './port.js';

/** The children's forecast fields for a kind (their latest summaries). */
export type ChildForecasts = (kind: string) => RateService[];

/** What the linked children's latest summaries forecast for `kind`. */
export function childForecasts(
  children: { readonly links: ReadonlyMap<string, ChildView> } | undefined,
  kind: string,
): RateService[] {
  const out: RateService[] = [];
  if (!children) return out;
  for (const link of children.links.values()) {
    if (link.closed || !link.summary) continue;
    for (const k of link.summary.kinds) {
      if (k.kind === kind) out.push({ rate: k.forecastRate, serviceMs: k.forecastServiceMs });
    }
  }
  return out;
}

/** What childForecasts reads of a child link (child-link.ts). */
interface ChildView {
  readonly closed: boolean;
  readonly summary: { readonly kinds: readonly KindCapacity[] } | undefined;
}

export class CellForecasts {
  private readonly own: Forecaster;
  /** Summaries in which a kind's pre-positioned room went past the static share (tests, the simulator). */
  raised = 0;

  constructor(
    readonly settings: ForecastSettings,
    /** The sample interval: the cell's summary interval. */
    readonly intervalMs: number,
    start: number,
    /** The children's forecasts of a kind, from their summaries ([] at a node). */
    private readonly children: ChildForecasts,
    /** The subtree's slots and agents per kind now (summary.ts). */
    private readonly load: () => SubtreeLoad,
  ) {
    this.own = new Forecaster({ ...FORECAST_DEFAULTS, intervalMs, horizon: settings.horizon }, start);
  }

  /** The forecasts look this far ahead, ms. */
  get horizonMs(): number {
    return this.settings.horizon * this.intervalMs;
  }

  /** A task of `kind` entered the cell's queue (a submit, a dispatch from the parent, a spill-up, a retry). */
  arrived(kind: string, now: number): void {
    this.own.arrived(kind, now);
  }

  /** An agent of this cell ran a task of `kind` for `ms`. */
  served(kind: string, ms: number, now: number): void {
    this.own.served(kind, ms, now);
  }

  /** From the cell's tick. */
  tick(now: number): void {
    this.own.roll(now);
  }

  /** The subtree's forecast for `kind`: its own arrivals against its children's aggregate (merge). */
  forKind(kind: string): RateService {
    const below = this.children(kind);
    return merge(this.own.forecast(kind), below.length > 0 ? aggregate(below) : undefined);
  }

  /**
   * A node's queue room for `kind` beyond its free slots: `base` (the static
   * prefetch share), or the forecast throughput until the parent can answer a
   * summary — two summary intervals — at most prefetchCap × slots.
   */
  prefetch(kind: string, slots: number, base: number): number {
    const cap = this.settings.prefetchCap;
    if (!(cap > 0)) return base;
    const room = prepositioned(this.forKind(kind), slots, base, 2 * this.intervalMs, cap);
    if (room > base) this.raised++;
    return room;
  }

  /** Per kind (those with agents below or a forecast here), sorted. */
  recommendations(load: SubtreeLoad = this.load()): ScaleRecommendation[] {
    const kinds = new Set<string>(load.capacity.keys());
    for (const f of this.own.all()) kinds.add(f.kind);
    const out: ScaleRecommendation[] = [];
    for (const kind of [...kinds].sort()) {
      const c = load.capacity.get(kind);
      const current = c?.healthy ?? 0;
      const total = c?.total ?? 0;
      const slotsPerAgent = current > 0 && total > 0 ? total / current : 1;
      const f = this.forKind(kind);
      out.push({
        kind,
        currentAgents: current,
        recommendedAgents: recommendAgents(f, slotsPerAgent, this.settings),
        forecastRate: f.rate,
        forecastServiceMs: f.serviceMs,
        slotsPerAgent,
        totalSlots: total,
      });
    }
    return out;
  }
}
