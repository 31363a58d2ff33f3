// Zone tier: least connections plus queue depth (seed 002's zone balancer).
// A child's load is (active + queueWeight·queueDepth + dispatches since the
// snapshot) / its total slots of the kind, so a big node is not starved just
// because it runs more tasks in absolute terms. Ties are broken at random so
// equal nodes share work instead of the first one taking every burst.

import { configObject, numberKey } from './config.js';
import { BasePicker, type KindView } from './picker.js';
import { registerPolicy } from './registry.js';
import type { Candidate, Picker, Policy, PolicyDeps, PolicyFactory } from './types.js';

export interface ZoneLeastConnConfig {
  /** How much one queued task counts against one running task. */
  readonly queueWeight: number;
}

class ZoneLeastConnPicker extends BasePicker {
  private readonly score: (v: KindView, pos: number) => number;

  constructor(cands: readonly Candidate[], random: () => number, cfg: ZoneLeastConnConfig) {
    super(cands, random);
    const qw = cfg.queueWeight;
    // Bound once per picker, not per pick.
    this.score = (v, pos) => {
      const c = this.candidateAt(v, pos);
      return (c.active + qw * c.queueDepth + this.sinceSnapshot(v, pos)) / v.total[pos]!;
    };
  }

  protected select(v: KindView): number {
    return this.selectMin(v, this.score);
  }
}

export const zoneLeastConnPolicy: PolicyFactory<ZoneLeastConnConfig> = {
  name: 'zone-least-conn',
  description: 'least (active + queued) tasks per slot, random tie-break (zone tier)',
  parseConfig(raw) {
    const o = configObject('zone-least-conn', raw, ['queueWeight']);
    return { queueWeight: numberKey('zone-least-conn', o, 'queueWeight', 1, { min: 0 }) };
  },
  create(config, deps: PolicyDeps): Policy {
    return {
      name: 'zone-least-conn',
      buildPicker: (cands: readonly Candidate[]): Picker => new ZoneLeastConnPicker(cands, deps.random, config),
    };
  },
};

registerPolicy('zone-least-conn', zoneLeastConnPolicy);
