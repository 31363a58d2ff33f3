// A tenant's guaranteed minimum through the tiers (docs/flow-control.md, "The
// minimum through the tiers"). The home's dispatcher serves a tenant under its
// minimum first and sends those attempts **guaranteed** (Dispatch.guaranteed);
// every tier serves guaranteed attempts ahead of its kind's others (next()).
//
// Past the credits: when a cell above the nodes has no credit left for a kind,
// its guaranteed attempts do not wait for one (pastCredits()): each goes to a
// child at once, the one where a slot should free soonest by the ages of the
// attempts out there (childFor), as preemption's critical tasks go past the
// credits too. At the node it waits in the queue
// and takes the first slot of its kind that frees, ahead of everything queued
// there. So a minimum is met as fast as slots free at the nodes, not as fast
// as credits climb four tiers.
//
// Bounded: the home sends an attempt guaranteed only while its subject's count
// (a tenant's slots, or a key's permits, held in the ledger, lingering ones
// included, plus starts admitted and not yet decided) is under its minimum, and
// admitting it counts it (FlowGate.underMin); so at most (minimum − count)
// guaranteed attempts of a tenant or key are ever out at once, the
// only ones any tier sends past a credit besides preemption's. Cells below
// forward what they get as guaranteed and mark nothing so themselves. The
// mesh simulator's `credits` check holds every link to exactly that.
//
// Not sent past the credits (they wait for the picker like any task): tasks of
// several slots (they need a node with that many free), gang members, tasks
// with a hard context key (they go where their key lives), and a new home task
// held by its gate (ceiling, concurrency or rate key).
import { isLoggedSpec } from '../flow/tenant-shares.js';
import type { Popped, TaskQueue } from '../queue/index.js';
import type { Home } from './home.js';
import type { ChildLinkView, ChildSide, Links } from './port.js';
import type { RouteTable } from './routes.js';
import type { WorkItem } from './types.js';
import { summaryMayMatch } from './label-groups.js';

/** The dispatcher's parts it works with. */
export interface GuaranteedDeps {
  readonly queue: TaskQueue<WorkItem>;
  readonly home: Home;
  readonly routes: RouteTable;
  readonly links: Links;
}

export interface GuaranteedHost {
  /** The home's flow gate lets the new home task go (its tenant's slot reserved), or holds it. */
  admitted(item: WorkItem, enqueuedAt: number, now: number): boolean;
  /** A child's circuit breaker caps it now: send it nothing past its credits. */
  capped(cell: string): boolean;
  /** Send `item` to child `cell` now, outside the picker, `why` in its trail (a new home item joins `homeNew`). */
  sendPast(item: WorkItem, cell: string, why: string, homeNew: WorkItem[]): void;
}

/** A task homed here whose first attempt has not started: the flow gate and tenant shares apply to it. */
export const isNewHome = (item: WorkItem): boolean => item.attempt === 0 && item.origin.type === 'home';

/** May go past the credits: one slot, no gang, no hard context key. */
const loose = (item: WorkItem): boolean => item.spec.slots <= 1 && !item.spec.gangId && !item.spec.contextHard;

/** How long a guaranteed attempt sent to a child counts against it when spreading the next ones. */
const SPREAD_MS = 1000;

export class Guaranteed {
  /** Guaranteed attempts this cell sent past the credits (tests read it). */
  sent = 0;
  private readonly kept: Popped<WorkItem>[] = [];
  /** Per child: when guaranteed attempts were sent there past its credits, within the last SPREAD_MS. */
  private readonly recent = new Map<string, number[]>();
  /** outTimes(), built once per pastCredits() when needed. */
  private outAt: Map<string, number[]> | undefined;

  constructor(
    private readonly d: GuaranteedDeps,
    private readonly h: GuaranteedHost,
  ) {}

  /**
   * A new home task whose start counts against its subject's share (a tenant's or a key's: LOGGED,
   * and the subject popFirstOf served it for has a minimum): only those go guaranteed, as each one
   * admitted raises the count that ends its subject's turn. A NONE task is not counted, so sent so
   * it would never end it.
   */
  private readonly counted = (it: WorkItem): boolean => isNewHome(it) && isLoggedSpec(it.spec);

  /**
   * The next item of `kind`: a new home task of a tenant under its minimum (sent on as
   * guaranteed); else one a home sent so; else the queue's order. A home task popped any other
   * way is not guaranteed (it may have been put back marked so while its tenant was under).
   */
  next(kind: string, now: number): Popped<WorkItem> | undefined {
    const q = this.d.queue;
    const under = this.d.home.flow.underMin();
    const p = under.length > 0 ? q.popFirstOf(kind, under, now, this.counted) : undefined;
    if (p) {
      p.task.guaranteed = true;
      return p;
    }
    const o = q.popGuaranteed(kind, now) ?? q.popKind(kind, now);
    if (o && o.task.origin.type === 'home') o.task.guaranteed = false;
    return o;
  }

  /** No credit is left for `kind` at any child: send the guaranteed attempts waiting here past them. */
  pastCredits(kind: string, now: number, homeNew: WorkItem[]): void {
    const children = this.d.links.children;
    if (!children) return;
    const { queue, routes } = this.d;
    // New home tasks of tenants under their minimum: each admitted one counts, so this ends.
    this.outAt = undefined;
    for (let under = this.d.home.flow.underMin(); under.length > 0;) {
      const p = queue.popFirstOf(kind, under, now, (it) => this.counted(it) && loose(it));
      if (!p) break;
      routes.taken(p.task);
      const child = this.childFor(children, p.task, undefined, now);
      if (child === undefined) {
        this.kept.push(p);
        if (p.task.spec.affinity.length > 0) continue; // no child for its labels: others may still go
        break;
      }
      if (this.h.admitted(p.task, p.enqueuedAt, now)) {
        p.task.guaranteed = true;
        this.send(p.task, child, kind, homeNew, now);
      }
      under = this.d.home.flow.underMin();
    }
    // Guaranteed attempts a parent sent here: all of them (their home bounded them).
    for (let p = queue.popGuaranteed(kind, now); p; p = queue.popGuaranteed(kind, now)) {
      routes.taken(p.task);
      const child =
        p.task.origin.type === 'parent' && loose(p.task) && this.childFor(children, p.task, p.task.exclude, now);
      if (child) this.send(p.task, child, kind, homeNew, now);
      else this.kept.push(p);
    }
    for (const p of this.kept) routes.putBack(p.task, p.enqueuedAt);
    this.kept.length = 0;
  }

  private send(item: WorkItem, child: ChildLinkView, kind: string, homeNew: WorkItem[], now: number): void {
    const times = this.recent.get(child.cell);
    if (times) times.push(now);
    else this.recent.set(child.cell, [now]);
    this.sent++;
    const why = `guaranteed: no credit of kind ${kind}; its tenant or key is under its minimum`;
    this.h.sendPast(item, child.cell, why, homeNew);
  }

  /** Guaranteed attempts sent to `cell` past its credits within the last SPREAD_MS (older ones forgotten). */
  private recentTo(cell: string, now: number): number {
    const times = this.recent.get(cell);
    if (!times) return 0;
    let old = 0;
    while (old < times.length && now - times[old]! >= SPREAD_MS) old++;
    if (old > 0) times.splice(0, old);
    if (times.length === 0) this.recent.delete(cell);
    return times.length;
  }

  /** Per child: when the attempts of the kind out there (sent, no result yet) were sent, oldest first. */
  private outTimes(kind: string): Map<string, number[]> {
    if (this.outAt) return this.outAt;
    const m = new Map<string, number[]>();
    for (const it of this.d.routes.values()) {
      if (it.kind !== kind || it.via?.type !== 'child') continue;
      const times = m.get(it.via.cell);
      if (times) times.push(it.sentMs);
      else m.set(it.via.cell, [it.sentMs]);
    }
    for (const times of m.values()) times.sort((a, b) => a - b);
    return (this.outAt = m);
  }

  /**
   * The open child serving `kind` where a slot should free soonest: with k guaranteed attempts
   * sent there lately (each waits for one of its first slots to free), the one whose (k+1)-th
   * oldest attempt out there is the oldest (attempts end in about the order they began; one with
   * fewer attempts out than that has room). Ties: fewer guaranteed per slot, then less queued.
   */
  private childFor(
    children: ChildSide,
    item: WorkItem,
    exclude: string | undefined,
    now: number,
  ): ChildLinkView | undefined {
    const kind = item.kind;
    let best: ChildLinkView | undefined;
    let bestAt = Infinity;
    let bestPast = Infinity;
    let bestQueued = Infinity;
    const out = this.outTimes(kind);
    for (const l of children.links.values()) {
      if (l.closed || !l.summary || l.summary.draining || l.cell === exclude || this.h.capped(l.cell)) continue;
      if (!summaryMayMatch(l.summary, kind, item.spec.affinity)) continue; // no agent there for its affinity
      const total = l.total.get(kind) ?? 0;
      if (total <= 0 || (l.healthy.get(kind) ?? 0) <= 0) continue;
      const k = this.recentTo(l.cell, now);
      const at = out.get(l.cell)?.[k] ?? -Infinity;
      const past = k / total;
      const queued = (l.queued.get(kind) ?? 0) / total;
      const tie = at === bestAt && (past < bestPast || (past === bestPast && queued < bestQueued));
      if (at < bestAt || tie) [best, bestAt, bestPast, bestQueued] = [l, at, past, queued];
    }
    return best;
  }
}
