// Placing a task of several slots (TaskSpec.slots > 1, docs/gang.md). Every
// policy's picker (picker.ts) hands such a task here instead of to the
// policy's own choice: what matters for it is to fit, so it goes best fit —
// to the eligible candidate with the fewest routable slots that still hold it
// (at a cell: the fewest free at its roomiest agent), leaving big free blocks
// whole for the next big task, as bin packing schedulers do (Nomad's binpack).
// Ties are broken uniformly at random. Pure: no clock, no IO.
import type { Candidate, PickResult } from './types.js';

/** Why a task of `n` slots waits though agents of its kind have that many: all are too busy now. */
export const noFreeBlock = (n: number): string => `no agent with ${n} free slots`;
/** Why a task of `n` slots cannot go anywhere here: no agent of its kind has so many. */
export const noBigAgent = (n: number): string => `no agent with ${n} slots`;

/** What these functions read of a picker's view of one kind (picker.ts KindView). */
export interface SlotView {
  readonly kind: string;
  readonly members: ArrayLike<number>;
  readonly total: ArrayLike<number>;
  /** Per member: free slots at its roomiest agent (Infinity: the member is one agent). */
  readonly block: ArrayLike<number>;
}

/**
 * The eligible member with the fewest routable slots for the task (its
 * credits avail(p), -1 when not eligible, at most its roomiest agent's free
 * slots), ties at random by reservoir sampling; -1 if none is eligible.
 */
export function bestFit(v: SlotView, avail: (p: number) => number, random: () => number): number {
  let best = -1;
  let least = Infinity;
  let ties = 0;
  for (let p = 0; p < v.members.length; p++) {
    const a = avail(p);
    if (a < 0) continue;
    const r = Math.min(a, v.block[p]!);
    if (best < 0 || r < least) {
      best = p;
      least = r;
      ties = 1;
    } else if (r === least && random() * ++ties < 1) best = p;
  }
  return best;
}

/**
 * No member can take a task of `n` slots now: it waits (queue) if a member it
 * matches (matching(p): the candidate, undefined if not) has an agent that big
 * (its largestTotal, else its total), else it spills up.
 */
export function waitOrSpill(n: number, v: SlotView, matching: (p: number) => Candidate | undefined): PickResult {
  for (let p = 0; p < v.members.length; p++) {
    const c = matching(p);
    if (c && (c.slots.get(v.kind)?.largestTotal ?? v.total[p]!) >= n) return { type: 'queue', reason: noFreeBlock(n) };
  }
  return { type: 'spillUp', reason: noBigAgent(n) };
}
