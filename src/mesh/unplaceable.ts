// Tasks of a kind no agent below serves, waiting where they cannot go further
// up: the root, or a cell whose parent link is down. Whatever tier a task is
// homed at, this is where it ends up (a cell that can hand a task up does), so
// every tier behaves alike: the task waits at most unplaceableTimeoutMs
// (topology defaults), counted per kind for GetCell, then ends. A home task is
// dead-lettered "no agent of kind X"; one a child spilled up goes back to it
// as an `unplaceable` failure and its home does the same. Items from the
// parent are never unplaceable here: they go back to the parent (uncounted)
// once it is reachable, as any item it sent against a capacity that is gone.
//
// Invariant: `kinds` holds a kind from the first pump that found it
// unplaceable here until a pump finds it placeable again (a candidate below
// has it, or the parent can take it), or a check finds no task of it left to
// wait. A task's wait counts from max(since, when it was queued here).
//
// A task whose affinity no agent below matches (the picker's SPILL_NO_AFFINITY:
// no child's summary names a matching label set, no agent here carries the
// labels) is held the same way, one task at a time, since its kind's other
// tasks may go: `unmatched` holds it from the first pump that found it so until
// one finds a match (it went, or waits for a matching agent's slot), and it ends
// "no agent of kind X matches k=v" (docs/mesh.md, "Affinity through the tiers").
// One the parent sent goes back to it at once, "no match below" (`unmatched`).
import type { Popped, TaskQueue } from '../queue/index.js';
import type { Relay } from './relay.js';
import type { RouteTable } from './routes.js';
import { NO_MATCH_BELOW } from './refusal-wait.js';
import { noAgentMatches, noAgentOfKind, type WorkItem } from './types.js';

export interface UnplaceableDeps {
  readonly queue: TaskQueue<WorkItem>;
  readonly routes: RouteTable;
  readonly relay: Relay;
  readonly timeoutMs: number;
  /** This cell's path (a give-back's reason names it). */
  readonly path: string;
}

export class Unplaceable {
  /** Per unplaceable kind: since when, and when a task of it may have waited out the limit (ms). */
  private readonly kinds = new Map<string, { since: number; checkAt: number }>();
  /** Tasks whose affinity nothing below matches: since when. */
  private readonly unmatchedTasks = new Map<WorkItem, number>();
  /** When the first of them waits out the limit (Infinity: none). */
  private unmatchedAt = Infinity;

  constructor(private readonly d: UnplaceableDeps) {}

  /** A pump found `kind` placeable: its tasks wait for nothing but credit now. */
  placeable(kind: string): void {
    if (this.kinds.size > 0) this.kinds.delete(kind);
  }

  /**
   * No target below has `kind` (the dispatcher's pump): hand every task of it up (`up`), or with
   * no parent to hand it to, wait here up to the limit (hold). One the parent sent goes back to
   * it uncounted, as sent against a capacity that is gone; one `up` keeps (a gang member, which
   * leaves its node only with its gang: gang.ts) waits.
   */
  unservable(kind: string, now: number, up: ((item: WorkItem) => boolean) | undefined, path: string): void {
    if (!up) return this.hold(kind, now);
    const { queue, routes, relay } = this.d;
    this.placeable(kind);
    const keep: Popped<WorkItem>[] = [];
    for (let p = queue.popKind(kind, now); p !== undefined; p = queue.popKind(kind, now)) {
      routes.taken(p.task);
      if (p.task.origin.type === 'parent') relay.bounce(p.task, `no capacity for kind ${kind} under ${path}`);
      else if (!up(p.task)) keep.push(p);
    }
    for (const p of keep) routes.putBack(p.task, p.enqueuedAt);
  }

  /** A pump found `kind` unplaceable: its clock starts; tasks that waited out the limit end. */
  hold(kind: string, now: number): void {
    let k = this.kinds.get(kind);
    if (k === undefined) this.kinds.set(kind, (k = { since: now, checkAt: now + this.d.timeoutMs }));
    if (now < k.checkAt) return;
    const next = this.expire(kind, k.since, now);
    if (next === Infinity) this.kinds.delete(kind);
    else k.checkAt = next;
  }

  /**
   * No candidate below may match `item`'s affinity and it cannot be handed up (the dispatcher's pump):
   * it waits here, counted, up to the limit, then ends (true: it left). One the parent sent was sent
   * against a summary that said otherwise (outdated, from a peer that predates the label fields, or
   * past their bounds): it goes back at once, uncounted, saying so (refusal-wait.ts NO_MATCH_BELOW),
   * and the parent sends it there no more while that child's label description stays as it is.
   */
  unmatched(item: WorkItem, now: number): boolean {
    if (item.origin.type === 'parent') {
      this.d.relay.bounce(item, `${NO_MATCH_BELOW} ${this.d.path}: ${noAgentMatches(item.kind, item.spec.affinity)}`);
      return true;
    }
    let since = this.unmatchedTasks.get(item);
    if (since === undefined) this.unmatchedTasks.set(item, (since = now));
    const why = noAgentMatches(item.kind, item.spec.affinity);
    if (now - since < this.d.timeoutMs) {
      item.waitingFor = why;
      this.unmatchedAt = Math.min(this.unmatchedAt, since + this.d.timeoutMs);
      return false;
    }
    this.unmatchedTasks.delete(item);
    this.d.relay.unplaceable(item, why);
    return true;
  }

  /** A pick found a match for `item` (it went, or waits for a matching slot): it is not unplaceable. */
  matched(item: WorkItem): void {
    if (this.unmatchedTasks.size > 0) this.unmatchedTasks.delete(item);
  }

  /** Some task may have waited out the limit (the cell's tick asks, so a pump looks). */
  due(now: number): boolean {
    for (const item of this.unmatchedTasks.keys()) if (!this.waits(item)) this.unmatchedTasks.delete(item);
    if (this.unmatchedAt <= now) {
      this.unmatchedAt = Infinity;
      return true;
    }
    for (const [kind, k] of this.kinds) {
      if (this.d.queue.sizeOfKind(kind) === 0) this.kinds.delete(kind);
      else if (k.checkAt <= now) return true;
    }
    return false;
  }

  /** Tasks waiting here unplaceable, per kind (GetCell). O(routes): for operators, not the hot path. */
  counts(): Map<string, number> {
    const out = new Map<string, number>();
    for (const item of this.unmatchedTasks.keys()) {
      if (!this.waits(item)) this.unmatchedTasks.delete(item);
      else if (!this.kinds.has(item.kind)) out.set(item.kind, (out.get(item.kind) ?? 0) + 1);
    }
    if (this.kinds.size === 0) return out;
    const fromParent = new Map<string, number>();
    for (const item of this.d.routes.values()) {
      if (item.via === undefined && item.origin.type === 'parent' && this.kinds.has(item.kind))
        fromParent.set(item.kind, (fromParent.get(item.kind) ?? 0) + 1);
    }
    for (const kind of this.kinds.keys()) {
      const n = this.d.queue.sizeOfKind(kind) - (fromParent.get(kind) ?? 0);
      if (n > 0) out.set(kind, n); // every task of the kind: those held for affinity are among them
    }
    return out;
  }

  /** Still queued here (not ended, cancelled or sent on meanwhile: then forgotten). */
  private waits(item: WorkItem): boolean {
    return this.d.queue.get(item.id) === item;
  }

  /** End the tasks of `kind` that waited out the limit; when the next one will have (Infinity: none waits). */
  private expire(kind: string, since: number, now: number): number {
    const { queue, routes, relay, timeoutMs } = this.d;
    const keep: Popped<WorkItem>[] = [];
    let next = Infinity;
    for (let p = queue.popKind(kind, now); p !== undefined; p = queue.popKind(kind, now)) {
      const item = p.task;
      routes.taken(item);
      const from = Math.max(since, p.enqueuedAt);
      if (item.origin.type === 'parent') keep.push(p);
      else if (now - from >= timeoutMs) relay.unplaceable(item, noAgentOfKind(kind));
      else {
        keep.push(p);
        next = Math.min(next, from + timeoutMs);
      }
    }
    for (const p of keep) routes.putBack(p.task, p.enqueuedAt);
    return next;
  }
}
