// Region tier: adaptive weighted round robin, after gRPC's weighted_round_robin
// on ORCA load reports (gRFC A58), with summaries as the load reports:
//   weight = qps / (utilization + (eps/qps)·errorUtilizationPenalty)
// where eps/qps = 1 − successEwma and utilization = max(cpu, gpu, slot
// occupancy (shared slots if reported, else summed over kinds)). A weight is usable only after `blackoutPeriodMs` of continuous
// valid reports (so a new or restarted child, whose first numbers are noise,
// does not get a burst), and expires `weightExpirationPeriodMs` after the last
// fresh summary (a silent child falls back and must sit out a new blackout).
// Candidates without a usable weight get the mean of the usable ones (all equal
// if none). The WRR itself is an earliest-deadline-first scheduler: each
// eligible member has a virtual deadline; the smallest wins and advances by
// 1/weight. Deadlines start at a random offset so cells do not move in lockstep.

import { configObject, numberKey } from './config.js';
import { BasePicker, type KindView } from './picker.js';
import { registerPolicy } from './registry.js';
import type { Candidate, Picker, Policy, PolicyDeps, PolicyFactory, ScoreRule } from './types.js';

export interface RegionWrrConfig {
  readonly blackoutPeriodMs: number;
  readonly weightExpirationPeriodMs: number;
  readonly errorUtilizationPenalty: number;
  /** Weights are clamped into [mean/maxWeightRatio, mean·maxWeightRatio]. */
  readonly maxWeightRatio: number;
}

/** Per child, kept across pickers (the policy's small state). */
interface WeightState {
  weight: number;
  /** When valid reports started; NaN = not currently non-empty. */
  nonEmptySince: number;
  /** Time of the freshest summary that produced a valid weight. */
  lastUpdated: number;
}

/** The weight a summary reports, or 0 if it cannot be computed. */
export function reportedWeight(c: Candidate, penalty: number): number {
  const qps = c.qps ?? 0;
  let busy = 0;
  let total = 0;
  if (c.sharedSlots) {
    total = c.sharedSlots.total;
    busy = Math.max(0, total - c.sharedSlots.free);
  } else {
    for (const s of c.slots.values()) {
      total += s.total;
      busy += Math.max(0, s.total - s.free);
    }
  }
  const util = Math.max(c.utilization.cpu, c.utilization.gpu, total > 0 ? busy / total : 0);
  const errRatio = 1 - Math.min(1, Math.max(0, c.successEwma));
  const denom = util + errRatio * penalty;
  if (!(qps > 0) || !(denom > 0)) return 0;
  return qps / denom;
}

class WrrPicker extends BasePicker {
  constructor(
    cands: readonly Candidate[],
    random: () => number,
    /** Effective weight per candidate index (already mean-filled and clamped). */
    private readonly weights: Float64Array,
  ) {
    super(cands, random);
  }

  protected override initView(v: KindView): void {
    const d = new Float64Array(v.members.length);
    for (let p = 0; p < d.length; p++) d[p] = this.random() / this.weights[v.members[p]!]!;
    v.ext = d;
  }

  protected override scoreRule(): ScoreRule {
    return {
      score: 'weight',
      rule: 'weighted round robin: the earliest virtual deadline (picks in proportion to weight)',
      better: 'none',
    };
  }

  protected override scoreOf(v: KindView, pos: number): number {
    return this.weights[v.members[pos]!]!;
  }

  protected select(v: KindView): number {
    const d = v.ext as Float64Array;
    let best = -1;
    for (let p = 0; p < d.length; p++) {
      if ((best < 0 || d[p]! < d[best]!) && this.ok(v, p)) best = p;
    }
    if (best >= 0) d[best]! += 1 / this.weights[v.members[best]!]!;
    return best;
  }
}

class RegionWrrPolicy implements Policy {
  readonly name = 'region-wrr';
  private readonly state = new Map<string, WeightState>();

  constructor(
    private readonly cfg: RegionWrrConfig,
    private readonly random: () => number,
  ) {}

  buildPicker(cands: readonly Candidate[], now: number): Picker {
    const eff = new Float64Array(cands.length);
    const seen = new Set<string>();
    let sum = 0;
    let n = 0;
    for (let i = 0; i < cands.length; i++) {
      const c = cands[i]!;
      seen.add(c.id);
      const w = this.update(c, now);
      eff[i] = w;
      if (w > 0) {
        sum += w;
        n++;
      }
    }
    // Forget children that are gone, so state stays bounded by the child count.
    for (const id of this.state.keys()) if (!seen.has(id)) this.state.delete(id);
    const mean = n > 0 ? sum / n : 1;
    const r = this.cfg.maxWeightRatio;
    for (let i = 0; i < eff.length; i++) {
      const w = eff[i]! > 0 ? eff[i]! : mean;
      eff[i] = Math.min(mean * r, Math.max(mean / r, w));
    }
    return new WrrPicker(cands, this.random, eff);
  }

  /** Folds the candidate's summary into its state; returns the usable weight or 0. */
  private update(c: Candidate, now: number): number {
    let s = this.state.get(c.id);
    if (!s) {
      s = { weight: 0, nonEmptySince: NaN, lastUpdated: -Infinity };
      this.state.set(c.id, s);
    }
    const reportedAt = now - Math.max(0, c.summaryAgeMs);
    const w = reportedWeight(c, this.cfg.errorUtilizationPenalty);
    if (w > 0 && reportedAt > s.lastUpdated) {
      if (Number.isNaN(s.nonEmptySince)) s.nonEmptySince = reportedAt;
      s.lastUpdated = reportedAt;
      s.weight = w;
    }
    if (now - s.lastUpdated >= this.cfg.weightExpirationPeriodMs) {
      s.nonEmptySince = NaN; // a new blackout once reports resume
      return 0;
    }
    if (Number.isNaN(s.nonEmptySince) || now - s.nonEmptySince < this.cfg.blackoutPeriodMs) return 0;
    return s.weight;
  }
}

export const regionWrrPolicy: PolicyFactory<RegionWrrConfig> = {
  name: 'region-wrr',
  description: 'adaptive weighted round robin from summaries, with blackout and expiry (region tier)',
  parseConfig(raw) {
    const n = 'region-wrr';
    const o = configObject(n, raw, [
      'blackoutPeriodMs',
      'weightExpirationPeriodMs',
      'errorUtilizationPenalty',
      'maxWeightRatio',
    ]);
    const cfg: RegionWrrConfig = {
      blackoutPeriodMs: numberKey(n, o, 'blackoutPeriodMs', 10_000, { min: 0 }),
      weightExpirationPeriodMs: numberKey(n, o, 'weightExpirationPeriodMs', 180_000, { min: 1 }),
      errorUtilizationPenalty: numberKey(n, o, 'errorUtilizationPenalty', 1, { min: 0 }),
      maxWeightRatio: numberKey(n, o, 'maxWeightRatio', 10, { min: 1 }),
    };
    return cfg;
  },
  create(config, deps: PolicyDeps): Policy {
    return new RegionWrrPolicy(config, deps.random);
  },
};

registerPolicy('region-wrr', regionWrrPolicy);
