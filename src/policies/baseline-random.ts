// Baseline: uniform random among eligible candidates. The yardstick every
// smarter policy must beat.

import { configObject } from './config.js';
import { BasePicker, type KindView } from './picker.js';
import { registerPolicy } from './registry.js';
import type { Candidate, Picker, Policy, PolicyDeps, PolicyFactory, ScoreRule } from './types.js';

export type RandomConfig = Record<string, never>;

class RandomPicker extends BasePicker {
  protected override scoreRule(): ScoreRule {
    return { score: 'none', rule: 'uniform at random', better: 'none' };
  }

  protected select(v: KindView): number {
    const n = this.collectEligible(v);
    return n === 0 ? -1 : v.scratch[Math.floor(this.random() * n)]!;
  }
}

export const randomPolicy: PolicyFactory<RandomConfig> = {
  name: 'random',
  description: 'uniform random among candidates with a free slot (baseline)',
  parseConfig(raw) {
    configObject('random', raw, []);
    return {};
  },
  create(_config, deps: PolicyDeps): Policy {
    return {
      name: 'random',
      buildPicker: (cands: readonly Candidate[]): Picker => new RandomPicker(cands, deps.random),
    };
  },
};

registerPolicy('random', randomPolicy);
