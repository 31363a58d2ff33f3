// Global tier: geography/latency, capacity and cost (seed 002's global
// balancer). Each eligible region gets
//   score = w.locality·locality + w.capacity·(credits/total) + w.cost·cheapness
// locality: 1 if one of the candidate's `localityKeys` labels equals the task's
//           preferred location; otherwise rttRefMs/(rttRefMs + rtt) scaled into
//           [0, remoteLocality] (0 when rtt is unknown). So a local region
//           wins while it has room, and as it fills the capacity term lets a
//           roomy remote region take over; a full region is never eligible.
// cheapness: 1 − cost/maxCost over the kind's candidates (unknown cost: 0.5).

import { configObject, numberKey, stringListKey, weightKeys } from './config.js';
import { BasePicker, type KindView } from './picker.js';
import { registerPolicy } from './registry.js';
import type { Candidate, Picker, Policy, PolicyDeps, PolicyFactory, ScoreRule, TaskInfo } from './types.js';

export interface GlobalGeoWeights {
  readonly locality: number;
  readonly capacity: number;
  readonly cost: number;
}

export interface GlobalGeoConfig {
  readonly weights: GlobalGeoWeights;
  readonly localityKeys: readonly string[];
  /** RTT at which the latency-based locality is half of remoteLocality. */
  readonly rttRefMs: number;
  /** Best locality a non-matching candidate can get (from rtt), 0..1. */
  readonly remoteLocality: number;
}

export const GLOBAL_GEO_DEFAULT_WEIGHTS: GlobalGeoWeights = { locality: 0.6, capacity: 0.3, cost: 0.1 };

class GlobalGeoPicker extends BasePicker {
  /** Locality per candidate index, cached per preferred location ('' = none). */
  private readonly localityByLoc = new Map<string, Float64Array>();
  private loc: Float64Array = new Float64Array(0);
  private readonly score: (v: KindView, pos: number) => number;

  constructor(
    cands: readonly Candidate[],
    random: () => number,
    private readonly cfg: GlobalGeoConfig,
  ) {
    super(cands, random);
    const w = cfg.weights;
    this.score = (v, pos) =>
      -(
        w.locality * this.loc[v.members[pos]!]! +
        w.capacity * (this.avail(v, pos) / v.total[pos]!) +
        w.cost * (v.ext as Float64Array)[pos]!
      );
  }

  protected override initView(v: KindView): void {
    let max = 0;
    for (let p = 0; p < v.members.length; p++) max = Math.max(max, this.candidateAt(v, p).costPerTask ?? 0);
    const cheap = new Float64Array(v.members.length);
    for (let p = 0; p < v.members.length; p++) {
      const cost = this.candidateAt(v, p).costPerTask;
      cheap[p] = cost === undefined ? 0.5 : max > 0 ? 1 - Math.max(0, cost) / max : 1;
    }
    v.ext = cheap;
  }

  protected select(v: KindView, task: TaskInfo): number {
    this.locate(task);
    return this.selectMin(v, this.score);
  }

  protected override scoreRule(): ScoreRule {
    const w = this.cfg.weights;
    const score = `${w.locality}·locality + ${w.capacity}·capacity + ${w.cost}·cheapness`;
    return { score, rule: 'highest score; ties at random', better: 'higher' };
  }

  protected override scoreOf(v: KindView, pos: number, task: TaskInfo): number {
    this.locate(task);
    return -this.score(v, pos);
  }

  private locate(task: TaskInfo): void {
    const key = task.location ?? '';
    let loc = this.localityByLoc.get(key);
    if (loc === undefined) {
      // Tasks name few locations; the cap only guards against a flood of odd ones.
      if (this.localityByLoc.size >= 64) this.localityByLoc.clear();
      loc = Float64Array.from(this.cands, (c) => this.locality(c, key));
      this.localityByLoc.set(key, loc);
    }
    this.loc = loc;
  }

  private locality(c: Candidate, location: string): number {
    if (location !== '') {
      for (const l of c.labels) if (l.value === location && this.cfg.localityKeys.includes(l.key)) return 1;
    }
    if (c.rttMs === undefined) return 0;
    const r = this.cfg.rttRefMs;
    return this.cfg.remoteLocality * (r / (r + Math.max(0, c.rttMs)));
  }
}

export const globalGeoPolicy: PolicyFactory<GlobalGeoConfig> = {
  name: 'global-geo',
  description: 'locality (preferred location or rtt), free capacity and cost, weighted (global tier)',
  parseConfig(raw) {
    const n = 'global-geo';
    const o = configObject(n, raw, [
      ...Object.keys(GLOBAL_GEO_DEFAULT_WEIGHTS),
      'localityKeys',
      'rttRefMs',
      'remoteLocality',
    ]);
    return {
      weights: weightKeys(n, o, GLOBAL_GEO_DEFAULT_WEIGHTS),
      localityKeys: stringListKey(n, o, 'localityKeys', ['region', 'zone', 'location', 'geo']),
      rttRefMs: numberKey(n, o, 'rttRefMs', 50, { min: 1e-3 }),
      remoteLocality: numberKey(n, o, 'remoteLocality', 0.5, { min: 0, max: 1 }),
    };
  },
  create(config, deps: PolicyDeps): Policy {
    return {
      name: 'global-geo',
      buildPicker: (cands: readonly Candidate[]): Picker => new GlobalGeoPicker(cands, deps.random, config),
    };
  },
};

registerPolicy('global-geo', globalGeoPolicy);
