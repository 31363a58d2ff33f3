// Version ramps, the pure part (docs/flow-control.md, "Version ramps"): which
// side of a kind's ramp a task goes to. The choice is a hash of the task's pin
// (its context key, else its id), not a draw: every retry of a task, and every
// task of one session, goes to the same side, at every node and after any
// restart. A pin below `percent` at one ramp stays below it at every larger
// one, so raising a ramp only moves sessions from old to new, never back.

/** FNV-1a over the UTF-16 code units, then murmur3's finalizer (FNV alone leaves sequential ids clustered). */
export function pinHash(pin: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < pin.length; i++) {
    h ^= pin.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Where a pin falls in [0, 100). */
export const pinPercent = (pin: string): number => (pinHash(pin) / 2 ** 32) * 100;

/** The task pinned by `pin` goes to the ramp's new version at `percent` (0 to 100). */
export const toNewVersion = (pin: string, percent: number): boolean => pinPercent(pin) < percent;
