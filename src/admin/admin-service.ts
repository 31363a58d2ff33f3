// AdminService for one replica: the topology, this cell's state as this
// replica sees it (its Raft role and log included), its agents, draining and
// cordoning agents, draining cells, the cell's tasks and dead letters
// (admin-tasks.ts), its routing policy (admin-cell.ts), the whole mesh's
// status (mesh-status.ts) and the cell's Raft group (group-admin.ts).
// Calls that name a cell are answered by its leader (admin-route.ts). Every
// failure is a status via toServiceError with one log line.
import { status, type ChannelCredentials, type sendUnaryData, type ServerUnaryCall } from '@grpc/grpc-js';
import {
  ReplicaRole,
  type AdminServiceServer,
  type AgentInfo,
  type CellInfo,
  type ChildStatus,
  type DrainAgentRequest,
  type DrainAgentResponse,
  type ExplainTaskRequest,
  type ExplainTaskResponse,
  type GetCellRequest,
  type GetCellResponse,
  type GetTopologyResponse,
  type ListAgentsResponse,
  type ListTasksRequest,
  type PolicyResult,
  type SetPolicyRequest,
  type SetPolicyResponse,
} from '../gen/meshlb/v1/admin.js';
import { TaskState } from '../gen/meshlb/v1/task.js';
import { DEFAULT_HAND_BACK_GRACE_MS } from '../mesh/agent-checkpoint.js';
import type { AgentSession } from '../mesh/agent-session.js';
import type { Cell } from '../mesh/cell.js';
import { isUndecodable } from '../mesh/grpc-util.js';
import { toProtoTask } from '../mesh/ledger.js';
import { isForwarded } from '../mesh/task-forward.js';
import type { BreakerInfo } from '../mesh/dispatcher-breakers.js';
import type { CellSpec, Tier } from '../topology/types.js';
import { addReplica, groupMembers, removeReplica, transferLeader } from './group-admin.js';
import { checkLength, invalidArgument, MeshError, notFound, toServiceError } from '../util/errors.js';
import { clip, LIMITS, truncate } from '../util/limits.js';
import { cordonAgent, policyInForce, refusalCounts, setCellDrain, setPolicy, uncordonAgent } from './admin-cell.js';
import {
  AdminRouter,
  asCaller,
  msLeft,
  targetCell,
  type AdminMethod,
  type RequestOf,
  type ResponseOf,
} from './admin-route.js';
import { breakerMessage, explainTask } from './admin-placement.js';
import { checkTaskId, getTask, listTasks, replayDeadLetters, retryTask } from './admin-tasks.js';
import * as flows from './admin-flow.js';
import { getVersionRamp, setVersionRamp } from './admin-versions.js';
import { FLOW_OWNER } from '../flow/admission.js';
import { liveAddress, MeshStatus } from './mesh-status.js';
import { scaleRecommendations } from './admin-forecast.js';

const failedPrecondition = (msg: string) => new MeshError(status.FAILED_PRECONDITION, msg);

function cellInfo(c: CellSpec, leader?: { id: string; address: string }): CellInfo {
  return {
    leaderId: leader?.id ?? '',
    leaderAddress: leader?.address ?? '',
    path: c.path,
    tier: c.tier,
    parent: c.parent,
    policy: c.policy,
    replicas: c.replicas.map((r) => ({ replica: r.replica, id: r.id, address: r.address })),
    labels: c.labels.map((l) => ({ key: l.key, value: l.value })),
  };
}

export function agentInfo(s: AgentSession, breaker?: BreakerInfo): AgentInfo {
  return {
    agentId: s.id,
    kinds: [...s.kinds],
    labels: s.labels.map((l) => ({ key: l.key, value: l.value })),
    slots: s.slots,
    inFlight: s.inFlight,
    cpu: s.cpu,
    memory: s.memory,
    draining: s.draining,
    connectedUnixMs: s.connectedMs,
    lastSeenUnixMs: s.lastSeenMs,
    successEwma: s.success.value,
    latencyEwmaMs: s.latencyMs.value,
    cordoned: s.cordoned,
    breaker: breakerMessage(breaker),
    version: s.version,
  };
}

/** The Raft runtime's role names (ReplicaStatus.role) as the admin enum. */
const ROLES: Record<string, ReplicaRole> = {
  leader: ReplicaRole.REPLICA_ROLE_LEADER,
  follower: ReplicaRole.REPLICA_ROLE_FOLLOWER,
  candidate: ReplicaRole.REPLICA_ROLE_CANDIDATE,
  preCandidate: ReplicaRole.REPLICA_ROLE_PRE_CANDIDATE,
};

const TIERS: readonly Tier[] = ['global', 'region', 'zone', 'node'];

export interface AdminOptions {
  /** This replica's live address (GetMeshStatus, GetTopology); '' when unknown. */
  readonly selfAddress?: () => string;
  /** The parent cell's replica addresses (default: the topology's). */
  readonly parentAddresses?: () => readonly string[];
  /** TLS for channels to other replicas (by the cell they serve); plaintext when absent. */
  readonly credentials?: (cell: string) => ChannelCredentials | undefined;
}

type Call<Req, Res> = ServerUnaryCall<Req, Res>;

/** One replica's AdminService: the gRPC handlers, and the same answers for the live page (page-server.ts). */
export class Admin {
  readonly router: AdminRouter;
  readonly mesh: MeshStatus;
  private readonly selfAddress: () => string;

  constructor(
    readonly cell: Cell,
    opts: AdminOptions = {},
  ) {
    this.selfAddress = opts.selfAddress ?? (() => '');
    const parentAddresses =
      opts.parentAddresses ?? (() => cell.topology.byPath.get(cell.spec.parent)?.replicas.map((r) => r.address) ?? []);
    this.router = new AdminRouter(cell, {
      ...(opts.credentials ? { credentials: opts.credentials } : {}),
      locate: (path) => this.mesh.locate(path),
    });
    this.mesh = new MeshStatus({ cell, router: this.router, selfAddress: this.selfAddress, parentAddresses });
  }

  close(): void {
    this.router.close();
  }

  /** An agent with the node's breaker for it. */
  private readonly agentInfo = (s: AgentSession): AgentInfo => agentInfo(s, this.cell.breakers.info(s.id));

  /**
   * `method` for the cell `named` ('' = this one), at its leader: `local` here
   * when this replica leads it, else forwarded there (admin-route.ts).
   */
  async routed<M extends AdminMethod>(
    method: M,
    named: string,
    req: RequestOf<M>,
    deadlineMs: number,
    forwarded: boolean,
    local: (target: string) => ResponseOf<M> | Promise<ResponseOf<M>>,
  ): Promise<ResponseOf<M>> {
    const target = targetCell(this.cell, named);
    const route = await this.router.route(target, forwarded);
    if (route.local) return local(target);
    return this.router.call(route.address, target, method, { ...req, cell: target }, deadlineMs);
  }

  getTopology(): GetTopologyResponse {
    const cell = this.cell;
    const known = new Map<string, { id: string; address: string }>();
    const hint = cell.leaderHint();
    const self = this.selfAddress();
    if (cell.leading) known.set(cell.path, { id: cell.replicaId, address: self || hint.leaderAddress });
    else if (hint.leader) known.set(cell.path, { id: hint.leader, address: hint.leaderAddress });
    for (const [child, link] of cell.children?.links ?? []) {
      const s = link.summary;
      if (s?.leaderId)
        known.set(child, { id: s.leaderId, address: liveAddress(cell, child, s.leaderId, s.leaderAddress) });
    }
    return { name: cell.topology.name, cells: cell.topology.cells.map((c) => cellInfo(c, known.get(c.path))) };
  }

  getCell(req: GetCellRequest): GetCellResponse {
    const cell = this.cell;
    checkLength('path', req.path, LIMITS.cellPath);
    if (req.path && req.path !== cell.path) {
      const known = cell.topology.byPath.get(req.path);
      if (!known) throw notFound(`cell ${clip(req.path)} is not in topology ${cell.topology.name}`);
      const addr = known.replicas.map((r) => r.address).join(',');
      throw failedPrecondition(`this replica serves ${cell.path}; ask a replica of ${req.path} (${addr})`);
    }
    const now = cell.scheduler.now();
    const children: ChildStatus[] = cell.spec.children.map((child) => {
      const link = cell.children?.links.get(child);
      let inFlight = 0;
      if (link)
        for (const item of cell.routes.values()) if (item.via?.type === 'child' && item.via.cell === child) inFlight++;
      const breaker = breakerMessage(cell.breakers.info(child));
      return { cell: child, connected: link !== undefined, summary: link?.summary, inFlight, breaker };
    });
    const c = cell.ledger.counters;
    const unplaceable = [...cell.dispatcher.unplaceable()]
      .map(([kind, tasks]) => ({ kind, tasks }))
      .sort((a, b) => (a.kind < b.kind ? -1 : a.kind > b.kind ? 1 : 0));
    const raft = cell.ledgerLog.replication();
    const leader = cell.ledgerLog.leader();
    const policy = policyInForce(cell);
    return {
      cell: cellInfo(cell.spec, leader),
      replicaId: cell.replicaId,
      leader: cell.leading,
      leaderId: leader?.id ?? '',
      leaderAddress: leader?.address ?? '',
      term: raft?.term ?? 0,
      role: raft ? (ROLES[raft.role] ?? ReplicaRole.UNRECOGNIZED) : ReplicaRole.REPLICA_ROLE_SOLE,
      commitIndex: raft?.commit ?? 0,
      appliedIndex: raft?.applied ?? 0,
      logEntries: raft?.logEntries ?? 0,
      members: groupMembers(cell),
      dispatched: cell.stats.dispatched,
      summary: cell.summaries.build(0, now, ''),
      children,
      parentConnected: cell.parent?.connected ?? false,
      tasksAccepted: c.accepted,
      tasksCompleted: c.completed,
      tasksFailed: c.failed,
      tasksDeadLettered: c.deadLettered,
      tasksCancelled: c.cancelled,
      queueDepth: cell.queue.size,
      inFlight: cell.inFlight(),
      unplaceable: unplaceable.reduce((n, k) => n + k.tasks, 0),
      unplaceableKinds: unplaceable,
      draining: cell.draining,
      drainReason: cell.ledger.config.draining ? cell.ledger.config.drainReason : '',
      policy: policy.policy,
      policyConfigJson: policy.configJson,
      policyOverridden: policy.overridden,
      refusals: refusalCounts(cell.home.refusals.counts()),
    };
  }

  listAgents(): ListAgentsResponse {
    const cell = this.cell;
    return {
      cell: cell.path,
      agents: cell.agents ? [...cell.agents.byId.values()].filter((s) => !s.dead).map(this.agentInfo) : [],
    };
  }

  drainAgent(req: DrainAgentRequest): DrainAgentResponse {
    const cell = this.cell;
    if (!req.agentId) throw invalidArgument('agent_id is required');
    checkLength('agent_id', req.agentId, LIMITS.agentId);
    checkLength('reason', req.reason, LIMITS.reason);
    if (!cell.agents)
      throw failedPrecondition(`cell ${cell.path} is a ${cell.tier} cell; agents connect to node cells`);
    // Migrate: running attempts are checkpointed and handed back (docs/agent-protocol.md, Checkpoints).
    const grace = req.migrate ? Math.min(req.graceMs || DEFAULT_HAND_BACK_GRACE_MS, 600_000) : undefined;
    const s = cell.agents.drainAgent(req.agentId, req.reason || 'drained by operator', grace);
    const fields = { agent: truncate(req.agentId, LIMITS.echo), reason: truncate(req.reason, LIMITS.echo) };
    cell.log.info({ ...fields, migrate: req.migrate }, 'agent drain ordered');
    return { agent: this.agentInfo(s) };
  }

  /** SetPolicy: one cell (routed to its leader), or every cell of a tier (each routed; errors per cell). */
  async setPolicy(req: SetPolicyRequest, deadlineMs: number, forwarded: boolean): Promise<SetPolicyResponse> {
    checkLength('tier', req.tier, LIMITS.policyName);
    checkLength('policy', req.policy, LIMITS.policyName);
    checkLength('config_json', req.configJson, LIMITS.policyConfigJson);
    const one = (named: string): Promise<SetPolicyResponse> =>
      this.routed('setPolicy', named, { ...req, tier: '' }, deadlineMs, forwarded, async (target) => ({
        cells: [await setPolicy(this.cell, req.policy, req.configJson, req.reset)].map((r) => ({ ...r, cell: target })),
      }));
    if (!req.tier) return one(req.cell);
    if (req.cell) throw invalidArgument('give cell or tier, not both');
    if (!TIERS.includes(req.tier as Tier)) {
      throw invalidArgument(`tier ${clip(req.tier)} is not one of ${TIERS.join(', ')}`);
    }
    if (forwarded) throw invalidArgument('a forwarded SetPolicy names one cell');
    const cells = this.cell.topology.cells.filter((c) => c.tier === req.tier).map((c) => c.path);
    const results = await Promise.all(
      cells.map(async (path): Promise<PolicyResult> => {
        try {
          const r = await one(path);
          return r.cells[0] ?? { cell: path, policy: '', configJson: '', replicated: false, error: 'no answer' };
        } catch (err) {
          const se = toServiceError(err);
          return {
            cell: path,
            policy: '',
            configJson: '',
            replicated: false,
            error: `${status[se.code!]}: ${se.details}`,
          };
        }
      }),
    );
    this.cell.log.info(
      { tier: req.tier, policy: req.policy, reset: req.reset, cells: cells.length },
      'tier policy set',
    );
    return { cells: results };
  }

  /** The gRPC handlers. */
  implementation(): AdminServiceServer {
    const cell = this.cell;
    const answer =
      <Req, Res>(what: string, fn: (req: Req, call: Call<Req, Res>) => Res | Promise<Res>) =>
      (call: Call<Req, Res>, cb: sendUnaryData<Res>) => {
        const refuse = (err: unknown): void => {
          const se = toServiceError(err);
          cell.log.warn({ code: se.code, err: se.details }, `admin ${what} refused`);
          cb(se, null);
        };
        try {
          if (isUndecodable(call.request)) throw invalidArgument(`undecodable request: ${call.request.$invalid}`);
          const auth = call.metadata.get('authorization')[0];
          const res = asCaller(typeof auth === 'string' ? auth : '', () => fn(call.request, call));
          if (res instanceof Promise) res.then((r) => cb(null, r), refuse);
          else cb(null, res);
        } catch (err) {
          refuse(err);
        }
      };
    /** A call about the cell its request names, answered at that cell's leader. */
    const routed = <M extends AdminMethod>(
      method: M,
      what: string,
      local: (req: RequestOf<M> & { cell: string }) => ResponseOf<M> | Promise<ResponseOf<M>>,
    ) =>
      answer(what, (req: RequestOf<M> & { cell: string }, call: Call<RequestOf<M>, ResponseOf<M>>) =>
        this.routed(method, req.cell, req, msLeft(call.getDeadline()), isForwarded(call.metadata), () => local(req)),
      );
    /** A flow-control call, answered at the root's leader whatever replica is asked. */
    const flow = <M extends AdminMethod>(
      method: M,
      what: string,
      local: (req: RequestOf<M> & { cell: string }) => ResponseOf<M> | Promise<ResponseOf<M>>,
    ) =>
      answer(what, (req: RequestOf<M> & { cell: string }, call: Call<RequestOf<M>, ResponseOf<M>>) => {
        flows.checkFlowCell(req.cell);
        return this.routed(method, FLOW_OWNER, req, msLeft(call.getDeadline()), isForwarded(call.metadata), () =>
          local(req),
        );
      });
    const info = this.agentInfo;
    return {
      getTopology: answer('GetTopology', () => this.getTopology()),
      getCell: answer('GetCell', (req: GetCellRequest) => this.getCell(req)),
      listAgents: answer('ListAgents', () => this.listAgents()),
      drainAgent: answer('DrainAgent', (req: DrainAgentRequest) => this.drainAgent(req)),
      transferLeader: answer('TransferLeader', (req) => transferLeader(cell, req)),
      addReplica: answer('AddReplica', (req) => addReplica(cell, req)),
      removeReplica: answer('RemoveReplica', (req) => removeReplica(cell, req)),
      getMeshStatus: answer('GetMeshStatus', (req, call) => {
        checkLength('cell', req.cell, LIMITS.cellPath);
        return this.mesh.answer(req, msLeft(call.getDeadline()), isForwarded(call.metadata));
      }),
      cordonAgent: routed('cordonAgent', 'CordonAgent', (req) => cordonAgent(cell, req.agentId, req.reason, info)),
      uncordonAgent: routed('uncordonAgent', 'UncordonAgent', (req) => uncordonAgent(cell, req.agentId, info)),
      drainCell: routed('drainCell', 'DrainCell', (req) => setCellDrain(cell, true, req.reason)),
      undrainCell: routed('undrainCell', 'UndrainCell', async () => {
        const r = await setCellDrain(cell, false, '');
        return { cell: r.cell, draining: r.draining, replicated: r.replicated };
      }),
      listTasks: routed('listTasks', 'ListTasks', (req) => listTasks(cell, req)),
      getTask: routed('getTask', 'GetTask', (req) => getTask(cell, req.taskId)),
      explainTask: answer(
        'ExplainTask',
        (req: ExplainTaskRequest, call: Call<ExplainTaskRequest, ExplainTaskResponse>) => {
          const deadline = msLeft(call.getDeadline());
          const ask = (next: string, r: ExplainTaskRequest): Promise<ExplainTaskResponse> =>
            this.routed('explainTask', next, r, deadline, false, () => explainTask(cell, r, ask));
          return this.routed('explainTask', req.cell, req, deadline, isForwarded(call.metadata), () =>
            explainTask(cell, req, ask),
          );
        },
      ),
      cancelTask: routed('cancelTask', 'CancelTask', async (req) => {
        checkTaskId(req.taskId);
        checkLength('reason', req.reason, LIMITS.reason);
        const rec = await cell.cancel(req.taskId, req.reason || 'cancelled by operator');
        return { task: toProtoTask(rec) };
      }),
      retryTask: routed('retryTask', 'RetryTask', (req) => retryTask(cell, req.taskId, req.reason)),
      listDeadLetters: routed('listDeadLetters', 'ListDeadLetters', (req) => deadLetters(cell, req)),
      replayDeadLetters: routed('replayDeadLetters', 'ReplayDeadLetters', (req) => replayDeadLetters(cell, req)),
      setPolicy: answer('SetPolicy', (req, call) =>
        this.setPolicy(req, msLeft(call.getDeadline()), isForwarded(call.metadata)),
      ),
      // Flow control is the root's (it owns every key's counter and the weights): routed there from anywhere.
      setConcurrencyLimit: flow('setConcurrencyLimit', 'SetConcurrencyLimit', (req) =>
        flows.setConcurrencyLimit(cell, req.key, req.limit, req.strategy),
      ),
      setTenantWeight: flow('setTenantWeight', 'SetTenantWeight', (req) => flows.setTenantWeight(cell, req)),
      setTenantShare: flow('setTenantShare', 'SetTenantShare', (req) => flows.setTenantShare(cell, req)),
      setKeyShare: flow('setKeyShare', 'SetKeyShare', (req) => flows.setKeyShare(cell, req)),
      getFlow: flow('getFlow', 'GetFlow', () => flows.getFlow(cell)),
      getScaleRecommendations: routed('getScaleRecommendations', 'GetScaleRecommendations', () =>
        scaleRecommendations(cell),
      ),
      // A node cell's, at its leader; no cell: every node cell's (docs/flow-control.md, "Version ramps").
      setVersionRamp: answer('SetVersionRamp', (req, call) => setVersionRamp(cell, req, call, this.routed.bind(this))),
      getVersionRamp: answer('GetVersionRamp', (req, call) => getVersionRamp(cell, req, call, this.routed.bind(this))),
    };
  }
}

/** ListDeadLetters: ListTasks of DEAD_LETTERED tasks, newest first. */
export function deadLetters(
  cell: Cell,
  req: Pick<ListTasksRequest, 'kind' | 'tenant' | 'pageSize' | 'pageToken'>,
): ReturnType<typeof listTasks> {
  return listTasks(cell, {
    cell: '',
    states: [TaskState.TASK_STATE_DEAD_LETTERED],
    kind: req.kind,
    tenant: req.tenant,
    pageSize: req.pageSize,
    pageToken: req.pageToken,
    newestFirst: true,
  });
}

/** The AdminService handlers of a replica (kept for callers that need no page). */
export function adminService(cell: Cell, opts: AdminOptions = {}): AdminServiceServer {
  return new Admin(cell, opts).implementation();
}
