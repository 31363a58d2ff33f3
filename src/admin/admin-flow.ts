// AdminService's flow-control calls (docs/flow-control.md), at the root
// cell's leader (the caller routes them there): SetConcurrencyLimit commits a
// `flowLimitSet` command to the root's log, GetFlow lists every key with its
// counts (permits from the ledger, tasks waiting from the leader's gate);
// SetTenantWeight commits a `tenantWeightSet` (the tenants' DRR weights),
// SetTenantShare a `tenantShareSet` (a tenant's minimum and ceiling of slots),
// SetKeyShare a `keyShareSet` (a key's weight, minimum and ceiling).
import type {
  FlowKey,
  FlowRate,
  GetFlowResponse,
  KeyShare,
  SetKeyShareRequest,
  SetKeyShareResponse,
  SetConcurrencyLimitResponse,
  SetTenantShareRequest,
  SetTenantShareResponse,
  SetTenantWeightRequest,
  SetTenantWeightResponse,
  TenantShare,
} from '../gen/meshlb/v1/admin.js';
import { emissionMs } from '../flow/gcra.js';
import { strategyOf } from '../flow/flow-state.js';
import type { Cell } from '../mesh/cell.js';
import { checkLength, invalidArgument } from '../util/errors.js';
import { LIMITS } from '../util/limits.js';
import { commit, replicated } from './admin-tasks.js';

/** The flow calls name the root or nothing: it owns every key's counter. */
export function checkFlowCell(named: string): void {
  if (named.trim() !== '' && named.trim() !== '/')
    throw invalidArgument('flow control is held by the root cell "/": leave cell empty or name "/"');
}

function flowKey(cell: Cell, key: string): FlowKey {
  const f = cell.ledger.flow;
  const limit = f.limit(key);
  return {
    key,
    limit: Number.isFinite(limit) ? limit : 0,
    strategy: f.strategy(key),
    inFlight: f.permits.held(key),
    lingering: f.permits.lingeringOf(key),
    waiting: cell.home.flow.backlog().get(`c:${key}`) ?? 0,
    runtimeLimit: f.hasRuntimeLimit(key),
  };
}

export function getFlow(cell: Cell): GetFlowResponse {
  const f = cell.ledger.flow;
  const backlog = cell.home.flow.backlog();
  const now = cell.scheduler.now();
  const keys = [...f.keys()].sort().map((k) => flowKey(cell, k));
  const rates = f
    .rateKeys()
    .sort()
    .map((key): FlowRate => {
      const r = f.rateRule(key)!;
      // One unit may start once the TAT is at most (burst - 1) intervals ahead.
      const next = f.tat(key) - (r.burst - 1) * emissionMs(r);
      return {
        key,
        units: r.units,
        periodMs: r.periodMs,
        burst: r.burst,
        nextUnixMs: next > now ? Math.ceil(next) : 0,
        waiting: backlog.get(`r:${key}`) ?? 0,
      };
    });
  const tenantWeights = [...f.weights]
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([tenant, weight]) => ({ tenant, weight }));
  const tenantShares = f.shares.tenants().map((t) => tenantShare(cell, t));
  const keyShares = [...f.keyShares.subjects()].sort().map((k) => keyShare(cell, k));
  return { keys, rates, tenantWeights, tenantShares, keyShares };
}

function keyShare(cell: Cell, key: string): KeyShare {
  const f = cell.ledger.flow;
  const s = f.keyShares.share(key);
  return {
    key,
    weight: s.weight || 1,
    minSlots: s.min,
    maxSlots: s.max,
    inFlight: f.permits.held(key),
    lingering: f.permits.lingeringOf(key),
    waiting: cell.home.flow.backlog().get(`c:${key}`) ?? 0,
    runtime: f.keyShares.hasRuntime(key),
  };
}

function tenantShare(cell: Cell, tenant: string): TenantShare {
  const f = cell.ledger.flow;
  const s = f.shares.share(tenant);
  const p = f.shares.permits;
  return {
    tenant,
    minSlots: s.min,
    maxSlots: s.max,
    inFlight: p.held(tenant),
    lingering: p.lingeringOf(tenant),
    waiting: cell.home.flow.tenants.waitingOf(tenant),
    runtime: f.shares.hasRuntime(tenant),
    weight: f.weight(tenant),
  };
}

/** The most slots a tenant's minimum or ceiling may name. */
export const MAX_TENANT_SLOTS = 1_000_000;

/** SetTenantShare: a `tenantShareSet` command in the root's log (its ledger counts, its leader's gate follows). */
export async function setTenantShare(cell: Cell, req: SetTenantShareRequest): Promise<SetTenantShareResponse> {
  const { tenant, minSlots: min, maxSlots: max } = req;
  if (!tenant) throw invalidArgument('tenant is required');
  checkLength('tenant', tenant, LIMITS.tenant);
  if (min > MAX_TENANT_SLOTS || max > MAX_TENANT_SLOTS)
    throw invalidArgument(`min_slots and max_slots must be 0..${MAX_TENANT_SLOTS}`);
  if (max > 0 && min > max) throw invalidArgument(`min_slots (${min}) must not exceed max_slots (${max})`);
  cell.home.mustLead();
  await commit(cell, { type: 'tenantShareSet', tenant, min, max, atMs: cell.scheduler.now() }, true);
  cell.log.info({ tenant, min, max }, 'tenant share set');
  return { tenant: tenantShare(cell, tenant), replicated: replicated(cell) };
}

/**
 * SetKeyShare: a `keyShareSet` command in the root's log. The key is one
 * tasks count against (a round-robin group's name, not a member's), not a
 * template: a template's keys are each their own and take no share.
 */
export async function setKeyShare(cell: Cell, req: SetKeyShareRequest): Promise<SetKeyShareResponse> {
  const { key, weight, minSlots: min, maxSlots: max } = req;
  if (!key) throw invalidArgument('key is required');
  checkLength('key', key, LIMITS.tenant);
  if (key.endsWith(':*')) throw invalidArgument(`${key} is a template: a share is set per key (name one, e.g. a:1)`);
  const counter = cell.ledger.flow.counterKey(key);
  if (counter !== key)
    throw invalidArgument(`${key} is a member of round-robin group ${counter}: set the group's share (key ${counter})`);
  if (weight > MAX_TENANT_WEIGHT) throw invalidArgument(`weight must be 0..${MAX_TENANT_WEIGHT}, got ${weight}`);
  if (min > MAX_TENANT_SLOTS || max > MAX_TENANT_SLOTS)
    throw invalidArgument(`min_slots and max_slots must be 0..${MAX_TENANT_SLOTS}`);
  if (max > 0 && min > max) throw invalidArgument(`min_slots (${min}) must not exceed max_slots (${max})`);
  cell.home.mustLead();
  await commit(cell, { type: 'keyShareSet', key, weight, min, max, atMs: cell.scheduler.now() }, true);
  cell.log.info({ key, weight, min, max }, 'key share set');
  return { key: keyShare(cell, key), replicated: replicated(cell) };
}

/** The most a tenant may weigh: its tasks go out this many in a row at most. */
export const MAX_TENANT_WEIGHT = 1000;

/** SetTenantWeight: a `tenantWeightSet` command in the root's log (every replica's queues follow it). */
export async function setTenantWeight(cell: Cell, req: SetTenantWeightRequest): Promise<SetTenantWeightResponse> {
  const { tenant, weight } = req;
  if (!tenant) throw invalidArgument('tenant is required');
  checkLength('tenant', tenant, LIMITS.tenant);
  if (weight > MAX_TENANT_WEIGHT) throw invalidArgument(`weight must be 0..${MAX_TENANT_WEIGHT}, got ${weight}`);
  cell.home.mustLead();
  await commit(cell, { type: 'tenantWeightSet', tenant, weight, atMs: cell.scheduler.now() }, true);
  cell.log.info({ tenant, weight }, 'tenant weight set');
  return { tenant: { tenant, weight: cell.ledger.flow.weight(tenant) }, replicated: replicated(cell) };
}

export async function setConcurrencyLimit(
  cell: Cell,
  key: string,
  limit: number,
  strategy = '',
): Promise<SetConcurrencyLimitResponse> {
  if (!key) throw invalidArgument('key is required');
  checkLength('key', key, LIMITS.tenant);
  if (strategy !== '' && strategyOf(strategy) === '')
    throw invalidArgument(
      `strategy must be queue, cancel-newest or cancel-in-progress (round-robin groups are set in the topology), got ${JSON.stringify(strategy.slice(0, 40))}`,
    );
  if (strategy !== '' && cell.ledger.flow.isGroup(key))
    throw invalidArgument(`${key} is a round-robin group of the topology: its strategy cannot change at runtime`);
  cell.home.mustLead();
  await commit(cell, { type: 'flowLimitSet', key, limit, strategy, atMs: cell.scheduler.now() }, true);
  cell.log.info({ key, limit, strategy: strategy || 'topology' }, 'concurrency limit set');
  return { key: flowKey(cell, key), replicated: replicated(cell) };
}
