// AdminService for one replica: the topology, this cell's state as this
// replica sees it (its Raft role and log included), its agents, draining an
// agent, and the cell's Raft group (group-admin.ts). Every failure is a
// status via toServiceError with one log line.
import type { sendUnaryData, ServerUnaryCall } from '@grpc/grpc-js';
import {
  ReplicaRole,
  type AdminServiceServer,
  type AgentInfo,
  type CellInfo,
  type ChildStatus,
  type DrainAgentRequest,
  type DrainAgentResponse,
  type GetCellRequest,
  type GetCellResponse,
} from '../gen/meshlb/v1/admin.js';
import type { AgentSession } from '../mesh/agent-session.js';
import type { Cell } from '../mesh/cell.js';
import { isUndecodable } from '../mesh/grpc-util.js';
import type { CellSpec } from '../topology/types.js';
import { addReplica, groupMembers, removeReplica, transferLeader } from './group-admin.js';
import { status } from '@grpc/grpc-js';
import { checkLength, invalidArgument, MeshError, notFound, toServiceError } from '../util/errors.js';
import { clip, LIMITS, truncate } from '../util/limits.js';

const failedPrecondition = (msg: string) => new MeshError(status.FAILED_PRECONDITION, msg);

function cellInfo(c: CellSpec): CellInfo {
  return {
    path: c.path,
    tier: c.tier,
    parent: c.parent,
    policy: c.policy,
    replicas: c.replicas.map((r) => ({ replica: r.replica, id: r.id, address: r.address })),
    labels: c.labels.map((l) => ({ key: l.key, value: l.value })),
  };
}

export function agentInfo(s: AgentSession): AgentInfo {
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
  };
}

/** The Raft runtime's role names (ReplicaStatus.role) as the admin enum. */
const ROLES: Record<string, ReplicaRole> = {
  leader: ReplicaRole.REPLICA_ROLE_LEADER,
  follower: ReplicaRole.REPLICA_ROLE_FOLLOWER,
  candidate: ReplicaRole.REPLICA_ROLE_CANDIDATE,
  preCandidate: ReplicaRole.REPLICA_ROLE_PRE_CANDIDATE,
};

export function adminService(cell: Cell): AdminServiceServer {
  const answer =
    <Req, Res>(what: string, fn: (req: Req) => Res | Promise<Res>) =>
    (call: ServerUnaryCall<Req, Res>, cb: sendUnaryData<Res>) => {
      const refuse = (err: unknown): void => {
        const se = toServiceError(err);
        cell.log.warn({ code: se.code, err: se.details }, `admin ${what} refused`);
        cb(se, null);
      };
      try {
        if (isUndecodable(call.request)) throw invalidArgument(`undecodable request: ${call.request.$invalid}`);
        const res = fn(call.request);
        if (res instanceof Promise) res.then((r) => cb(null, r), refuse);
        else cb(null, res);
      } catch (err) {
        refuse(err);
      }
    };
  return {
    getTopology: answer('GetTopology', () => ({
      name: cell.topology.name,
      cells: cell.topology.cells.map(cellInfo),
    })),
    getCell: answer('GetCell', (req: GetCellRequest): GetCellResponse => {
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
          for (const item of cell.routes.values())
            if (item.via?.type === 'child' && item.via.cell === child) inFlight++;
        return { cell: child, connected: link !== undefined, summary: link?.summary, inFlight };
      });
      const c = cell.ledger.counters;
      const unplaceable = [...cell.dispatcher.unplaceable()]
        .map(([kind, tasks]) => ({ kind, tasks }))
        .sort((a, b) => (a.kind < b.kind ? -1 : a.kind > b.kind ? 1 : 0));
      const raft = cell.ledgerLog.replication();
      const leader = cell.ledgerLog.leader();
      return {
        cell: cellInfo(cell.spec),
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
        queueDepth: cell.queue.size,
        inFlight: cell.inFlight(),
        unplaceable: unplaceable.reduce((n, k) => n + k.tasks, 0),
        unplaceableKinds: unplaceable,
      };
    }),
    listAgents: answer('ListAgents', () => ({
      cell: cell.path,
      agents: cell.agents ? [...cell.agents.byId.values()].filter((s) => !s.dead).map(agentInfo) : [],
    })),
    drainAgent: answer('DrainAgent', (req: DrainAgentRequest): DrainAgentResponse => {
      if (!req.agentId) throw invalidArgument('agent_id is required');
      checkLength('agent_id', req.agentId, LIMITS.agentId);
      checkLength('reason', req.reason, LIMITS.reason);
      if (!cell.agents)
        throw failedPrecondition(`cell ${cell.path} is a ${cell.tier} cell; agents connect to node cells`);
      const s = cell.agents.drainAgent(req.agentId, req.reason || 'drained by operator');
      cell.log.info(
        { agent: truncate(req.agentId, LIMITS.echo), reason: truncate(req.reason, LIMITS.echo) },
        'agent drain ordered',
      );
      return { agent: agentInfo(s) };
    }),
    transferLeader: answer('TransferLeader', (req) => transferLeader(cell, req)),
    addReplica: answer('AddReplica', (req) => addReplica(cell, req)),
    removeReplica: answer('RemoveReplica', (req) => removeReplica(cell, req)),
  };
}
