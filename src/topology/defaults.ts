// What a cell gets when the file does not say: the mesh-wide `defaults`, the
// per-tier `tiers` settings (policy, policyConfig, replica count) and the
// `addressing` that generates replica addresses; each section is read and
// checked here, problems going to the Collector.
//
// Importing the policies' index registers every policy, so validation knows
// their names and checks each policyConfig with the policy's own parser.
import { createHash } from 'node:crypto';
import { DEFAULT_POLICY_BY_TIER, getPolicy, listPolicies, validatePolicyConfig } from '../policies/index.js';
import { Collector, describe, isObj, type Obj } from './format.js';
import { cellSlug } from './paths.js';
import { TIERS, type MeshDefaults, type Tier } from './types.js';

export const DEFAULTS: MeshDefaults = {
  maxMessageBytes: 4 * 1024 * 1024,
  maxPayloadBytes: 4 * 1024 * 1024,
  summaryIntervalMs: 150,
  linkTimeoutMs: 2000,
  heartbeatIntervalMs: 1000,
  heartbeatTimeoutMs: 3000,
  taskTimeoutMs: 30_000,
  maxAttempts: 3,
  queueCapacity: 100_000,
  unplaceableTimeoutMs: 300_000,
  dataDir: '.data',
  // New agent streams a node replica admits a second. Above what one replica took in unaided on 2 cores (12,500
  // reconnects in 5.9 s, about 2,100 a second: docs/performance.md, "Reconnect storms"), where 2,000 a second
  // only slowed a storm the node would have absorbed; it bounds a flood beyond what a replica can take in.
  helloRatePerSecond: 5000,
  forecastPrefetch: true,
};

/**
 * The mesh id when the file gives none: a hash of the name, so it is the same
 * in every process that reads the file (replicas, agent-sim, generated
 * manifests) and two meshes with different names get different ids without
 * anyone writing one. Meshes that share a name (two copies of one file) share
 * this id too: give one an explicit `id:` (docs/topology.md).
 */
export function defaultMeshId(name: string): string {
  return createHash('sha256').update(`meshlb-mesh:${name}`).digest('hex').slice(0, 16);
}

/** The policy names of the design; the registry (listPolicies) is the authority, these the fallback. */
const BUILTIN_POLICIES: readonly string[] = [
  'global-geo',
  'region-wrr',
  'zone-least-conn',
  'node-score',
  'random',
  'round-robin',
  'p2c',
  'least-loaded',
];

/** A Raft group needs an odd majority. */
export const REPLICA_COUNTS: readonly number[] = [1, 3, 5];

const TIER_KEYS = ['policy', 'policyConfig', 'replicas'];
const ADDRESSING_KEYS = ['host', 'basePort', 'port'];

export interface TierDefaults {
  policy: string;
  policyConfig: Obj;
  replicas: number;
}

export interface Addressing {
  host: string;
  basePort?: number;
  port?: number;
}

/** The policy names to accept: the given ones, else the registry's. */
export function knownPolicies(given: readonly string[] | undefined): Set<string> {
  if (given) return new Set(given);
  const registered = listPolicies();
  return new Set(registered.length ? registered : BUILTIN_POLICIES);
}

export function unknownPolicyMsg(v: unknown, policies: Set<string>): string {
  return `unknown policy ${describe(v)} (known: ${[...policies].sort().join(', ')})`;
}

/** Check a policyConfig with the policy's own parser (when the policy is registered). */
export function checkPolicyConfig(where: string, policy: string, config: Obj, c: Collector, enabled: boolean): void {
  if (!enabled) return;
  if (!getPolicy(policy)) return;
  try {
    validatePolicyConfig(policy, config);
  } catch (err) {
    c.add(where, (err as Error).message);
  }
}

export function parseDefaults(raw: unknown, c: Collector): MeshDefaults {
  if (raw === undefined || raw === null) return DEFAULTS;
  if (!isObj(raw)) {
    c.add('field "defaults"', `must be a mapping, got ${describe(raw)}`);
    return DEFAULTS;
  }
  c.keys('field "defaults"', raw, Object.keys(DEFAULTS));
  const out: Record<string, unknown> = { ...DEFAULTS };
  for (const [k, def] of Object.entries(DEFAULTS)) {
    const v = raw[k];
    if (v === undefined) continue;
    if (typeof def === 'boolean') {
      if (typeof v !== 'boolean') {
        c.add(`field "defaults.${k}"`, `must be true or false, got ${describe(v)}`);
        continue;
      }
    } else if (typeof def === 'number') {
      if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) {
        c.add(`field "defaults.${k}"`, `must be a positive integer, got ${describe(v)}`);
        continue;
      }
    } else if (typeof v !== 'string' || v === '') {
      c.add(`field "defaults.${k}"`, `must be a non-empty string, got ${describe(v)}`);
      continue;
    }
    out[k] = v;
  }
  const d = out as unknown as MeshDefaults;
  if (d.heartbeatTimeoutMs <= d.heartbeatIntervalMs) {
    c.add('field "defaults.heartbeatTimeoutMs"', `must exceed heartbeatIntervalMs (${d.heartbeatIntervalMs})`);
  }
  if (d.linkTimeoutMs <= 2 * d.summaryIntervalMs) {
    c.add('field "defaults.linkTimeoutMs"', `must exceed twice summaryIntervalMs (${2 * d.summaryIntervalMs})`);
  }
  return d;
}

/** Per-tier settings; a tier the file leaves out gets the design's policy for it (seed 002) and 1 replica. */
export function parseTiers(
  raw: unknown,
  c: Collector,
  policies: Set<string>,
  checkConfigs: boolean,
): Record<Tier, TierDefaults> {
  const out = Object.fromEntries(
    TIERS.map((t) => [t, { policy: DEFAULT_POLICY_BY_TIER[t], policyConfig: {}, replicas: 1 }]),
  ) as Record<Tier, TierDefaults>;
  if (raw === undefined || raw === null) return out;
  if (!isObj(raw)) {
    c.add('field "tiers"', `must be a mapping of tier → settings, got ${describe(raw)}`);
    return out;
  }
  c.keys('field "tiers"', raw, TIERS);
  for (const tier of TIERS) {
    const t = raw[tier];
    if (t === undefined) continue;
    const where = `field "tiers.${tier}"`;
    if (!isObj(t)) {
      c.add(where, `must be a mapping, got ${describe(t)}`);
      continue;
    }
    c.keys(where, t, TIER_KEYS);
    if (t.policy !== undefined) {
      if (typeof t.policy !== 'string' || !policies.has(t.policy)) {
        c.add(`field "tiers.${tier}.policy"`, unknownPolicyMsg(t.policy, policies));
      } else out[tier].policy = t.policy;
    }
    if (t.policyConfig !== undefined) {
      if (!isObj(t.policyConfig))
        c.add(`field "tiers.${tier}.policyConfig"`, `must be a mapping, got ${describe(t.policyConfig)}`);
      else {
        out[tier].policyConfig = t.policyConfig;
        checkPolicyConfig(`field "tiers.${tier}.policyConfig"`, out[tier].policy, t.policyConfig, c, checkConfigs);
      }
    }
    if (t.replicas !== undefined) {
      if (typeof t.replicas !== 'number' || !REPLICA_COUNTS.includes(t.replicas)) {
        c.add(`field "tiers.${tier}.replicas"`, `must be 1, 3 or 5, got ${describe(t.replicas)}`);
      } else out[tier].replicas = t.replicas;
    }
  }
  return out;
}

export function parseAddressing(raw: unknown, c: Collector): Addressing {
  const out: Addressing = { host: '127.0.0.1' };
  if (raw === undefined || raw === null) return out;
  if (!isObj(raw)) {
    c.add('field "addressing"', `must be a mapping, got ${describe(raw)}`);
    return out;
  }
  c.keys('field "addressing"', raw, ADDRESSING_KEYS);
  if (raw.host !== undefined) {
    if (typeof raw.host !== 'string' || raw.host === '')
      c.add('field "addressing.host"', `must be a host name or pattern, got ${describe(raw.host)}`);
    else out.host = raw.host;
  }
  for (const k of ['basePort', 'port'] as const) {
    const v = raw[k];
    if (v === undefined) continue;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 65535) {
      c.add(`field "addressing.${k}"`, `port out of range 1-65535: ${describe(v)}`);
    } else out[k] = v;
  }
  if (out.basePort !== undefined && out.port !== undefined) {
    c.add(
      'field "addressing"',
      'give either basePort (one port per replica) or port (the same port on distinct hosts), not both',
    );
  }
  return out;
}

/** Expand the host pattern for one replica: {cell} slug, {replica}, {tier}. */
export function expandHost(pattern: string, path: string, replica: number, tier: Tier): string {
  return pattern
    .replaceAll('{cell}', cellSlug(path))
    .replaceAll('{replica}', String(replica))
    .replaceAll('{tier}', tier);
}
