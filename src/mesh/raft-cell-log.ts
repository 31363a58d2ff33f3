// The RaftLedgerLog as the cell's ReplicatedLog, with the group control the
// admin and a leader's hand-over need: leadership transfer and membership.
//
// Why proposals wait during a transfer: the Raft core refuses proposals while
// a transfer is in flight and the runtime retries them once a leader is known,
// i.e. it would forward them to the new leader, where they commit in its term
// AFTER it rebuilt its queue and leases from the ledger (onLeading). A task
// accepted that way would sit queued in the new leader's ledger with nobody
// dispatching it. So the cell's proposals made during a transfer are held
// here: once the transfer fails they go ahead as usual; once it succeeds they
// are refused (NotLeaderError: the caller retries at the new leader, a lapsed
// attempt is retried from the ledger). Entries appended before the transfer
// are on the new leader before it is told to campaign (the core waits until
// its log matches), so they commit before its ReadIndex barrier.
import { status } from '@grpc/grpc-js';
import { NotLeaderError, type RaftMember } from '../raft/index.js';
import { invalidArgument, MeshError } from '../util/errors.js';
import { toMeshError } from '../util/raft-status.js';
import type { ApplyResult, LedgerCommand } from './ledger.js';
import type { GroupMember, Handover, ReplicatedLog, ReplicationStatus } from './leadership.js';
import type { RaftLedgerLog } from './raft-ledger-log.js';
import type { Scheduler } from './scheduler.js';

/** How often a learner's catch-up is checked while AddReplica waits. */
const CATCH_UP_POLL_MS = 20;

const failedPrecondition = (msg: string) => new MeshError(status.FAILED_PRECONDITION, msg);

export class RaftCellLog implements ReplicatedLog {
  /** Settles when the transfer in flight ends: true if leadership moved. */
  private transfer: Promise<boolean> | undefined;
  private closed = false;

  constructor(
    private readonly log: RaftLedgerLog,
    private readonly scheduler: Scheduler,
  ) {}

  propose(cmds: readonly LedgerCommand[]): Promise<ApplyResult[][]> {
    const t = this.transfer;
    if (t === undefined) return this.log.propose(cmds);
    return t.then((moved) => {
      if (!moved) return this.log.propose(cmds);
      const l = this.log.leader();
      throw new NotLeaderError(l?.id ?? '', l?.address ?? '');
    });
  }

  isLeader(): boolean {
    return this.log.isLeader();
  }

  leader(): { id: string; address: string } | undefined {
    return this.log.leader();
  }

  readIndex(): Promise<void> {
    return this.log.readIndex();
  }

  onLeading(fn: (term: number) => void): () => void {
    return this.log.onLeading(fn);
  }

  onLeaderChange(fn: Parameters<RaftLedgerLog['onLeaderChange']>[0]): () => void {
    return this.log.onLeaderChange(fn);
  }

  replication(): ReplicationStatus {
    const st = this.log.status();
    return {
      role: st.role,
      term: st.term,
      leader: st.leader,
      leaderAddress: st.leaderAddress,
      commit: st.commit,
      applied: st.applied,
      lastIndex: st.lastIndex,
      logEntries: st.logEntries,
    };
  }

  close(): Promise<void> {
    this.closed = true;
    return this.log.close();
  }

  // ---------------------------------------------------------- group control

  members(): readonly GroupMember[] {
    return this.log.replica.members().map(publicMember);
  }

  async transferLeader(to: string | undefined, timeoutMs: number): Promise<Handover> {
    const replica = this.log.replica;
    this.mustLead();
    if (this.transfer) throw failedPrecondition('a leadership transfer is already in flight');
    const members = replica.members();
    const target = to === undefined ? pickSuccessor(members, replica.id) : members.find((m) => m.id === to);
    if (to !== undefined) {
      if (!target) throw invalidArgument(`${to} is not a member of the group (${names(members)})`);
      if (!target.voter) throw invalidArgument(`${to} is a learner; only a voter can lead`);
    }
    if (!target) throw failedPrecondition('no other voter to hand leadership to');
    const from = replica.id;
    const started = this.scheduler.now();
    if (target.id === from) {
      return { from, to: from, toAddress: target.address, term: replica.status().term, tookMs: 0 };
    }
    let done: (moved: boolean) => void = () => undefined;
    this.transfer = new Promise<boolean>((resolve) => (done = resolve));
    try {
      await replica.transferLeadership(target.id, { timeoutMs });
      done(true);
    } catch (err) {
      done(false);
      throw toMeshError(err);
    } finally {
      this.transfer = undefined;
    }
    const st = replica.status();
    return { from, to: target.id, toAddress: target.address, term: st.term, tookMs: this.scheduler.now() - started };
  }

  async addReplica(id: string, address: string, catchUpMs: number): Promise<readonly GroupMember[]> {
    const replica = this.log.replica;
    this.mustLead();
    const known = replica.members().find((m) => m.id === id);
    if (known && known.address && known.address !== address) {
      throw invalidArgument(`${id} is a member already, at ${known.address}, not ${address}`);
    }
    if (known?.voter) return this.members();
    try {
      if (!known) await replica.addLearner(id, address);
      // Caught up: it holds everything committed when it became a learner (or now, on a second call).
      const target = replica.status().commit;
      const caughtUp = await this.until(
        () => (replica.members().find((m) => m.id === id)?.match ?? 0) >= target,
        catchUpMs,
      );
      if (!caughtUp) {
        throw new MeshError(
          status.DEADLINE_EXCEEDED,
          `${id} was added as a learner but did not catch up within ${catchUpMs} ms (is it serving at ${address}, started with --join?); call AddReplica again to promote it`,
        );
      }
      this.mustLead();
      await replica.addVoter(id, address);
    } catch (err) {
      throw toMeshError(err);
    }
    return this.members();
  }

  async removeReplica(id: string): Promise<readonly GroupMember[]> {
    const replica = this.log.replica;
    this.mustLead();
    const members = replica.members();
    const m = members.find((x) => x.id === id);
    if (!m) throw invalidArgument(`${id} is not a member of the group (${names(members)})`);
    if (id === replica.id) {
      throw failedPrecondition(`${id} leads the group: TransferLeader first, then remove it at the new leader`);
    }
    if (m.voter && members.filter((x) => x.voter).length <= 1) throw invalidArgument(`${id} is the only voter`);
    try {
      await replica.removeNode(id);
    } catch (err) {
      throw toMeshError(err);
    }
    return this.members();
  }

  private mustLead(): void {
    if (this.log.isLeader()) return;
    throw toMeshError(new NotLeaderError(this.log.leader()?.id ?? '', this.log.leader()?.address ?? ''));
  }

  /** Resolves true as soon as `cond` holds, false once `timeoutMs` passed without it. */
  private until(cond: () => boolean, timeoutMs: number): Promise<boolean> {
    const by = this.scheduler.now() + timeoutMs;
    return new Promise((resolve) => {
      const check = (): void => {
        if (cond()) resolve(true);
        else if (this.closed || this.scheduler.now() >= by || !this.log.isLeader()) resolve(cond());
        else this.scheduler.setTimer(CATCH_UP_POLL_MS, check);
      };
      check();
    });
  }
}

function publicMember(m: RaftMember): GroupMember {
  return { id: m.id, address: m.address, voter: m.voter, match: m.match };
}

/** The other voter to hand over to: one heard from lately, then the longest log. */
function pickSuccessor(members: readonly RaftMember[], self: string): RaftMember | undefined {
  let best: RaftMember | undefined;
  for (const m of members) {
    if (!m.voter || m.id === self) continue;
    if (
      !best ||
      (m.recentActive && !best.recentActive) ||
      (m.recentActive === best.recentActive && m.match > best.match)
    ) {
      best = m;
    }
  }
  return best;
}

function names(members: readonly RaftMember[]): string {
  return members.map((m) => `${m.id}${m.voter ? '' : ' (learner)'}`).join(', ') || 'none';
}
