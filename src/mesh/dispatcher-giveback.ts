// Queued work a cell hands back up rather than placing it: work stealing's child half (the parent asked for
// a kind's queued tasks because a sibling idles: steal.ts) and, when every target of a kind has its circuit
// breaker open, the attempts the parent sent (dispatcher-breakers.ts). Taken out of dispatcher.ts as a concern
// of its own; the dispatcher owns when these run.
import type { Popped, TaskQueue } from '../queue/index.js';
import type { Links } from './port.js';
import type { Relay } from './relay.js';
import type { RouteTable } from './routes.js';
import type { Scheduler } from './scheduler.js';
import type { CellStats, GivenRef, WorkItem } from './types.js';

/** What giving back reads of the dispatcher's deps (DispatcherDeps). */
export interface GiveBackDeps {
  readonly path: string;
  readonly scheduler: Scheduler;
  readonly queue: TaskQueue<WorkItem>;
  readonly routes: RouteTable;
  readonly links: Links;
  readonly relay: Relay;
  readonly stats: CellStats;
}

/** The dispatcher's spill-up of a home item (false: it cannot go up). */
export type SpillUp = (item: WorkItem, homeNew: WorkItem[], now: number) => boolean;

/**
 * Work stealing, the child's half (steal.ts): up to `max` queued tasks of `kind`, the
 * ones the queue would run next. An attempt from the parent is taken out of the
 * queue and its route dropped before it is returned, so it is never in two places;
 * a task homed here goes up as a spill-up (its attempt starts now: into `homeNew`).
 * Spill-ups from our own children stay, and gang members (they move only as a whole gang: gang.ts).
 */
export function giveBack(d: GiveBackDeps, kind: string, max: number, homeNew: WorkItem[], spill: SpillUp): GivenRef[] {
  const { queue, routes } = d;
  const out: GivenRef[] = [];
  if (!d.links.parent?.connected) return out;
  const now = d.scheduler.now();
  const keep: Popped<WorkItem>[] = [];
  let given = 0;
  while (given < max) {
    const popped = queue.popKind(kind, now);
    if (!popped) break;
    const item = popped.task;
    routes.taken(item);
    if (item.origin.type === 'parent' && !item.spec.gangId) {
      routes.drop(item);
      out.push({ taskId: item.taskId, attempt: item.attempt, slots: 0, send: item.cameAs });
      given++;
    } else if (item.origin.type === 'home' && spill(item, homeNew, now)) given++;
    else keep.push(popped);
  }
  for (const p of keep) routes.putBack(p.task, p.enqueuedAt);
  d.stats.givenBack += given;
  return out;
}

/**
 * Every target of `kind` is shut by its breaker: what the parent sent goes
 * back to it uncounted (a requeue), so its home places it elsewhere rather
 * than have it wait out cool-downs here; the rest (and a gang, whole) waits (into `parked`).
 */
export function handBack(d: GiveBackDeps, kind: string, now: number, parked: Popped<WorkItem>[]): void {
  const { queue, routes, relay } = d;
  for (let n = queue.sizeOfKind(kind); n > 0; n--) {
    const popped = queue.popKind(kind, now);
    if (!popped) return;
    routes.taken(popped.task);
    if (popped.task.origin.type === 'parent' && !popped.task.spec.gangId)
      relay.bounce(popped.task, `every target of kind ${kind} under ${d.path} has its circuit breaker open`);
    else parked.push(popped);
  }
}
