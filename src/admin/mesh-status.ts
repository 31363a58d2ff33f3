// GetMeshStatus: every cell of the mesh as its leader reports it now, for
// operators (`meshlb status`, the live page) and for finding a cell's live
// leader (admin-route.ts).
//
// How the tree is walked: a replica asked for the whole mesh hands the
// question to its cell's leader, which asks its parent, up to the root (at
// most MAX_HOPS asks). The root's leader answers for its own cell and asks
// each child for its subtree, at the address the child's summary names (its
// leader's live address), else at the topology's addresses; each child does
// the same below it, in parallel, each level with a little less of the
// caller's deadline. A subtree that does not answer in time is listed from
// the topology as UNREACHABLE, so the answer always has every cell. A replica
// that cannot reach its parent answers for its own subtree with `partial`.
//
// Why the leader: links, agents and dispatch live on the leader only, so its
// counts are the cell's; a follower's would say "no children linked".
import { status } from '@grpc/grpc-js';
import {
  CellHealth,
  type CellStatus,
  type GetMeshStatusRequest,
  type GetMeshStatusResponse,
} from '../gen/meshlb/v1/admin.js';
import type { Cell } from '../mesh/cell.js';
import type { CellSpec } from '../topology/types.js';
import { MeshError } from '../util/errors.js';
import { clip } from '../util/limits.js';
import type { AdminRouter } from './admin-route.js';

/** Asks up the tree before a whole-mesh answer gives up going higher. */
export const MAX_HOPS = 8;
/** A whole-mesh answer is reused this long (several pages and `status` polling one replica). */
const CACHE_MS = 500;
/** An answer used to locate a cell's leader may be this old. */
const LOCATE_MAX_AGE_MS = 2_000;
/** Each level down keeps this share of the time left, so a slow subtree leaves its parent time to answer. */
const LEVEL_SHARE = 0.8;

export interface MeshStatusDeps {
  readonly cell: Cell;
  readonly router: AdminRouter;
  /** This replica's live address ('' before it serves). */
  readonly selfAddress: () => string;
  /** The parent cell's replica addresses to ask (the link's, live in `meshlb dev`). */
  readonly parentAddresses: () => readonly string[];
}

export class MeshStatus {
  private cached: { atMs: number; answer: Promise<GetMeshStatusResponse> } | undefined;

  constructor(private readonly d: MeshStatusDeps) {}

  /** The GetMeshStatus answer (`forwarded`: the caller is another replica of this cell). */
  async answer(req: GetMeshStatusRequest, deadlineMs: number, forwarded: boolean): Promise<GetMeshStatusResponse> {
    const cell = this.d.cell;
    if (req.hops > MAX_HOPS) {
      throw new MeshError(status.FAILED_PRECONDITION, `GetMeshStatus asked up ${req.hops} times: addresses loop?`);
    }
    if (req.subtree) {
      if (req.cell && req.cell !== cell.path) {
        throw new MeshError(
          status.FAILED_PRECONDITION,
          `asked for cell ${clip(req.cell)}, but ${cell.replicaId} serves ${cell.path}: stale address?`,
        );
      }
      return {
        cells: await this.subtree(Date.now() + deadlineMs),
        answeredBy: cell.replicaId,
        atUnixMs: Date.now(),
        partial: '',
      };
    }
    if (req.hops === 0 && !forwarded) {
      const c = this.cached;
      if (c && Date.now() - c.atMs < CACHE_MS) return c.answer;
      const answer = this.whole(req.hops, Date.now() + deadlineMs, forwarded);
      this.cached = { atMs: Date.now(), answer };
      answer.catch(() => (this.cached = undefined));
      return answer;
    }
    return this.whole(req.hops, Date.now() + deadlineMs, forwarded);
  }

  /** The live address of `path`'s leader as a recent whole-mesh answer shows it, or undefined. */
  async locate(path: string): Promise<string | undefined> {
    const cell = this.d.cell;
    const link = cell.children?.links.get(path);
    if (link?.summary?.leaderAddress) return liveAddress(cell, path, link.summary.leaderId, link.summary.leaderAddress);
    const c = this.cached;
    const answer =
      c && Date.now() - c.atMs < LOCATE_MAX_AGE_MS
        ? c.answer
        : this.answer({ subtree: false, cell: '', hops: 0 }, 3_000, false);
    const found = (await answer).cells.find((s) => s.path === path);
    if (!found || found.health === CellHealth.CELL_HEALTH_UNREACHABLE) return undefined;
    return found.address || found.leaderAddress || undefined;
  }

  private async whole(hops: number, deadlineAt: number, forwarded: boolean): Promise<GetMeshStatusResponse> {
    const { cell, router } = this.d;
    const left = (): number => deadlineAt - Date.now();
    // A follower's view of links and agents is empty: its leader answers.
    const hint = cell.leaderHint();
    if (!cell.leading && !forwarded && hint.leaderAddress) {
      try {
        return await router.call(
          hint.leaderAddress,
          cell.path,
          'getMeshStatus',
          { subtree: false, cell: '', hops },
          left() * LEVEL_SHARE,
        );
      } catch {
        // The leader did not answer: this replica answers as it can.
      }
    }
    let partial = '';
    if (cell.spec.parent) {
      const errors: string[] = [];
      for (const address of this.d.parentAddresses()) {
        if (left() < 50) break;
        try {
          const req = { subtree: false, cell: '', hops: hops + 1 };
          return await router.call(address, cell.spec.parent, 'getMeshStatus', req, left() * LEVEL_SHARE, false);
        } catch (err) {
          errors.push(`${address}: ${err instanceof Error ? err.message : String(err)}`);
        }
      }
      partial = `parent cell ${cell.spec.parent} did not answer (${errors.join('; ') || 'no address'}): showing ${cell.path} and below`;
    }
    return { cells: await this.subtree(deadlineAt), answeredBy: cell.replicaId, atUnixMs: Date.now(), partial };
  }

  /** This cell and everything below it, parents first, with agents and slots summed up the tree. */
  private async subtree(deadlineAt: number): Promise<CellStatus[]> {
    const { cell } = this.d;
    const own = ownStatus(cell, this.d.selfAddress());
    const below = await Promise.all(cell.spec.children.map((child) => this.childSubtree(child, deadlineAt)));
    if (cell.tier !== 'node') {
      for (const rows of below) {
        const top = rows[0];
        if (!top) continue;
        own.agents += top.agents;
        own.healthyAgents += top.healthyAgents;
        own.freeSlots += top.freeSlots;
        own.totalSlots += top.totalSlots;
      }
    }
    if (own.problems.length > 0) own.health = CellHealth.CELL_HEALTH_DEGRADED;
    return [own, ...below.flat()];
  }

  private async childSubtree(child: string, deadlineAt: number): Promise<CellStatus[]> {
    const { cell, router } = this.d;
    const spec = cell.topology.byPath.get(child)!;
    const link = cell.children?.links.get(child);
    const live = link?.summary?.leaderAddress
      ? liveAddress(cell, child, link.summary.leaderId, link.summary.leaderAddress)
      : '';
    const addresses = [...new Set([live, ...spec.replicas.map((r) => r.address)].filter((a) => a))];
    const errors: string[] = [];
    for (const address of addresses) {
      const left = deadlineAt - Date.now();
      if (left < 20) break;
      try {
        const req = { subtree: true, cell: child, hops: 0 };
        const res = await router.call(address, child, 'getMeshStatus', req, left * LEVEL_SHARE, false);
        return res.cells;
      } catch (err) {
        errors.push(`${address}: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    const why = `no replica answered in time (${errors.join('; ') || 'out of time'})`;
    return unreachable(cell, spec, why);
  }
}

/** This replica's cell as it sees it now (sums over the subtree are added by the walk). */
export function ownStatus(cell: Cell, selfAddress: string): CellStatus {
  const problems: string[] = [];
  const hint = cell.leaderHint();
  const raft = cell.ledgerLog.replication();
  if (!cell.leading) {
    problems.push(
      hint.leader ? `${cell.replicaId} does not lead; ${hint.leader} does` : 'no leader known (an election?)',
    );
  }
  let linked = 0;
  if (cell.leading) {
    if (cell.spec.parent && !cell.parent?.connected) problems.push(`not linked to its parent ${cell.spec.parent}`);
    for (const child of cell.spec.children) {
      if (cell.children?.links.has(child)) linked++;
      else problems.push(`child ${child} not linked`);
    }
  }
  let agents = 0;
  let healthy = 0;
  let free = 0;
  let total = 0;
  for (const s of cell.agents?.byId.values() ?? []) {
    if (s.dead) continue;
    agents++;
    total += s.slots;
    if (s.usable) {
      healthy++;
      free += Math.max(0, s.slots - s.inFlight);
    }
  }
  if (cell.tier === 'node' && cell.leading && healthy === 0) problems.push('no agent takes work');
  let unplaceable = 0;
  for (const n of cell.dispatcher.unplaceable().values()) unplaceable += n;
  if (unplaceable > 0) problems.push(`${unplaceable} tasks wait for a kind no agent serves`);
  const c = cell.ledger.counters;
  const config = cell.ledger.config;
  const leaderAddress = cell.leading ? selfAddress || hint.leaderAddress : hint.leaderAddress;
  return {
    path: cell.path,
    tier: cell.tier,
    parent: cell.spec.parent,
    health: CellHealth.CELL_HEALTH_HEALTHY,
    problems,
    leaderId: hint.leader,
    leaderAddress,
    term: raft?.term ?? 0,
    replicaId: cell.replicaId,
    address: selfAddress,
    policy: config.policy || cell.spec.policy,
    policyOverridden: config.policy !== '',
    draining: cell.draining,
    drainReason: config.draining ? config.drainReason : '',
    agents,
    healthyAgents: healthy,
    freeSlots: free,
    totalSlots: total,
    queueDepth: cell.queue.size,
    inFlight: cell.inFlight(),
    tasksAccepted: c.accepted,
    tasksCompleted: c.completed,
    tasksFailed: c.failed,
    tasksCancelled: c.cancelled,
    tasksDeadLettered: c.deadLettered,
    dispatched: cell.stats.dispatched,
    unplaceable,
    childrenLinked: linked,
    children: cell.spec.children.length,
    parentConnected: cell.parent?.connected ?? false,
    observedUnixMs: Date.now(),
    replicas: cell.spec.replicas.length,
  };
}

/** `spec` and every cell below it, from the topology alone, marked UNREACHABLE. */
function unreachable(cell: Cell, spec: CellSpec, why: string): CellStatus[] {
  const rows: CellStatus[] = [];
  const visit = (s: CellSpec, problem: string): void => {
    rows.push({
      path: s.path,
      tier: s.tier,
      parent: s.parent,
      health: CellHealth.CELL_HEALTH_UNREACHABLE,
      problems: [problem],
      leaderId: '',
      leaderAddress: '',
      term: 0,
      replicaId: '',
      address: '',
      policy: s.policy,
      policyOverridden: false,
      draining: false,
      drainReason: '',
      agents: 0,
      healthyAgents: 0,
      freeSlots: 0,
      totalSlots: 0,
      queueDepth: 0,
      inFlight: 0,
      tasksAccepted: 0,
      tasksCompleted: 0,
      tasksFailed: 0,
      tasksCancelled: 0,
      tasksDeadLettered: 0,
      dispatched: 0,
      unplaceable: 0,
      childrenLinked: 0,
      children: s.children.length,
      parentConnected: false,
      observedUnixMs: Date.now(),
      replicas: s.replicas.length,
    });
    for (const child of s.children) visit(cell.topology.byPath.get(child)!, `below ${spec.path}, which did not answer`);
  };
  visit(spec, why);
  return rows;
}

/**
 * A summary's leader address, dialable: a replica bound to 0.0.0.0 or [::]
 * (containers) reports that; its topology address is used instead.
 */
export function liveAddress(cell: Cell, path: string, leaderId: string, address: string): string {
  if (!/^(0\.0\.0\.0|\[::\]|::):/.test(address)) return address;
  const listed = cell.topology.byPath.get(path)?.replicas.find((r) => r.id === leaderId)?.address;
  return listed ?? address;
}
