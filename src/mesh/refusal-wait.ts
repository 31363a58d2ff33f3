// What an attempt refused before it started does while it waits to be sent again (docs/mesh.md,
// "Attempt numbers and refusals"). Three concerns of that wait, kept out of relay.ts and home.ts:
//
// - Backoff. A refused attempt goes back to its cell's queue at once the first time, then after a
//   bounded exponential backoff with jitter from the cell's seeded random source (RESEND_BASE_MS
//   doubling to RESEND_MAX_MS): a subtree that keeps refusing a task (a spill-bounce loop) sees it
//   at most about once a second, not once a round trip. A home task's refusals on its earlier
//   numbers count too (home-refusals.ts `refusalsSoFar`), so a new number does not start the backoff
//   over. While it waits out its backoff the attempt is in the route table, not in the queue (via
//   undefined), its lease not running; one wheel entry per wait, checked on firing (a cancel or a
//   step-down since drops the route and the entry finds nothing).
// - Why it waits. The refusal (who, what, until when) is noted on the item, soft state of the cell's
//   leader: GetTask and Watch at the home leader say QUEUED with it (home-refusals.ts `view`).
// - No match below. A cell that receives a task none of its subtree matches (affinity) gives it back
//   at once, its reason starting NO_MATCH_BELOW. The home notes the child it went to and that child's
//   label description then (label-groups.ts `labelsKey`): its pickers treat that child as matching
//   nothing for the task until the child's description changes (one note per item: bounded).
import type { Scheduler } from './scheduler.js';
import type { RouteTable } from './routes.js';
import type { CellTimers, WheelEntry } from './timers.js';
import type { WorkItem } from './types.js';

/** The first delayed re-send waits about this long (ms), doubling per refusal up to RESEND_MAX_MS. */
export const RESEND_BASE_MS = 25;
export const RESEND_MAX_MS = 1000;

/** How a refusal for want of any matching agent below the refusing cell starts (after `requeue: `). */
export const NO_MATCH_BELOW = 'no match below';

/** The wait before re-sending after the `n`-th refusal (from 1): 0 for the first, then half to all of base·2ⁿ⁻², capped. */
export function resendDelay(n: number, random: () => number): number {
  if (n <= 1) return 0;
  const cap = Math.min(RESEND_MAX_MS, RESEND_BASE_MS * 2 ** Math.min(20, n - 2));
  return Math.round(cap / 2 + random() * (cap / 2));
}

/** Whether a refusal's text says no agent below the refusing cell matches the task's affinity. */
export function saysNoMatch(error: string): boolean {
  return error.startsWith(`requeue: ${NO_MATCH_BELOW}`);
}

export interface RefusalWaitDeps {
  readonly routes: RouteTable;
  readonly timers: CellTimers;
  readonly scheduler: Scheduler;
  readonly random: () => number;
  /** Queued work changed: pump on the next turn. */
  readonly wake: () => void;
}

/** Counts since this replica started (GetCell `refusals`, meshlb_refusals_total). */
export interface RefusalCounts {
  /** Refused attempts queued again at once (the first refusal of a task). */
  immediate: number;
  /** Refused attempts held for a backoff first, and the backoffs' sum (ms). */
  delayed: number;
  delayedMs: number;
  /** Refusals saying no agent below matched the task's affinity (its child then skipped for it). */
  noMatchBelow: number;
}

export class RefusalWait {
  readonly counts: RefusalCounts = { immediate: 0, delayed: 0, delayedMs: 0, noMatchBelow: 0 };
  /** A home attempt began to wait again, or left again (Watch at the home leader: task-service.ts). */
  onChange: ((taskId: string) => void) | undefined;

  constructor(private readonly d: RefusalWaitDeps) {}

  /**
   * `item`, whose send was refused (`by`: the cell that refused it, `why` its text), waits here again
   * under its route: at once after the first of `n` refusals, else after resendDelay(n).
   */
  hold(item: WorkItem, by: string, why: string, n: number): void {
    const now = this.d.scheduler.now();
    const delay = resendDelay(n, this.d.random);
    const note = noteOf(item);
    note.by = by;
    note.why = why;
    note.resendAt = delay > 0 ? now + delay : 0;
    if (delay > 0) {
      this.counts.delayed++;
      this.counts.delayedMs += delay;
      item.via = undefined;
      this.d.timers.schedule(note.resendAt, { type: 'resend', key: item.key, at: note.resendAt });
    } else {
      this.counts.immediate++;
      this.d.routes.requeue(item, now);
      this.d.wake();
    }
    if (item.origin.type === 'home') this.onChange?.(item.taskId);
  }

  /** Note that the child `item` went to said no agent below it matches (`labels`: its description now). */
  noMatch(item: WorkItem, child: string, labels: string): void {
    this.counts.noMatchBelow++;
    const note = noteOf(item);
    note.noMatchChild = child;
    note.noMatchLabels = labels;
  }

  /** A backoff ended: the attempt goes back to the queue, if it still waits for it (not cancelled, not cleared). */
  fire(e: Extract<WheelEntry, { type: 'resend' }>): void {
    const item = this.d.routes.get(e.key);
    if (item === undefined || item.via !== undefined || item.refused?.resendAt !== e.at) return;
    item.refused.resendAt = 0;
    this.d.routes.requeue(item, this.d.scheduler.now());
    this.d.wake();
  }

  /** A refused attempt left again: it no longer waits (its no-match note stays with it). */
  sent(item: WorkItem): void {
    const note = item.refused;
    if (note === undefined || note.by === '') return;
    note.by = '';
    note.why = '';
    note.resendAt = 0;
    if (item.origin.type === 'home') this.onChange?.(item.taskId);
  }

  /** Why attempt `item` waits here again, for people ('' when it does not wait after a refusal). */
  waiting(item: WorkItem, now: number): string {
    const note = item.refused;
    if (item.via !== undefined || note === undefined || note.by === '') return '';
    const next =
      note.resendAt > now
        ? `next try in ${note.resendAt - now} ms`
        : item.waitingFor !== ''
          ? `now waiting: ${item.waitingFor}` // its own reason to wait here (unplaceable.ts, slot-hold.ts)
          : 'waiting for a target with credit';
    return `refused by ${note.by}: ${clipWhy(note.why)}; ${next}`;
  }
}

/** The refusal note on `item`, made on its first use. */
function noteOf(item: WorkItem): NonNullable<WorkItem['refused']> {
  return (item.refused ??= { by: '', why: '', resendAt: 0, noMatchChild: '', noMatchLabels: undefined });
}

/** A refusal's text without its `requeue: ` prefix, at most 200 characters. */
function clipWhy(why: string): string {
  const s = why.startsWith('requeue: ') ? why.slice('requeue: '.length) : why;
  return s.length > 200 ? `${s.slice(0, 199)}…` : s;
}
