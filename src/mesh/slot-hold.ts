// Tasks of several slots (TaskSpec.slots > 1, docs/gang.md) behind a stream of
// small ones: each small task takes a slot as soon as one frees, so an agent
// may never have N free at once and the big task would wait forever. Once a
// big task has waited here HOLD_AFTER_MS, it holds its kind at this cell: no
// smaller task of the kind is placed (they wait) for up to HOLD_MS, so the
// slots free up as running tasks end, until it goes. A hold that lapses (the
// big task could not go, or left another way) leaves the kind free for HOLD_MS
// before any big task may hold it again, so small tasks get at least half the
// time. One hold per kind per cell; soft state of the leader.
import type { Popped } from '../queue/index.js';
import type { Relay } from './relay.js';
import { slotsOf } from './slot-map.js';
import type { WorkItem } from './types.js';

/** A task of several slots that waited this long (ms) at a cell holds its kind there. */
export const HOLD_AFTER_MS = 1000;
/** The longest a hold lasts, and the pause after it lapses before the kind can be held again (ms). */
export const HOLD_MS = 10_000;

interface Hold {
  readonly item: WorkItem;
  readonly slots: number;
  readonly untilMs: number;
}

/** Why a smaller task waits for a big one holding its kind (GetTask's why-waiting). */
export const heldFor = (slots: number): string => `behind a task of ${slots} slots holding its kind`;

/** What the dispatcher lends for a task of several slots that cannot go. */
export interface SlotDeps {
  readonly path: string;
  readonly relay: Relay;
  readonly unplaceableTimeoutMs: number;
}

export class SlotHolds {
  private readonly holds = new Map<string, Hold>();
  /** Per kind: no new hold before this time (a hold lapsed). */
  private readonly pausedUntil = new Map<string, number>();

  /** The dispatcher popped `popped`: true if a bigger task holds its kind (it is parked, saying why). */
  parks(popped: Popped<WorkItem>, parked: Popped<WorkItem>[], now: number): boolean {
    const item = popped.task;
    const big = this.holds.size > 0 ? this.held(item, now) : 0;
    item.waitingFor = big > 0 ? heldFor(big) : '';
    if (big > 0) parked.push(popped);
    return big > 0;
  }

  /**
   * The picker found no place for `item` now (`r`), and it could not be handed up. For a task of
   * several slots: one the parent sent for a block that is gone here (its agent left) goes back
   * to its home uncounted; one nothing here or above is big enough for (a spill-up with nowhere to
   * go) ends after unplaceableTimeoutMs, as a kind nobody serves does; else it says why it waits
   * and may hold its kind. True: it left (the dispatcher parks it otherwise).
   */
  cannotGo(item: WorkItem, r: { type: string; reason: string }, now: number, d: SlotDeps): boolean {
    if (slotsOf(item.spec) <= 1) return false;
    if (r.type === 'spillUp' && item.origin.type === 'parent') d.relay.bounce(item, `${r.reason} under ${d.path}`);
    else if (r.type === 'spillUp' && now - item.arrivedMs >= d.unplaceableTimeoutMs)
      d.relay.unplaceable(item, r.reason);
    else {
      item.waitingFor = r.reason;
      this.waited(item, now);
      return false;
    }
    return true;
  }

  /** A task of several slots could not go now: past HOLD_AFTER_MS of waiting, it holds its kind. */
  waited(item: WorkItem, now: number): void {
    const slots = slotsOf(item.spec);
    if (slots <= 1 || this.holds.has(item.kind) || now - item.arrivedMs < HOLD_AFTER_MS) return;
    if ((this.pausedUntil.get(item.kind) ?? 0) > now) return;
    this.holds.set(item.kind, { item, slots, untilMs: now + HOLD_MS });
  }

  /**
   * The slots of the task holding `item`'s kind if `item` must wait for it (it is smaller), else
   * 0. A hold ends when its task was sent on (it has a `via`), or lapses after HOLD_MS.
   */
  held(item: WorkItem, now: number): number {
    const h = this.holds.get(item.kind);
    if (h === undefined || h.item === item) return 0;
    if (h.item.via !== undefined || h.untilMs <= now) {
      this.holds.delete(item.kind);
      if (h.untilMs <= now) this.pausedUntil.set(item.kind, now + HOLD_MS);
      return 0;
    }
    return slotsOf(item.spec) < h.slots ? h.slots : 0;
  }

  /** Kinds held now (tests, GetCell). */
  get size(): number {
    return this.holds.size;
  }
}
