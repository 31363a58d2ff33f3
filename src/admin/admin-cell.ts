// AdminService calls that set a cell's operator config, run on the cell's
// leader (admin-route.ts brings them there): drain and undrain the cell,
// cordon and uncordon an agent of a node cell, set the routing policy. Each
// is a ledger command (ledger.ts `config`), so it is replicated with the
// cell's Raft log and every replica, and every later leader, applies it
// (src/mesh/cell-config.ts). A replica with no Raft group (meshlb dev) keeps
// it in memory: `replicated: false` in the answer says which. Also GetCell's
// refusal counts (`refusalCounts`).
import { status } from '@grpc/grpc-js';
import type {
  AgentInfo,
  CellRefusals,
  CordonAgentResponse,
  DrainCellResponse,
  PolicyResult,
  UncordonAgentResponse,
} from '../gen/meshlb/v1/admin.js';
import type { Cell } from '../mesh/cell.js';
import { isPolicyConfigError, policyFor } from '../mesh/cell-config.js';
import type { AgentSession } from '../mesh/agent-session.js';
import { checkLength, invalidArgument, MeshError, resourceExhausted } from '../util/errors.js';
import { clip, LIMITS } from '../util/limits.js';
import { commit, replicated } from './admin-tasks.js';

const failedPrecondition = (msg: string) => new MeshError(status.FAILED_PRECONDITION, msg);
export async function setCellDrain(cell: Cell, drain: boolean, reason: string): Promise<DrainCellResponse> {
  checkLength('reason', reason, LIMITS.reason);
  cell.home.mustLead();
  if (drain && !cell.spec.parent) {
    throw failedPrecondition(
      `cell ${cell.path} is the root: no parent sends it work to stop; drain its children, or stop submitting`,
    );
  }
  const why = reason || 'drained by operator';
  await commit(cell, { type: 'cellDrained', drain, reason: why, atMs: cell.scheduler.now() }, true);
  const c = cell.ledger.config;
  cell.log.info({ drain, reason: clip(why) }, drain ? 'cell drained by operator' : 'cell undrained by operator');
  return { cell: cell.path, draining: c.draining, reason: c.drainReason, replicated: replicated(cell) };
}

function nodeAgents(cell: Cell, agentId: string): NonNullable<Cell['agents']> {
  if (!agentId) throw invalidArgument('agent_id is required');
  checkLength('agent_id', agentId, LIMITS.agentId);
  if (!cell.agents) throw failedPrecondition(`cell ${cell.path} is a ${cell.tier} cell; agents connect to node cells`);
  return cell.agents;
}

function connected(cell: Cell, agentId: string, info: (s: AgentSession) => AgentInfo): AgentInfo | undefined {
  const s = cell.agents?.byId.get(agentId);
  return s && !s.dead ? info(s) : undefined;
}

export async function cordonAgent(
  cell: Cell,
  agentId: string,
  reason: string,
  info: (s: AgentSession) => AgentInfo,
): Promise<CordonAgentResponse> {
  nodeAgents(cell, agentId);
  checkLength('reason', reason, LIMITS.reason);
  cell.home.mustLead();
  const [r] = await commit(cell, { type: 'agentCordoned', agentId, cordon: true, atMs: cell.scheduler.now() }, true);
  if (r && !r.ok && r.why === 'full') {
    throw resourceExhausted(`cell ${cell.path} holds ${cell.ledger.config.cordoned.size} cordons, its limit`, 60_000);
  }
  cell.log.info({ agent: clip(agentId), reason: clip(reason) }, 'agent cordoned by operator');
  return { agent: connected(cell, agentId, info), replicated: replicated(cell) };
}

export async function uncordonAgent(
  cell: Cell,
  agentId: string,
  info: (s: AgentSession) => AgentInfo,
): Promise<UncordonAgentResponse> {
  nodeAgents(cell, agentId);
  cell.home.mustLead();
  const was = cell.ledger.config.cordoned.has(agentId);
  if (was) {
    await commit(cell, { type: 'agentCordoned', agentId, cordon: false, atMs: cell.scheduler.now() }, true);
    cell.log.info({ agent: clip(agentId) }, 'agent uncordoned by operator');
  }
  return { agent: connected(cell, agentId, info), wasCordoned: was };
}

/** The policy and config in force at `cell` (the operator's, else the topology's). */
export function policyInForce(cell: Cell): { policy: string; configJson: string; overridden: boolean } {
  const c = cell.ledger.config;
  if (c.policy) return { policy: c.policy, configJson: c.policyConfigJson, overridden: true };
  const raw = cell.spec.policyConfig;
  return { policy: cell.spec.policy, configJson: raw === undefined ? '' : JSON.stringify(raw), overridden: false };
}

/** Checks a policy and its JSON config as the cell would build it; INVALID_ARGUMENT naming what is wrong. */
export function checkPolicy(cell: Cell, policy: string, configJson: string): string {
  checkLength('policy', policy, LIMITS.policyName);
  checkLength('config_json', configJson, LIMITS.policyConfigJson);
  let normal = '';
  if (configJson.trim()) {
    let raw: unknown;
    try {
      raw = JSON.parse(configJson);
    } catch (err) {
      throw invalidArgument(`config_json is not JSON: ${(err as Error).message}`);
    }
    normal = JSON.stringify(raw);
  }
  try {
    policyFor(cell, policy, normal);
  } catch (err) {
    if (isPolicyConfigError(err)) throw invalidArgument(err.message);
    throw err;
  }
  return normal;
}

/** SetPolicy at this cell (the leader): the policy checked, then committed. */
export async function setPolicy(cell: Cell, policy: string, configJson: string, reset: boolean): Promise<PolicyResult> {
  if (reset && (policy || configJson)) throw invalidArgument('reset takes no policy or config_json');
  if (!reset && !policy) throw invalidArgument("policy is required (or reset, for the topology's)");
  const normal = reset ? '' : checkPolicy(cell, policy, configJson);
  cell.home.mustLead();
  const cmd = {
    type: 'policySet' as const,
    policy: reset ? '' : policy,
    configJson: normal,
    atMs: cell.scheduler.now(),
  };
  await commit(cell, cmd, true);
  const now = policyInForce(cell);
  return { cell: cell.path, policy: now.policy, configJson: now.configJson, replicated: replicated(cell), error: '' };
}

/** GetCell's `refusals`: the cell's refused sends (src/mesh/home-refusals.ts, refusal-wait.ts). */
export function refusalCounts(c: ReturnType<Cell['home']['refusals']['counts']>): CellRefusals {
  return {
    kept: c.kept,
    renumbered: c.renumbered,
    resentAtOnce: c.immediate,
    backedOff: c.delayed,
    backoffMs: Math.round(c.delayedMs),
    noMatchBelow: c.noMatchBelow,
  };
}
