// Baseline: the candidate with the lowest slot occupancy for the kind,
// (total - credits) / total, counting this picker's own dispatches so a burst
// spreads out before the next summary arrives. Ties are broken at random.

import { configObject } from './config.js';
import { BasePicker, type KindView } from './picker.js';
import { registerPolicy } from './registry.js';
import type { Candidate, Picker, Policy, PolicyDeps, PolicyFactory, ScoreRule } from './types.js';

export type LeastLoadedConfig = Record<string, never>;

class LeastLoadedPicker extends BasePicker {
  /** Busy fraction of the kind's slots, including dispatches since the snapshot. */
  private readonly occupancy = (v: KindView, pos: number): number => 1 - this.avail(v, pos) / v.total[pos]!;

  protected override scoreRule(): ScoreRule {
    return { score: 'slot occupancy', rule: 'lowest occupancy; ties at random', better: 'lower' };
  }

  protected override scoreOf(v: KindView, pos: number): number {
    return this.occupancy(v, pos);
  }

  protected select(v: KindView): number {
    return this.selectMin(v, this.occupancy);
  }
}

export const leastLoadedPolicy: PolicyFactory<LeastLoadedConfig> = {
  name: 'least-loaded',
  description: 'lowest slot occupancy for the kind (baseline)',
  parseConfig(raw) {
    configObject('least-loaded', raw, []);
    return {};
  },
  create(_config, deps: PolicyDeps): Policy {
    return {
      name: 'least-loaded',
      buildPicker: (cands: readonly Candidate[]): Picker => new LeastLoadedPicker(cands, deps.random),
    };
  },
};

registerPolicy('least-loaded', leastLoadedPolicy);
