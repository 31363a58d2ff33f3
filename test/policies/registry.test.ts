import { describe, expect, it } from 'vitest';
import {
  createPolicy,
  DEFAULT_POLICY_BY_TIER,
  getPolicy,
  listPolicies,
  PolicyConfigError,
  randomPolicy,
  registerPolicy,
  seededRandom,
} from '../../src/policies/index.js';

const deps = { random: seededRandom(1) };

describe('registry', () => {
  it('has a policy for every tier default', () => {
    for (const name of Object.values(DEFAULT_POLICY_BY_TIER)) expect(getPolicy(name)?.name).toBe(name);
  });

  it('unknown policy names are a config error listing the known ones', () => {
    expect(() => createPolicy('wrr', {}, deps)).toThrow(PolicyConfigError);
    expect(() => createPolicy('wrr', {}, deps)).toThrow(/unknown policy; known policies: global-geo, least-loaded/);
  });

  it('re-registering the same factory is harmless; a different one with the name is an error', () => {
    registerPolicy('random', randomPolicy);
    expect(() => registerPolicy('random', { ...randomPolicy })).toThrow(/already registered/);
    expect(() => registerPolicy('rnd', randomPolicy)).toThrow(/name/);
  });

  it.each(listPolicies())('%s accepts no config and rejects unknown keys and non-objects', (name) => {
    expect(createPolicy(name, undefined, deps).name).toBe(name);
    expect(createPolicy(name, null, deps).name).toBe(name);
    expect(createPolicy(name, {}, deps).name).toBe(name);
    expect(() => createPolicy(name, { bogus: 1 }, deps)).toThrow(/unknown config key "bogus"/);
    expect(() => createPolicy(name, 'fast', deps)).toThrow(/must be an object/);
  });
});
