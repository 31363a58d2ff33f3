// Baseline: round robin over eligible candidates. The cursor lives in the
// policy (per kind) rather than the picker, so rebuilding the picker on every
// summary does not restart the rotation at the first candidate.

import { configObject } from './config.js';
import { BasePicker, type KindView } from './picker.js';
import { registerPolicy } from './registry.js';
import type { Candidate, Picker, Policy, PolicyDeps, PolicyFactory, ScoreRule } from './types.js';

export type RoundRobinConfig = Record<string, never>;

class RoundRobinPicker extends BasePicker {
  constructor(
    cands: readonly Candidate[],
    random: () => number,
    private readonly cursors: Map<string, number>,
  ) {
    super(cands, random);
  }

  protected override initView(v: KindView): void {
    // Start where the previous picker left off; a fresh kind starts at a random
    // member so that many cells do not all hit the same first child.
    const c = this.cursors.get(v.kind);
    v.cursor = c === undefined ? Math.floor(this.random() * v.members.length) : c % v.members.length;
  }

  protected override scoreRule(): ScoreRule {
    return { score: 'none', rule: 'the next in turn with a free slot', better: 'none' };
  }

  protected select(v: KindView): number {
    const n = v.members.length;
    for (let i = 0; i < n; i++) {
      const p = (v.cursor + i) % n;
      if (this.ok(v, p)) {
        v.cursor = (p + 1) % n;
        this.cursors.set(v.kind, v.cursor);
        return p;
      }
    }
    return -1;
  }
}

export const roundRobinPolicy: PolicyFactory<RoundRobinConfig> = {
  name: 'round-robin',
  description: 'rotate over candidates with a free slot (baseline)',
  parseConfig(raw) {
    configObject('round-robin', raw, []);
    return {};
  },
  create(_config, deps: PolicyDeps): Policy {
    const cursors = new Map<string, number>();
    return {
      name: 'round-robin',
      buildPicker: (cands: readonly Candidate[]): Picker => new RoundRobinPicker(cands, deps.random, cursors),
    };
  },
};

registerPolicy('round-robin', roundRobinPolicy);
