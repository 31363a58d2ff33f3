// Policies by name. Each policy file calls registerPolicy() at import time;
// src/policies/index.ts imports them all, so importing the index is enough.

import { PolicyConfigError } from './config.js';
import { LOAD_BOUND, splitContextConfig } from './context.js';
import { BasePicker } from './picker.js';
import type { Policy, PolicyDeps, PolicyFactory, Tier } from './types.js';

const factories = new Map<string, PolicyFactory<unknown>>();

export function registerPolicy<C>(name: string, factory: PolicyFactory<C>): void {
  if (name !== factory.name) throw new Error(`registerPolicy: name "${name}" != factory.name "${factory.name}"`);
  const existing = factories.get(name);
  // Re-importing the same module is harmless; two different policies with one name is a bug.
  if (existing && existing !== (factory as PolicyFactory<unknown>)) {
    throw new Error(`registerPolicy: policy "${name}" is already registered`);
  }
  factories.set(name, factory as PolicyFactory<unknown>);
}

export function getPolicy(name: string): PolicyFactory<unknown> | undefined {
  return factories.get(name);
}

export function listPolicies(): string[] {
  return [...factories.keys()].sort();
}

/**
 * Parse `rawConfig` and create the named policy; throws PolicyConfigError.
 * Besides the policy's own keys, any policy takes `contextLoadBound` (context
 * routing's load bound, ./context.ts), applied to every picker it builds.
 */
export function createPolicy(name: string, rawConfig: unknown, deps: PolicyDeps): Policy {
  const f = factory(name);
  const { loadBound, rest } = splitContextConfig(name, rawConfig);
  const policy = f.create(f.parseConfig(rest), deps);
  if (loadBound === LOAD_BOUND) return policy;
  return {
    name: policy.name,
    buildPicker(cands, now) {
      const p = policy.buildPicker(cands, now);
      if (p instanceof BasePicker) p.contextBound = loadBound;
      return p;
    },
  };
}

/** Check a raw config as createPolicy would (the policy's keys and `contextLoadBound`); throws PolicyConfigError. */
export function validatePolicyConfig(name: string, rawConfig: unknown): void {
  const f = factory(name);
  f.parseConfig(splitContextConfig(name, rawConfig).rest);
}

function factory(name: string): PolicyFactory<unknown> {
  const f = factories.get(name);
  if (!f) throw new PolicyConfigError(name, `unknown policy; known policies: ${listPolicies().join(', ')}`);
  return f;
}

/** The tier defaults of the design (seed 002's per-tier algorithms). */
export const DEFAULT_POLICY_BY_TIER: Readonly<Record<Tier, string>> = {
  global: 'global-geo',
  region: 'region-wrr',
  zone: 'zone-least-conn',
  node: 'node-score',
};
