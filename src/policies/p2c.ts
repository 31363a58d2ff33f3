// Baseline: power of two choices. Sample two distinct eligible candidates
// uniformly and take the less loaded; nearly as good as least-loaded but
// robust to stale load data (it does not herd every pick onto one child).
// Load = (active + queueDepth + dispatches since snapshot) / total slots.

import { configObject } from './config.js';
import { BasePicker, type KindView } from './picker.js';
import { registerPolicy } from './registry.js';
import type { Candidate, Picker, Policy, PolicyDeps, PolicyFactory, ScoreRule } from './types.js';

export type P2cConfig = Record<string, never>;

class P2cPicker extends BasePicker {
  protected select(v: KindView): number {
    const n = this.collectEligible(v);
    if (n === 0) return -1;
    if (n === 1) return v.scratch[0]!;
    const i = Math.floor(this.random() * n);
    // Second index uniform over the other n-1 positions.
    let j = Math.floor(this.random() * (n - 1));
    if (j >= i) j++;
    const a = v.scratch[i]!;
    const b = v.scratch[j]!;
    return this.load(v, b) < this.load(v, a) ? b : a;
  }

  protected override scoreRule(): ScoreRule {
    return { score: 'load per slot', rule: 'the less loaded of two drawn at random', better: 'lower' };
  }

  protected override scoreOf(v: KindView, pos: number): number {
    return this.load(v, pos);
  }

  private load(v: KindView, pos: number): number {
    const c = this.candidateAt(v, pos);
    return (c.active + c.queueDepth + this.sinceSnapshot(v, pos)) / v.total[pos]!;
  }
}

export const p2cPolicy: PolicyFactory<P2cConfig> = {
  name: 'p2c',
  description: 'power of two random choices on load (baseline)',
  parseConfig(raw) {
    configObject('p2c', raw, []);
    return {};
  },
  create(_config, deps: PolicyDeps): Policy {
    return {
      name: 'p2c',
      buildPicker: (cands: readonly Candidate[]): Picker => new P2cPicker(cands, deps.random),
    };
  },
};

registerPolicy('p2c', p2cPolicy);
