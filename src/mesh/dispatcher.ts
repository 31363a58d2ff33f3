// Routing of queued work: one pump per turn of the event loop when anything changed (new work, a summary, an ack, a
// freed agent slot). Per kind (lowest effective rank, then oldest task first: kind-order.ts, so kinds that share
// slots take turns) it asks the tier's policy picker for a target while credits last:
//   route   → send to that child (dispatch) or agent (assignment);
//   queue   → every target that could take it is full: leave it queued;
//   spillUp → nothing below can take it: hand it to the parent;
//   reject  → the task itself is unacceptable: end it.
// A home item gets its attempt number from the ledger (Home.startAttempts, one `dispatched` command per pump; or
// placeNew, as a new logged task is accepted: start-at-accept.ts) before it leaves the cell; items from elsewhere keep
// theirs. An item that cannot go now (queue, or a spillUp with
// nowhere to go) waits without holding up the other items of its kind.
//
// The picker is rebuilt only when the candidates changed (dirty), at most once per pump, and at least every
// PICKER_REFRESH_MS so scores follow the load and latency figures; picks consume its credit overlay, and each send
// also counts in the link's or agent's own accounting (a home item's from its pick: promised until its start is
// decided), so a rebuilt picker starts from the truth. A slot freed by a result is handed back to the live picker
// (release), not answered with a rebuild: at the node a rebuild is O(agents). At a node a picker kept up to date is
// not rebuilt on a timer (dispatcher-updates.ts).
import { isGated } from '../flow/gate.js';
import { SPILL_NO_AFFINITY, type BreakerConfig, type Candidate, type Picker, type Policy } from '../policies/index.js';
import { QUEUE_HELD } from '../policies/hold-back.js';
import type { Popped, TaskQueue } from '../queue/index.js';
import type { Home } from './home.js';
import type { Links } from './port.js';
import type { Relay } from './relay.js';
import type { RouteTable } from './routes.js';
import { nextBatchAverage, type Scheduler } from './scheduler.js';
import { BreakerGate } from './dispatcher-breakers.js';
import { AgentUpdates } from './dispatcher-updates.js';
import { Trail, TRAIL_CANDIDATES } from './dispatcher-trail.js';
import { PickInfo } from './dispatcher-info.js';
import type { CellTracer } from './tracer.js';
import { TO_PARENT, type CellStats, type GivenRef, type Via, type WorkItem } from './types.js';
import { Unplaceable } from './unplaceable.js';
import { SlotHolds } from './slot-hold.js';
import { HeldLines } from './held-lines.js';
import { Gangs, gangHost } from './gang.js';
import type { GangPick } from './gang-route.js';
import type { Preemptor } from './preemptor.js';
import { Guaranteed, isNewHome } from './guaranteed.js';
import { giveBack, handBack } from './dispatcher-giveback.js';
import { kindOrder } from './kind-order.js';

/** Rebuild the picker at least this often (fresh scores), even with no change. */
const PICKER_REFRESH_MS = 250;

export interface DispatcherDeps {
  readonly path: string;
  /** The parent cell's path ('' at the root): where a spill-up goes. */
  readonly parent: string;
  readonly policy: Policy;
  readonly scheduler: Scheduler;
  readonly queue: TaskQueue<WorkItem>;
  readonly routes: RouteTable;
  readonly links: Links;
  readonly home: Home;
  readonly relay: Relay;
  readonly stats: CellStats;
  /** A task of a kind nobody serves waits this long where it cannot go further (unplaceable.ts). */
  readonly unplaceableTimeoutMs: number;
  readonly tracer: CellTracer;
  /** The circuit breakers of this cell's targets (dispatcher-breakers.ts). */
  readonly breaker: BreakerConfig;
  /** Preemption for waiting critical tasks of a kind with no credit (preemptor.ts). */
  readonly preemptor?: Preemptor;
}

export class Dispatcher {
  private scheduled = false;
  private readonly held = new HeldLines(); // lines held back for a faster agent (node-score): held-lines.ts
  private dirty = true;
  private picker: Picker | undefined;
  private builtMs = 0;
  /** Picker rebuilds (for tests and the bench). */
  rebuilds = 0;
  /** Items a pump sent on, averaged over the last few pumps: a light pump may run this turn (turn-defer.ts). */
  private pumpBatch = 1;
  /** Agents whose figures changed since the picker took them (a live picker only). */
  private readonly updates = new AgentUpdates();
  private readonly d: DispatcherDeps;
  /** The tier policy: the topology's, or one an operator set (setPolicy). */
  private policy: Policy;
  private readonly pumpNow = (): void => this.pump();
  /** Started home attempts are sent; a decided one's promised child credit goes (ChildLink.promise). */
  private readonly startOut = {
    send: (item: WorkItem): void => this.transmit(item),
    decided: (item: WorkItem): void => this.d.links.children?.unpromise(item),
  };
  /** Tasks of kinds nobody serves, waiting here (the root, or cut off from the parent). */
  private readonly unplaceableKinds: Unplaceable;
  /** Circuit breakers per target: they cap the credits the picker sees. */
  readonly breakers: BreakerGate;
  /** Recent placement decisions, explained (AdminService.ExplainTask). */
  readonly trail = new Trail();
  readonly holds = new SlotHolds();
  /** Gangs homed here: placed all-or-nothing, run once (gang.ts). */
  readonly gangs: Gangs;
  private readonly pickInfo: PickInfo;
  /** A tenant's minimum: guaranteed attempts first, and past the credits (guaranteed.ts). */
  readonly guaranteed: Guaranteed;

  constructor(deps: DispatcherDeps) {
    this.d = deps;
    this.pickInfo = new PickInfo(deps.links);
    // New logged home tasks placed as they are accepted start in that entry (start-at-accept.ts).
    deps.home.atAccept.placer = { place: (items) => this.placeNew(items), ...this.startOut };
    this.policy = deps.policy;
    this.breakers = new BreakerGate(
      deps.breaker,
      () => deps.scheduler.now(),
      () => this.invalidate(),
    );
    const { queue, routes, relay } = deps;
    this.gangs = new Gangs(gangHost(deps.home), queue, deps.scheduler);
    if (deps.preemptor)
      deps.preemptor.gated = (it) => !!it.spec.gangId || (isNewHome(it) && isGated(it.spec, deps.home.ledger.flow));
    this.unplaceableKinds = new Unplaceable({
      queue,
      routes,
      relay,
      timeoutMs: deps.unplaceableTimeoutMs,
      path: deps.path,
    });
    this.guaranteed = new Guaranteed(deps, {
      admitted: (it, at, now) => this.admitted(it, at, now),
      capped: (cell) => this.breakers.limits(cell),
      sendPast: (it, cell, why, homeNew) => this.placed(it, cell, why, homeNew, true),
    });
  }

  /** From the cell's tick: pump if an unplaceable task may have waited out its limit. */
  sweep(now: number): void {
    this.breakers.sweep(now);
    this.gangs.sweep(now);
    const p = this.d.preemptor;
    if (p?.again) {
      p.again = false;
      this.schedule();
    }
    if (this.unplaceableKinds.due(now) || this.held.tick()) this.schedule();
  }

  /** Tasks waiting here for a kind no agent serves, per kind (GetCell). */
  unplaceable(): Map<string, number> {
    return this.unplaceableKinds.counts();
  }

  /** Candidates changed: rebuild the picker on the next pump. */
  invalidate(): void {
    this.dirty = true;
    this.schedule();
  }

  /** `slots` of `kind` at `candidate` came free: give the credits back to the live picker. */
  release(candidate: string, kind: string, slots = 1): void {
    // A breaker caps this target below its free slots: the credit must not go back uncapped.
    if (this.breakers.limits(candidate)) this.dirty = true;
    else if (!this.dirty && this.picker !== undefined) this.picker.release(candidate, kind, slots);
    this.schedule();
  }

  /** An agent's figures changed: a live picker takes them before its next pick; others wait for a rebuild. */
  changed(agentId: string): void {
    if (!this.dirty && this.picker?.update !== undefined) this.updates.changed(agentId);
  }

  /** An operator set another policy (cell-config.ts): the next pump builds its picker. */
  setPolicy(policy: Policy): void {
    this.policy = policy;
    this.invalidate();
  }

  /** Pump on the next turn (once, however often it is asked). */
  schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    this.d.scheduler.defer(this.pumpNow, this.pumpBatch);
  }

  // An agent's candidate for getPicker's live updates (one closure, not one per pump); a breaker caps its target's
  // credits (BreakerGate.apply): only a rebuild applies the cap.
  private readonly fresh = (id: string, now: number): Candidate | undefined =>
    this.breakers.limits(id) ? undefined : this.d.links.agents!.candidate!(id, now);

  private getPicker(now: number): Picker {
    const { agents, children } = this.d.links;
    const live = this.picker?.update !== undefined && agents?.candidate !== undefined;
    if (live && !this.dirty && this.updates.pending && !this.updates.apply(this.picker!, this.fresh, now))
      this.dirty = true;
    if (this.dirty || this.picker === undefined || (!live && now - this.builtMs >= PICKER_REFRESH_MS)) {
      const cands = agents ? agents.candidates(now) : children ? children.candidates(now) : [];
      agents?.versions.observe(cands); // which sides of each version ramp have usable agents here
      this.picker = this.policy.buildPicker(this.breakers.apply(cands), now);
      this.picker.contexts = agents?.contexts;
      this.dirty = false;
      this.builtMs = now;
      this.rebuilds++;
      this.updates.clear();
    }
    return this.picker;
  }

  private pump(): void {
    this.scheduled = false;
    this.held.pumping();
    const { queue, routes, relay } = this.d;
    if (queue.size === 0) return;
    const stats = this.d.stats;
    const sent0 = stats.dispatched + stats.spilled;
    stats.pumps++;
    const now = this.d.scheduler.now();
    const picker = this.getPicker(now);
    const homeNew: WorkItem[] = [];
    const parked = this.parked;
    this.gangs.pumping();
    for (const kind of kindOrder(queue, now)) {
      let budget = queue.sizeOfKind(kind);
      if (budget === 0) continue;
      if (!picker.hasKind(kind)) {
        const up = this.d.links.parent?.connected ? (it: WorkItem) => this.spill(it, homeNew, now) : undefined;
        this.unplaceableKinds.unservable(kind, now, up, this.d.path);
        continue;
      }
      this.unplaceableKinds.placeable(kind);
      while (budget-- > 0 && picker.credits(kind) > 0) {
        const popped = this.guaranteed.next(kind, now);
        if (!popped) break;
        const item = popped.task;
        routes.taken(item);
        // A home task naming a flow key, or of a tenant with a share, starts only within its limits (src/flow/gate.ts).
        const keyed = isNewHome(item) && isGated(item.spec, this.d.home.ledger.flow);
        if (this.holds.parks(popped, parked, now) || (keyed && !this.admitted(item, popped.enqueuedAt, now))) continue;
        if (item.spec.gangId) {
          // All its gang's members leave together in this pump, to this node's agents or to one child, or none
          // does (gang.ts). None is held back for a faster agent (waited: Infinity): it waits for its gang already.
          const pick: GangPick = (m, exclude) => picker.pick({ ...this.pickInfo.of(m, 0, Infinity), exclude });
          const kids = this.d.links.agents ? undefined : () => this.d.links.children!.candidates(now);
          const gang = this.gangs.place(popped, picker, pick, parked, kids);
          for (const [m, c] of gang) this.placed(m, c, 'with its gang', homeNew, true);
          continue;
        }
        const r = picker.pick(this.pickInfo.of(item, parked.length, now - popped.enqueuedAt));
        if (r !== SPILL_NO_AFFINITY) this.unplaceableKinds.matched(item);
        if (r.type === 'route') {
          this.breakers.sent(r.candidate);
          if (this.trail.enabled) this.explain(item, picker, r.candidate, now);
          this.route(item, this.viaFor(r.candidate), homeNew, now);
          continue;
        }
        if (r.type === 'reject') {
          if (keyed) this.d.home.flow.settled(item); // not leaving after all: its reservation goes
          relay.reject(item, r.reason);
        } else if (r.type === 'queue' || !this.spill(item, homeNew, now)) {
          if (keyed) this.d.home.flow.settled(item);
          // No agent below matches its affinity, and it cannot go up: it waits as unplaceable (unplaceable.ts).
          if (
            r === SPILL_NO_AFFINITY
              ? this.unplaceableKinds.unmatched(item, now)
              : this.holds.cannotGo(item, r, now, this.d)
          )
            continue;
          // This one cannot go now (its affinity or exclusions leave no candidate with a credit, or nowhere to
          // hand it): set it aside for this pump, so the rest of its kind still goes while credits last. Put back
          // at the head it would be popped again, and stop its kind for everyone.
          parked.push(popped);
          if (r === QUEUE_HELD && this.held.leaveLine(picker, this.pickInfo.task, queue.sizeOfKind(kind))) break;
        }
      }
      if (picker.credits(kind) <= 0 && this.breakers.blocks(kind)) handBack(this.d, kind, now, parked);
      for (const p of parked) routes.putBack(p.task, p.enqueuedAt);
      parked.length = 0;
      if (picker.credits(kind) <= 0) this.guaranteed.pastCredits(kind, now, homeNew);
      if (picker.credits(kind) <= 0 && this.d.preemptor?.enabled) this.d.preemptor.consider(kind, now);
      // Left queued for want of credit (counted once per pump and kind): at low rates this should stay 0.
      if (queue.sizeOfKind(kind) > 0 && picker.credits(kind) <= 0) stats.creditStalls++;
    }
    // Sent on in the pump, and new home tasks (they leave once started, maybe after this returns).
    this.pumpBatch = nextBatchAverage(this.pumpBatch, stats.dispatched + stats.spilled - sent0 + homeNew.length);
    this.start(homeNew);
  }

  /** Routed outside the picker (a gang, past the credits, preemption's): `why` in its trail; `counted` by its breaker. */
  private placed(item: WorkItem, candidate: string, why: string, homeNew: WorkItem[], counted: boolean): void {
    const now = this.d.scheduler.now();
    if (counted) this.breakers.sent(candidate);
    const action = this.d.links.agents ? 'agent' : 'child';
    if (this.trail.enabled) this.trail.decided(item, now, this.policy.name, action, candidate, undefined, why);
    this.route(item, this.viaFor(candidate), homeNew, now);
  }

  /**
   * New home tasks, routed now if their kind has nothing queued here and the picker places them (the
   * rest are not placed): their start rides in their `accepted` entry (start-at-accept.ts).
   */
  private placeNew(items: readonly WorkItem[]): WorkItem[] {
    const now = this.d.scheduler.now();
    const picker = this.getPicker(now);
    const out: WorkItem[] = [];
    for (const item of items) {
      if (this.d.queue.sizeOfKind(item.kind) > 0 || !picker.hasKind(item.kind) || picker.credits(item.kind) <= 0)
        continue;
      const r = picker.pick(this.pickInfo.of(item, 0, 0));
      if (r.type !== 'route') continue;
      this.breakers.sent(r.candidate);
      if (this.trail.enabled) this.explain(item, picker, r.candidate, now);
      this.route(item, this.viaFor(r.candidate), out, now);
    }
    return out;
  }

  /** Send queued item `id` to `candidate` now, outside the picker (preemptor.ts), `why` in its trail. */
  placeNow(id: string, candidate: string, why: string): boolean {
    const item = this.d.queue.remove(id);
    if (!item) return false;
    this.d.routes.taken(item);
    const homeNew: WorkItem[] = [];
    this.placed(item, candidate, why, homeNew, false);
    // Its credit is taken as a pick's would be (a home item is sent once its start commits; its link holds it meanwhile).
    if (!this.dirty) this.picker?.take(candidate, item.kind);
    this.start(homeNew);
    this.schedule();
    return true;
  }

  /** The flow gate lets it go (true), holds it for its key, or cancels it (cancel-newest). */
  private admitted(item: WorkItem, enqueuedAt: number, now: number): boolean {
    const g = this.d.home.flow.admit(item, enqueuedAt, now);
    if (g.type === 'cancel') this.d.home.cancelForFlow(item.taskId, g.why);
    else if (g.type === 'preempt') this.d.home.cancelForFlow(g.victim, g.why);
    return g.type === 'go';
  }

  /** Items of the kind being pumped that cannot go this pump (reused). */
  private readonly parked: Popped<WorkItem>[] = [];

  private viaFor(candidate: string): Via {
    return this.d.links.agents ? { type: 'agent', agentId: candidate } : { type: 'child', cell: candidate };
  }

  /** Work stealing, the child's half: up to `max` queued tasks of `kind` back to the parent (dispatcher-giveback.ts). */
  giveBack(kind: string, max: number): GivenRef[] {
    const homeNew: WorkItem[] = [];
    const out = giveBack(this.d, kind, max, homeNew, (it, h, now) => this.spill(it, h, now));
    this.start(homeNew);
    return out;
  }

  /** Record why `chosen` got the item (the picker's explanation, right after the pick). */
  private explain(item: WorkItem, picker: Picker, chosen: string, now: number): void {
    const scored = this.trail.mayScore(now);
    const note = scored ? '' : "not scored: past the cell's budget of scored decisions a second";
    this.trail.decided(item, now, this.policy.name, this.d.links.agents ? 'agent' : 'child', chosen, undefined, note);
    if (scored) this.trail.scored(picker.explainTo(this.pickInfo.task, chosen, TRAIL_CANDIDATES, this.trail.scoring()));
  }

  private spill(item: WorkItem, homeNew: WorkItem[], now: number): boolean {
    // A gang member leaves its node only with its gang, to that node's agents (gang.ts).
    if (!this.d.links.parent?.connected || item.origin.type === 'parent' || item.spec.gangId) return false;
    this.d.stats.spilled++;
    const note = `nothing below ${this.d.path} can take kind ${item.kind} now`;
    if (this.trail.enabled) this.trail.decided(item, now, this.policy.name, 'parent', this.d.parent, undefined, note);
    this.route(item, TO_PARENT, homeNew, now);
    return true;
  }

  private route(item: WorkItem, via: Via, homeNew: WorkItem[], now: number): void {
    item.via = via;
    item.sentMs = now;
    if (item.origin.type === 'home' && item.attempt === 0) {
      homeNew.push(item);
      if (via.type === 'agent') this.updates.routed(item, via.agentId, now);
      else if (via.type === 'child') this.d.links.children?.promise(via.cell, item);
      return;
    }
    // Sent again after a refusal: it waits no more; a home attempt's lease runs from this send (home-refusals.ts).
    if (item.origin.type === 'home' || item.refused !== undefined) this.d.home.refusals.resent(item, now);
    this.d.routes.sent(item);
    this.transmit(item);
  }

  /** New home attempts leave once started (docs/mesh.md, "Credits"). */
  private start(homeNew: WorkItem[]): void {
    this.d.home.startAttempts(homeNew, this.startOut);
  }

  private transmit(item: WorkItem): void {
    const via = item.via!;
    if (this.trail.enabled) this.trail.sent(item);
    const links = this.d.links;
    if (this.d.tracer.enabled) item.traceParent = this.d.tracer.dispatched(item, this.d.scheduler.now());
    if (via.type === 'child') links.children!.dispatch(via.cell, item);
    else if (via.type === 'agent') {
      this.updates.sent(item, via.agentId);
      links.agents!.assign(via.agentId, item);
    } else {
      links.parent!.spillUp(item);
      return;
    }
    this.d.stats.dispatched++;
  }
}
