// Attempts passing through a cell: work forwarded to it (dispatches from the
// parent, spill-ups from children), results travelling back along each
// attempt's origin, cancels travelling toward where it went, and the failures
// the mesh makes itself — an attempt bounced (never started: `requeue`), lost
// with an agent or a link (`lost`), unplaceable (no agent of its kind anywhere
// it could go), or rejected (fatal). The cell's CellPort calls end here; home
// decisions are left to Home.
//
// A result is sent back along its route's origin exactly once: the route is
// dropped (routes.ts) in the same step.
import { status } from '@grpc/grpc-js';
import type { DispatchAck } from '../gen/meshlb/v1/link.js';
import {
  MeshFailure,
  ResultStatus,
  type Dispatch,
  type TaskCheckpoint,
  type TaskRef,
  type TaskResult,
} from '../gen/meshlb/v1/task.js';
import type { Logger } from '../util/log.js';
import { taskLogFields } from '../util/trace-context.js';
import type { Home } from './home.js';
import type { CellMeter } from './meter.js';
import type { Links } from './port.js';
import type { RouteTable } from './routes.js';
import type { Scheduler } from './scheduler.js';
import type { CellTracer } from './tracer.js';
import { labelsKey } from './label-groups.js';
import { saysNoMatch } from './refusal-wait.js';
import { leaseFor, type CellSettings } from './settings.js';
import type { CellTimers, WheelEntry } from './timers.js';
import {
  makeItem,
  meshFailure,
  routeKey,
  type MeshFailureKind,
  type Origin,
  type Via,
  type WorkItem,
} from './types.js';

export interface RelayDeps {
  readonly path: string;
  readonly settings: CellSettings;
  readonly log: Logger;
  readonly scheduler: Scheduler;
  readonly routes: RouteTable;
  readonly timers: CellTimers;
  readonly links: Links;
  readonly home: Home;
  readonly meter: CellMeter;
  readonly tracer: CellTracer;
  /** Queued work changed: pump on the next turn. */
  readonly wake: () => void;
  /** Where the outcomes of attempts sent on are judged (the circuit breakers, dispatcher-breakers.ts). */
  readonly outcomes: OutcomeSink;
}

/** Told how each attempt sent to an agent or a child ended. */
export interface OutcomeSink {
  /** `kind`: the task's kind (an agent's run time feeds the cell's forecasts). */
  result(via: Via, r: TaskResult, kind: string): void;
  /** The attempt was lost with the place it went (an agent or a link gone). */
  lost(via: Via): void;
  /** The attempt was refused where it went, unrun (a nack). */
  handedBack(via: Via): void;
}

export class Relay {
  /** Refuse forwarded work (a drain order from the parent, or shutting down). */
  draining = false;
  private readonly d: RelayDeps;
  /** When the route sweep's wheel entry comes due (Infinity: none armed). */
  private sweepAt = Infinity;

  constructor(deps: RelayDeps) {
    this.d = deps;
  }

  /** Dispatches from the parent (down) or spill-ups from a child (up): queue them, answer acks in order. */
  acceptForwarded(tasks: readonly Dispatch[], origin: Origin): DispatchAck[] {
    const { routes, settings } = this.d;
    const acks: DispatchAck[] = [];
    const now = this.d.scheduler.now();
    const exclude = origin.type === 'child' ? origin.cell : undefined;
    for (const d of tasks) {
      const reason = this.checkForwarded(d);
      if (reason) {
        this.d.meter.rejected(refusalCode(reason));
        acks.push({ taskId: d.taskId, attempt: d.attempt, accepted: false, reason, send: d.send });
        continue;
      }
      const key = routeKey(d.taskId, d.attempt);
      if (routes.has(key)) {
        // A duplicate of an attempt we hold: accept (idempotent), keep the first.
        acks.push({ taskId: d.taskId, attempt: d.attempt, accepted: true, reason: '', send: d.send });
        continue;
      }
      const spec = d.spec!;
      const leaseMs = d.leaseMs || leaseFor(spec, settings);
      const wire = d.leaseMs > 0 ? d : undefined;
      const item = makeItem(d.taskId, d.attempt, d.homeCell, spec, origin, exclude, key, leaseMs, wire, now);
      item.cameAs = d.send;
      const r = routes.admit(item, now);
      if (!r.ok) {
        this.d.meter.rejected(r.reason === 'expired' ? status.DEADLINE_EXCEEDED : status.RESOURCE_EXHAUSTED);
        acks.push({ taskId: d.taskId, attempt: d.attempt, accepted: false, reason: `queue ${r.reason}`, send: d.send });
        continue;
      }
      this.armRouteSweep(now + item.leaseMs + settings.leaseSlackMs);
      acks.push({ taskId: d.taskId, attempt: d.attempt, accepted: true, reason: '', send: d.send });
    }
    this.d.wake();
    return acks;
  }

  private checkForwarded(d: Dispatch): Refusal | '' {
    if (!d.taskId || d.attempt < 1 || !d.spec || !d.spec.kind || !d.homeCell) return 'malformed dispatch';
    if (d.spec.payload.length > this.d.settings.maxPayloadBytes) return 'payload too large';
    if (this.draining) return 'draining';
    if (this.d.routes.forwardQueued >= this.d.settings.forwardBuffer) return 'buffer full';
    return '';
  }

  /**
   * A dispatched attempt was refused downstream (a nack, or given back): hold it again here. `send`
   * names the refused send (0: a peer that predates send numbers): a late answer to an earlier send
   * of the attempt, which went out again since, is not this send's and changes nothing.
   */
  nacked(key: string, reason: string, send = 0): void {
    const item = this.d.routes.get(key);
    if (!item || item.via === undefined) return;
    if (send !== 0 && item.sendNo !== send) return;
    const task = taskLogFields(item.taskId, item.spec.traceParent);
    this.d.log.debug({ ...task, attempt: item.attempt, reason }, 'dispatch refused downstream; requeued');
    this.d.outcomes.handedBack(item.via);
    // A gang member goes on only with its gang (gang-route.ts): refused, it does not wait here apart
    // from the rest but goes back to its home as a requeue, which ends the gang whole there (gang.ts).
    if (item.spec.gangId)
      return this.failBack(item, 'requeue', `a member of gang ${item.spec.gangId} refused: ${reason}`);
    // A home attempt keeps its number a bounded number of times (home-refusals.ts), then goes to the ledger.
    if (item.origin.type === 'home' && !this.d.home.refusals.keep(item)) return this.failBack(item, 'requeue', reason);
    this.holdAgain(item, viaName(item.via, this.d.path), reason);
  }

  /** Results from a link (`from`: a child's, or the parent's), or made here. */
  deliverResults(results: readonly TaskResult[], from?: Via): void {
    for (const r of results) this.deliverResult(r, routeKey(r.taskId, r.attempt), from);
  }

  /** A result goes back along its route; one with no route still reaches the ledger if we are its home. */
  deliverResult(r: TaskResult, key = routeKey(r.taskId, r.attempt), from?: Via): void {
    const item = this.d.routes.get(key);
    if (item === undefined) {
      // Not ours to route: the home ledger fences it, or it is stale (an attempt no longer held here).
      if (this.d.home.ledger.has(r.taskId)) this.d.home.result(r);
      return;
    }
    const refusal = r.meshFailure === MeshFailure.MESH_FAILURE_REQUEUE && r.status === ResultStatus.RESULT_STATUS_ERROR;
    // A refusal from another place than where the attempt went now answers an earlier send: stale.
    if (refusal && from !== undefined && !sameVia(item.via, from)) return;
    if (item.via !== undefined) this.d.outcomes.result(item.via, r, item.kind);
    // A home attempt refused on its way (never started) waits here again under its number (home-refusals.ts).
    if (refusal && item.via !== undefined && this.d.home.refusals.keep(item)) {
      // No agent below that child matches its affinity: the picker skips it for this task (refusal-wait.ts).
      if (item.via.type === 'child' && saysNoMatch(r.error))
        this.d.home.refusals.wait.noMatch(
          item,
          item.via.cell,
          labelsKey(this.d.links.children?.links.get(item.via.cell)?.summary, item.kind),
        );
      return this.holdAgain(item, r.nodeCell || viaName(item.via, this.d.path), r.error);
    }
    this.d.routes.drop(item);
    this.d.meter.resultBack(item.arrivedMs, item.origin.type === 'home', r);
    if (this.d.tracer.enabled) this.d.tracer.resultBack(item, r, this.d.scheduler.now());
    this.sendBack(item.origin, r);
  }

  private sendBack(origin: Origin, r: TaskResult): void {
    switch (origin.type) {
      case 'home':
        this.d.home.result(r);
        return;
      case 'parent':
        this.d.links.parent?.sendResult(r);
        return;
      case 'child':
        this.d.links.children?.sendResult(origin.cell, r);
        return;
    }
  }

  /**
   * A running attempt's checkpoint: toward its home along the route's origin
   * (the route stays: the result comes later). Not routed here: ours if we
   * are its home (the home fences stale attempts), else dropped.
   */
  deliverCheckpoint(cp: TaskCheckpoint): void {
    const item = this.d.routes.get(routeKey(cp.taskId, cp.attempt));
    const origin = item?.origin;
    if (origin === undefined || origin.type === 'home') {
      if (this.d.home.ledger.has(cp.taskId)) this.d.home.checkpoints.offer(cp);
    } else if (origin.type === 'parent') this.d.links.parent?.sendCheckpoint(cp);
    else this.d.links.children?.sendCheckpoint(origin.cell, cp);
  }

  /** Cancels from the parent (down) or a child (for tasks it spilled up). */
  cancelRefs(refs: readonly TaskRef[], why: string): void {
    for (const ref of refs) {
      const item = this.d.routes.get(routeKey(ref.taskId, ref.attempt));
      if (item) this.cancelRoute(item, why);
    }
  }

  /** Drop an attempt held here and pass the cancel on toward where it went. */
  cancelRoute(item: WorkItem, why: string): void {
    this.d.routes.drop(item);
    const via = item.via;
    if (via === undefined) return;
    const ref = { taskId: item.taskId, attempt: item.attempt, slots: 0 };
    const links = this.d.links;
    if (via.type === 'child') links.children?.sendCancel(via.cell, ref);
    else if (via.type === 'parent') links.parent?.sendCancel(ref);
    else links.agents?.cancel(via.agentId, ref, why);
  }

  agentLost(agentId: string, why: string): number {
    return this.viaLost((v) => v.type === 'agent' && v.agentId === agentId, `agent ${agentId}: ${why}`);
  }

  /** Attempts the child spilled up to us can no longer report back: dropped (it fails them itself). */
  childLost(child: string): void {
    this.dropOrigin((o) => o.type === 'child' && o.cell === child, `child ${child} gone`);
    this.viaLost((v) => v.type === 'child' && v.cell === child, `link to ${child} lost`);
  }

  /**
   * The parent link broke. Spill-ups sent to it fail back as lost. Attempts
   * the parent gave us stay: if the parent replica died, its cell's new leader
   * still counts on them (their results are held and re-sent when we relink,
   * see parent-link.ts); if the parent lives, it has failed them back already
   * and their results will be stale there (execution is at least once). Their
   * routes expire with their lease either way.
   */
  parentLost(): void {
    this.viaLost((v) => v.type === 'parent', `parent of ${this.d.path} unreachable`);
  }

  /** Attempts held here that came from the parent (for the link hello), at most `max`. */
  heldFromParent(max: number): TaskRef[] {
    const out: TaskRef[] = [];
    for (const item of this.d.routes.values()) {
      if (item.origin.type !== 'parent') continue;
      out.push({ taskId: item.taskId, attempt: item.attempt, slots: 0 });
      if (out.length >= max) break;
    }
    return out;
  }

  /** A child (re)linked holding these attempts from us: adopt the current ones of our tasks, cancel the rest. */
  childHolds(child: string, refs: readonly TaskRef[]): void {
    let cancelled = 0;
    for (const ref of refs) {
      if (this.d.routes.has(routeKey(ref.taskId, ref.attempt))) continue;
      if (this.d.home.recovery.adopt(child, ref)) continue;
      // Not an attempt anyone here waits for (a stale one, or one of a cell that changed leader): stop it.
      this.d.links.children?.sendCancel(child, ref);
      cancelled++;
    }
    if (cancelled > 0) this.d.log.info({ child, cancelled }, 'child holds attempts nobody waits for: cancelled');
  }

  /** This replica stopped leading its cell: forget every attempt held here, telling no one (the links are gone). */
  clear(): void {
    const all = [...this.d.routes.values()];
    for (const item of all) this.d.routes.drop(item);
    this.sweepAt = Infinity;
  }

  private dropOrigin(match: (o: Origin) => boolean, why: string): void {
    const drop: WorkItem[] = [];
    for (const item of this.d.routes.values()) if (match(item.origin)) drop.push(item);
    for (const item of drop) this.cancelRoute(item, why);
  }

  /**
   * Attempts sent to a place that is gone (agent, child link, parent link):
   * each fails back toward its origin as lost, so its home retries it at once
   * elsewhere.
   */
  private viaLost(match: (via: Via) => boolean, why: string): number {
    const lost: WorkItem[] = [];
    for (const item of this.d.routes.values()) if (item.via !== undefined && match(item.via)) lost.push(item);
    for (const item of lost) {
      this.d.outcomes.lost(item.via!);
      this.failBack(item, 'lost', why);
    }
    if (lost.length > 0) this.d.wake();
    return lost.length;
  }

  /** An attempt that could not be handed on after all: back to its origin, not counted (a home attempt keeps its number). */
  bounce(item: WorkItem, why: string): void {
    if (item.via !== undefined && this.d.home.refusals.keep(item)) this.holdAgain(item, this.d.path, why);
    else this.failBack(item, 'requeue', why);
  }

  /**
   * A send refused before it started: the attempt waits in this cell's queue again, its route (and
   * number) kept, at once the first time, then after a backoff (refusal-wait.ts). `by` refused it.
   */
  private holdAgain(item: WorkItem, by: string, why: string): void {
    const refusals = this.d.home.refusals;
    const n = item.origin.type === 'home' ? refusals.refusalsSoFar(item) : ++item.refusals;
    refusals.wait.hold(item, by, why, n);
  }

  /**
   * No agent of the item's kind anywhere it could go, for unplaceableTimeoutMs
   * (unplaceable.ts): a home task is dead-lettered, another goes back to its
   * origin, whose home does the same.
   */
  unplaceable(item: WorkItem, why: string): void {
    if (item.origin.type === 'home') this.d.home.deadLetter(item.taskId, why);
    else this.failBack(item, 'unplaceable', why);
  }

  /** The policy rejected the task itself: a home task is dead-lettered, another goes back to its origin as fatal. */
  reject(item: WorkItem, reason: string): void {
    if (item.origin.type === 'home') this.d.home.deadLetter(item.taskId, `rejected: ${reason}`);
    else this.failBack(item, 'rejected', reason);
  }

  /** Forget the attempt here and send its origin the mesh's error result. */
  private failBack(item: WorkItem, kind: MeshFailureKind, why: string): void {
    this.d.routes.drop(item);
    this.sendBack(item.origin, meshFailure(item, kind, why, this.d.path));
  }

  /**
   * The route sweep came due: drop every forwarded route whose lease and slack ran out since it came or
   * was last sent on (routes.ts, `lapsed`), and arm the sweep again for the next one due. One wheel entry
   * per cell, not one per attempt: at every rate each cell held one per attempt for the lease's 30-odd
   * seconds, nearly all for routes long gone, and they filled the old generation (docs/performance.md, "Half of
   * peak: what outlives a scavenge"). An entry superseded by an earlier one is ignored. At most one
   * sweep per half slack while routes lapse.
   */
  fire(e: Extract<WheelEntry, { type: 'route' }>): void {
    if (e.at !== this.sweepAt) return;
    this.sweepAt = Infinity;
    const lapsed: WorkItem[] = [];
    const now = this.d.scheduler.now();
    const slack = this.d.settings.leaseSlackMs;
    const next = this.d.routes.lapsed(now, slack, lapsed);
    for (const item of lapsed) this.cancelRoute(item, 'route expired');
    // Not sooner than half the slack from now: routes lapsing a few ms apart (a subtree gone quiet at
    // 500/s) would otherwise sweep the whole table every wheel tick. A route then ends at most half
    // the slack after its due time.
    if (next < Infinity) this.armRouteSweep(Math.max(next, now + slack / 2));
  }

  /** The sweep runs by `at` (earlier if armed earlier already). */
  private armRouteSweep(at: number): void {
    if (at >= this.sweepAt) return;
    this.sweepAt = at;
    this.d.timers.schedule(at, { type: 'route', at });
  }

  /** The queue reported forwarded `item` expired. */
  expiredQueued(item: WorkItem): void {
    this.d.routes.expired(item);
  }
}

/** Why a forwarded dispatch is refused (the nack's reason). */
type Refusal = 'malformed dispatch' | 'payload too large' | 'draining' | 'buffer full';

/** The status a refusal counts as (metrics' reason label): bad input, a cell shutting down, or full. */
function refusalCode(r: Refusal): status {
  if (r === 'draining') return status.UNAVAILABLE;
  if (r === 'buffer full') return status.RESOURCE_EXHAUSTED;
  return status.INVALID_ARGUMENT;
}

/** The place an attempt went, for people: a child cell's path, an agent's id, or the parent. */
function viaName(via: Via | undefined, path: string): string {
  if (via === undefined) return path;
  return via.type === 'child' ? via.cell : via.type === 'agent' ? `agent ${via.agentId}` : 'the parent';
}

/** Whether a result that came from `from` came from where the attempt went (`via`). */
function sameVia(via: Via | undefined, from: Via): boolean {
  if (via === undefined || via.type !== from.type) return false;
  return via.type !== 'child' || (from.type === 'child' && via.cell === from.cell);
}
