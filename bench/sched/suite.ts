// Which runs a scenario gets: the tier defaults, then each registered policy
// in place of the default at each tier the scenario varies (the others keep
// their defaults), so every ratio compares runs of the same tasks.

import { performance } from 'node:perf_hooks';
import { DEFAULT_POLICY_BY_TIER, listPolicies } from '../../src/policies/index.js';
import type { RunRecord } from './report.js';
import { SCENARIOS } from './scenarios.js';
import { runScenario } from './sim.js';
import type { PolicyByTier, Scenario } from './types.js';

export const DEFAULTS: PolicyByTier = {
  region: DEFAULT_POLICY_BY_TIER.region,
  zone: DEFAULT_POLICY_BY_TIER.zone,
  node: DEFAULT_POLICY_BY_TIER.node,
};

export function scenarioRuns(sc: Scenario, variant = 0, policies: readonly string[] = listPolicies()): RunRecord[] {
  const out: RunRecord[] = [];
  const one = (tier: RunRecord['tier'], policy: string, set: PolicyByTier): void => {
    const t0 = performance.now();
    const metrics = runScenario(sc, set);
    out.push({ scenario: sc.name, variant, tier, policy, policies: set, wallMs: performance.now() - t0, metrics });
  };
  one('default', sc.tiers.map((t) => DEFAULTS[t]).join(' / '), DEFAULTS);
  for (const tier of sc.tiers) {
    for (const p of policies) if (p !== DEFAULTS[tier]) one(tier, p, { ...DEFAULTS, [tier]: p });
  }
  return out;
}

export function scenarioNames(): string[] {
  return Object.keys(SCENARIOS);
}
