// AdminService calls that change a cell's Raft group: TransferLeader,
// AddReplica, RemoveReplica. Each answers on the cell's leader only; the
// checks run in the order an operator fixes them: fields over their limits
// (INVALID_ARGUMENT, before anything is looked up), a cell with no group
// ("not replicated"), then a follower (FAILED_PRECONDITION naming the leader,
// UNAVAILABLE during an election), then the arguments (INVALID_ARGUMENT).
// The group itself is the cell's ReplicatedLog (src/mesh/raft-cell-log.ts).
import { status } from '@grpc/grpc-js';
import type {
  AddReplicaRequest,
  AddReplicaResponse,
  RaftMember,
  RemoveReplicaRequest,
  RemoveReplicaResponse,
  TransferLeaderRequest,
  TransferLeaderResponse,
} from '../gen/meshlb/v1/admin.js';
import type { Cell } from '../mesh/cell.js';
import type { GroupMember } from '../mesh/leadership.js';
import { checkLength, invalidArgument, MeshError } from '../util/errors.js';
import { clip, LIMITS } from '../util/limits.js';

/** An operator's TransferLeader waits this long for the new leader (a SIGTERM hand-over has its own bound). */
export const TRANSFER_TIMEOUT_MS = 5_000;
/** AddReplica waits this long for the learner to catch up before making it a voter. */
export const CATCH_UP_TIMEOUT_MS = 30_000;

/** Replica numbers are small: a cell has 1, 3 or 5 replicas, plus some being replaced. */
const MAX_REPLICA_NUMBER = 999;

/** "2" or "/eu#2" → "/eu#2" for a replica of `cell`; anything else is INVALID_ARGUMENT. */
export function replicaId(cell: string, text: string): string {
  const t = text.trim();
  const digits = t.startsWith(`${cell}#`) ? t.slice(cell.length + 1) : t;
  const n = /^\d{1,4}$/.test(digits) ? Number(digits) : NaN;
  if (!(n >= 1 && n <= MAX_REPLICA_NUMBER)) {
    throw invalidArgument(
      `${clip(text)} does not name a replica of cell ${cell}: give its id (${cell}#2) or its number (2)`,
    );
  }
  return `${cell}#${n}`;
}

function replicaNumber(id: string): number {
  return Number(id.slice(id.lastIndexOf('#') + 1)) || 0;
}

/** host:port with a port in 1-65535 (IPv6 hosts in brackets). */
function checkAddress(address: string): string {
  const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9._-]+):(\d{1,5})$/.exec(address.trim());
  const port = m ? Number(m[2]) : 0;
  if (!m || port < 1 || port > 65535) throw invalidArgument(`address ${clip(address)} is not host:port`);
  return address.trim();
}

function raftMember(m: GroupMember): RaftMember {
  return { id: m.id, address: m.address, voter: m.voter, matchIndex: m.match };
}

function mustControl(cell: Cell): void {
  if (cell.ledgerLog.replication() === undefined) {
    throw new MeshError(
      status.FAILED_PRECONDITION,
      `not replicated: cell ${cell.path} runs on this replica alone, with no Raft group (no data dir)`,
    );
  }
  cell.home.mustLead();
}

export async function transferLeader(cell: Cell, req: TransferLeaderRequest): Promise<TransferLeaderResponse> {
  checkLength('to', req.to, LIMITS.replicaId);
  mustControl(cell);
  const to = req.to.trim() ? replicaId(cell.path, req.to) : undefined;
  const h = await cell.ledgerLog.transferLeader(to, TRANSFER_TIMEOUT_MS);
  cell.log.info({ from: h.from, to: h.to, term: h.term, tookMs: h.tookMs }, 'leadership transferred by operator');
  return { from: h.from, leaderId: h.to, leaderAddress: h.toAddress, term: h.term, tookMs: h.tookMs };
}

export async function addReplica(cell: Cell, req: AddReplicaRequest): Promise<AddReplicaResponse> {
  checkLength('replica', req.replica, LIMITS.replicaId);
  checkLength('address', req.address, LIMITS.address);
  mustControl(cell);
  let id: string;
  if (req.replica.trim()) {
    id = replicaId(cell.path, req.replica);
  } else {
    // The next number after every member and every replica this topology lists.
    const used = [
      ...cell.ledgerLog.members().map((m) => replicaNumber(m.id)),
      ...cell.spec.replicas.map((r) => r.replica),
    ];
    id = `${cell.path}#${Math.max(0, ...used) + 1}`;
  }
  const listed = cell.spec.replicas.find((r) => r.id === id)?.address;
  if (!req.address.trim() && !listed) {
    throw invalidArgument(`address is required: this replica's topology does not list ${id}`);
  }
  const address = checkAddress(req.address.trim() || listed!);
  cell.log.info({ replica: id, address }, 'adding a replica: learner first');
  const members = await cell.ledgerLog.addReplica(id, address, CATCH_UP_TIMEOUT_MS);
  cell.log.info({ replica: id, address }, 'replica added as a voter');
  const added = members.find((m) => m.id === id);
  return { added: added ? raftMember(added) : undefined, members: members.map(raftMember) };
}

export async function removeReplica(cell: Cell, req: RemoveReplicaRequest): Promise<RemoveReplicaResponse> {
  checkLength('replica', req.replica, LIMITS.replicaId);
  mustControl(cell);
  if (!req.replica.trim()) throw invalidArgument('replica is required (an id like /#3, or a number)');
  const id = replicaId(cell.path, req.replica);
  const members = await cell.ledgerLog.removeReplica(id);
  cell.log.info({ replica: id }, 'replica removed from the group');
  return { members: members.map(raftMember) };
}

/** GetCell's view of the group: voters then learners. */
export function groupMembers(cell: Cell): RaftMember[] {
  return cell.ledgerLog.members().map(raftMember);
}
