// What `meshlb sim` learns from the running mesh through AdminService.GetCell,
// always with short deadlines so a killed, paused or cut-off replica costs a
// poll, never a stall: who leads a cell, how long a failover took, when a cut
// link was seen down, and the home cell's counters at the end. Nothing here
// assumes cells run Raft: a replica that says `leader: true` leads, whether or
// not its peers say the same.
import * as grpc from '@grpc/grpc-js';
import { AdminServiceClient, type GetCellResponse } from '../../gen/meshlb/v1/admin.js';
import type { CellSpec } from '../../topology/types.js';
import type { FailoverSample, HomeCounters } from './report.js';

const POLL_MS = 50;
const POLL_DEADLINE_MS = 200;
/** How long a failover (and then dispatch resuming) is waited for before it counts as not measured. */
const FAILOVER_BOUND_MS = 20_000;

export const pause = (ms: number, stop?: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (stop?.aborted) return resolve();
    const done = () => {
      clearTimeout(t);
      stop?.removeEventListener('abort', done);
      resolve();
    };
    const t = setTimeout(done, Math.max(0, ms));
    stop?.addEventListener('abort', done);
  });

export class Observer {
  private readonly clients = new Map<string, AdminServiceClient>();
  /** Whether any replica ever reported GetCell.dispatched (replicas of older versions leave it out). */
  dispatchedReported = false;

  private client(address: string): AdminServiceClient {
    let c = this.clients.get(address);
    if (!c) {
      // Short reconnect backoff: a restarted replica must be seen within a poll or two.
      c = new AdminServiceClient(address, grpc.credentials.createInsecure(), {
        'grpc.initial_reconnect_backoff_ms': 50,
        'grpc.max_reconnect_backoff_ms': 300,
      });
      this.clients.set(address, c);
    }
    return c;
  }

  /** GetCell of the replica at `address` (its own cell), or undefined if it does not answer in time. */
  getCell(address: string, deadlineMs = POLL_DEADLINE_MS): Promise<GetCellResponse | undefined> {
    return new Promise((resolve) =>
      this.client(address).getCell(
        { path: '' },
        new grpc.Metadata(),
        { deadline: Date.now() + deadlineMs },
        (err, v) => {
          if (err) return resolve(undefined);
          if (v.dispatched !== undefined) this.dispatchedReported = true;
          resolve(v);
        },
      ),
    );
  }

  private async askAll(cell: CellSpec, deadlineMs: number) {
    const answers = await Promise.all(cell.replicas.map((r) => this.getCell(r.address, deadlineMs)));
    return cell.replicas.flatMap((r, i) => (answers[i] ? [{ replica: r.replica, id: r.id, res: answers[i] }] : []));
  }

  /**
   * The replica that leads `cell` now: the one that says so; if several do
   * (cells without consensus, or a stale leader not yet told), the highest
   * term, then the one most peers name. `answered` counts the replicas that
   * answered at all (0: GetCell cannot tell, e.g. an older replica).
   */
  async leaderOf(cell: CellSpec, deadlineMs = 1000): Promise<{ leader: number | undefined; answered: number }> {
    const answers = await this.askAll(cell, deadlineMs);
    const leaders = answers.filter((a) => a.res.leader);
    const named = (id: string) => answers.filter((a) => a.res.leaderId === id).length;
    leaders.sort(
      (a, b) => Number(b.res.term) - Number(a.res.term) || named(b.id) - named(a.id) || a.replica - b.replica,
    );
    return { leader: leaders[0]?.replica, answered: answers.length };
  }

  /**
   * From `t0` (just before the kill): until a different replica of the cell
   * says it leads, then until that replica's `dispatched` grows. Ends early
   * (not measured) when `stop` fires or a bound passes.
   */
  async measureFailover(cell: CellSpec, killed: number, t0: number, stop: AbortSignal): Promise<FailoverSample> {
    const sample: FailoverSample = { tier: cell.tier, cell: cell.path };
    const others = cell.replicas.filter((r) => r.replica !== killed);
    if (!others.length) return { ...sample, unmeasured: 'single replica' };
    let leader: { address: string; dispatched: number } | undefined;
    while (!leader) {
      if (stop.aborted) return { ...sample, unmeasured: 'run ended first' };
      if (Date.now() - t0 > FAILOVER_BOUND_MS) return { ...sample, unmeasured: 'no other replica led within 20 s' };
      const tick = Date.now();
      const answers = await Promise.all(others.map((r) => this.getCell(r.address)));
      const i = answers.findIndex((a) => a?.leader);
      if (i >= 0) {
        sample.failoverMs = Date.now() - t0;
        leader = { address: others[i]!.address, dispatched: answers[i]!.dispatched ?? 0 };
      } else await pause(POLL_MS - (Date.now() - tick), stop);
    }
    const from = Date.now();
    while (!stop.aborted && Date.now() - from < FAILOVER_BOUND_MS) {
      const tick = Date.now();
      const res = await this.getCell(leader.address);
      if (res?.dispatched !== undefined && res.dispatched > leader.dispatched) {
        sample.dispatchResumedMs = Date.now() - t0;
        break;
      }
      await pause(POLL_MS - (Date.now() - tick), stop);
    }
    return sample;
  }

  /**
   * While `until` is pending: ms from now until the replica at `address`
   * reports one of the links it had up (parent or a child) as down;
   * undefined if it never does (or had none up).
   */
  async linkDownSeen(address: string, until: AbortSignal): Promise<number | undefined> {
    const t0 = Date.now();
    const up = (c: GetCellResponse) => [
      ...(c.parentConnected ? ['parent'] : []),
      ...c.children.filter((ch) => ch.connected).map((ch) => ch.cell),
    ];
    const first = await this.getCell(address, 500);
    const before = first ? up(first) : [];
    if (!before.length) return undefined;
    while (!until.aborted) {
      const tick = Date.now();
      const now = await this.getCell(address);
      if (now) {
        const still = new Set(up(now));
        if (before.some((l) => !still.has(l))) return Date.now() - t0;
      }
      await pause(2 * POLL_MS - (Date.now() - tick), until);
    }
    return undefined;
  }

  /**
   * The counters of the replica leading the home cell (highest term, then most
   * accepted), waiting up to boundMs for one to answer as leader (an election
   * may be under way after a late kill).
   */
  async homeCounters(cell: CellSpec, boundMs = 10_000): Promise<HomeCounters | undefined> {
    const end = Date.now() + boundMs;
    for (;;) {
      const leaders = (await this.askAll(cell, 2000)).filter((a) => a.res.leader);
      leaders.sort(
        (a, b) => Number(b.res.term) - Number(a.res.term) || Number(b.res.tasksAccepted) - Number(a.res.tasksAccepted),
      );
      const r = leaders[0]?.res;
      if (r)
        return {
          accepted: Number(r.tasksAccepted),
          completed: Number(r.tasksCompleted),
          failed: Number(r.tasksFailed),
          deadLettered: Number(r.tasksDeadLettered),
          cancelled: Number(r.tasksCancelled),
          pending: r.queueDepth + r.inFlight,
        };
      if (Date.now() > end) return undefined;
      await pause(200);
    }
  }

  close(): void {
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }
}
