// BasePicker's scans of a kind's view (picker.ts), functions of their own so that picker.ts stays
// under the line cap; and the context pick's answers besides a member position. Pure.
import type { KindView } from './picker-view.js';

/** selectByContext: hard, and the key's holder has no credit (the task waits for it). */
export const HOLDER_FULL = -2;
/** selectByContext: hard, and no member matches the task. */
export const NO_HOLDER = -3;

/** Fills v.scratch with the eligible positions; returns how many. */
export function collectEligible(v: KindView, ok: (v: KindView, pos: number) => boolean): number {
  let n = 0;
  for (let p = 0; p < v.members.length; p++) if (ok(v, p)) v.scratch[n++] = p;
  return n;
}

/** The eligible member with the lowest score, ties broken uniformly at random (reservoir sampling: no array of ties). */
export function selectMin(
  v: KindView,
  ok: (v: KindView, pos: number) => boolean,
  score: (v: KindView, pos: number) => number,
  random: () => number,
): number {
  let best = -1;
  let bestScore = Infinity;
  let ties = 0;
  for (let p = 0; p < v.members.length; p++) {
    if (!ok(v, p)) continue;
    const s = score(v, p);
    if (best < 0 || s < bestScore) {
      best = p;
      bestScore = s;
      ties = 1;
    } else if (s === bestScore && random() * ++ties < 1) {
      best = p;
    }
  }
  return best;
}
