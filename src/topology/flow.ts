// The topology's optional `flow:` section (docs/flow-control.md): limits per
// key that hold across the whole mesh, enforced by the root cell, which owns
// every key's counter.
//   flow:
//     lingerMs: 5000
//     concurrency:
//       customer-42: { limit: 3 }                          # strategy: queue
//       crawler: { limit: 10, strategy: cancel-newest }
//       customers: { limit: 10, strategy: round-robin }   # tasks name customers:<id>
//       "tenant:*": { limit: 3 }           # a template: tenant:a, tenant:b... 3 each
//       batch: { limit: 20, weight: 2, min: 4, max: 10 }   # a key's share of the slots
//     rateLimits:
//       llm: { units: 100, periodMs: 1000, burst: 20 }
//     tenants:                             # shares of the slots, per tenant
//       gold: { weight: 5, min: 10, max: 40 }
import { Collector, describe, isObj, type Obj } from './format.js';
import type { ConcurrencyKeySpec, ConcurrencyStrategy, FlowSpec, RateLimitSpec, ShareSpec } from './types.js';

const TOP = ['lingerMs', 'concurrency', 'rateLimits', 'tenants'];
const STRATEGIES: readonly ConcurrencyStrategy[] = ['queue', 'cancel-newest', 'cancel-in-progress', 'round-robin'];
/**
 * Keys are matched as written (the same bound as a tenant name), or a
 * template `prefix:*` that gives every key `prefix:anything` the same limit or
 * rate, each key counted on its own (one per customer, say).
 */
const KEY_RE = /^(?:[A-Za-z0-9._:/@-]{1,128}|[A-Za-z0-9._/@-]{1,126}:\*)$/;
export const DEFAULT_LINGER_MS = 5000;

export function parseFlow(raw: unknown, c: Collector): FlowSpec | undefined {
  if (raw === undefined || raw === null) return undefined;
  if (!isObj(raw)) {
    c.add('field "flow"', `must be a mapping, got ${describe(raw)}`);
    return undefined;
  }
  c.keys('field "flow"', raw, TOP);
  const int = (where: string, v: unknown, min: number, dflt: number | undefined): number | undefined => {
    if (v === undefined) return dflt;
    if (typeof v === 'number' && Number.isSafeInteger(v) && v >= min) return v;
    c.add(`field "flow.${where}"`, `must be an integer >= ${min}, got ${describe(v)}`);
    return undefined;
  };
  const lingerMs = int('lingerMs', raw.lingerMs, 0, DEFAULT_LINGER_MS) ?? DEFAULT_LINGER_MS;
  const concurrency = new Map<string, ConcurrencyKeySpec>();
  for (const [key, v] of entries(c, 'concurrency', raw.concurrency)) {
    c.keys(`field "flow.concurrency.${key}"`, v, ['limit', 'strategy', 'weight', 'min', 'max']);
    const limit = int(`concurrency.${key}.limit`, v.limit, 1, undefined);
    if (v.limit === undefined) c.add(`field "flow.concurrency.${key}.limit"`, 'missing');
    let strategy: ConcurrencyStrategy = 'queue';
    if (v.strategy !== undefined) {
      if (STRATEGIES.includes(v.strategy as ConcurrencyStrategy)) strategy = v.strategy as ConcurrencyStrategy;
      else
        c.add(
          `field "flow.concurrency.${key}.strategy"`,
          `must be one of ${STRATEGIES.join(', ')}, got ${describe(v.strategy)}`,
        );
    }
    if (strategy === 'round-robin' && key.includes(':'))
      c.add(`field "flow.concurrency.${key}"`, 'a round-robin group is named without ":" (tasks name group:member)');
    else if (limit !== undefined) {
      const hasShare = v.weight !== undefined || v.min !== undefined || v.max !== undefined;
      const share = hasShare ? parseShare(c, `concurrency.${key}`, v) : undefined;
      if (hasShare && key.endsWith(':*'))
        c.add(`field "flow.concurrency.${key}"`, 'a template cannot have a share (weight, min, max): name the key');
      else if (!hasShare) concurrency.set(key, { limit, strategy });
      else if (share) concurrency.set(key, { limit, strategy, share });
    }
  }
  const rateLimits = new Map<string, RateLimitSpec>();
  for (const [key, v] of entries(c, 'rateLimits', raw.rateLimits)) {
    c.keys(`field "flow.rateLimits.${key}"`, v, ['units', 'periodMs', 'burst']);
    const units = int(`rateLimits.${key}.units`, v.units, 1, undefined);
    const periodMs = int(`rateLimits.${key}.periodMs`, v.periodMs, 1, 1000);
    const burst = int(`rateLimits.${key}.burst`, v.burst, 1, 1);
    if (v.units === undefined) c.add(`field "flow.rateLimits.${key}.units"`, 'missing');
    if (units !== undefined && periodMs !== undefined && burst !== undefined)
      rateLimits.set(key, { units, periodMs, burst });
  }
  const tenants = new Map<string, ShareSpec>();
  for (const [tenant, v] of entries(c, 'tenants', raw.tenants)) {
    c.keys(`field "flow.tenants.${tenant}"`, v, ['weight', 'min', 'max']);
    const share = parseShare(c, `tenants.${tenant}`, v);
    if (share) tenants.set(tenant, share);
  }
  return { concurrency, rateLimits, lingerMs, ...(tenants.size > 0 ? { tenants } : {}) };
}

/** `weight` (1-1000, default 1), `min` and `max` (0: none; min at most max) of a tenant or a key. */
function parseShare(c: Collector, where: string, v: Obj): ShareSpec | undefined {
  const int = (f: string, x: unknown, min: number, dflt: number): number | undefined => {
    if (x === undefined) return dflt;
    if (typeof x === 'number' && Number.isSafeInteger(x) && x >= min) return x;
    c.add(`field "flow.${where}.${f}"`, `must be an integer >= ${min}, got ${describe(x)}`);
    return undefined;
  };
  const weight = int('weight', v.weight, 1, 1);
  const min = int('min', v.min, 0, 0);
  const max = int('max', v.max, 0, 0);
  if (weight !== undefined && weight > MAX_WEIGHT)
    c.add(`field "flow.${where}.weight"`, `must be at most ${MAX_WEIGHT}, got ${weight}`);
  else if (min !== undefined && max !== undefined && max > 0 && min > max)
    c.add(`field "flow.${where}"`, `min (${min}) must not exceed max (${max})`);
  else if (weight !== undefined && min !== undefined && max !== undefined) return { weight, min, max };
  return undefined;
}

/** The most a tenant may weigh (its tasks go out this many in a row at most); as SetTenantWeight. */
const MAX_WEIGHT = 1000;

function entries(c: Collector, field: string, raw: unknown): [string, Obj][] {
  if (raw === undefined || raw === null) return [];
  if (!isObj(raw)) {
    c.add(`field "flow.${field}"`, `must be a mapping of key to settings, got ${describe(raw)}`);
    return [];
  }
  const out: [string, Obj][] = [];
  for (const [key, v] of Object.entries(raw)) {
    if (!KEY_RE.test(key)) {
      c.add(
        `field "flow.${field}"`,
        `key ${JSON.stringify(key.slice(0, 40))} must be 1-128 of A-Z a-z 0-9 . _ : / @ -, or a template prefix:*`,
      );
      continue;
    }
    if (!isObj(v)) c.add(`field "flow.${field}.${key}"`, `must be a mapping, got ${describe(v)}`);
    else out.push([key, v]);
  }
  return out;
}

/** The section as YAML-ready data (topologyToDocument), or undefined when absent. */
export function flowToDocument(f: FlowSpec | undefined): Obj | undefined {
  if (!f) return undefined;
  const o: Obj = { lingerMs: f.lingerMs };
  if (f.concurrency.size)
    o.concurrency = Object.fromEntries(
      [...f.concurrency].map(([k, { share, ...v }]) => [k, share ? { ...v, ...share } : { ...v }]),
    );
  if (f.rateLimits.size) o.rateLimits = Object.fromEntries([...f.rateLimits].map(([k, v]) => [k, { ...v }]));
  if (f.tenants?.size) o.tenants = Object.fromEntries([...f.tenants].map(([k, v]) => [k, { ...v }]));
  return o;
}
