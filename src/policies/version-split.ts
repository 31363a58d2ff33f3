// Version ramps, the pure part (docs/flow-control.md, "Version ramps"): which
// side of a kind's ramp a task goes to. The choice is a hash of the task's pin
// (its context key, else its id), not a draw: every retry of a task, and every
// task of one session, goes to the same side, at every node and after any
// restart. A pin below `percent` at one ramp stays below it at every larger
// one, so raising a ramp only moves sessions from old to new, never back.
import { hash32 } from './context.js';

/** The pin's 32-bit hash: the same as context routing's (FNV-1a mixed with murmur3's finalizer). */
export const pinHash = (pin: string): number => hash32(pin);

/** Where a pin falls in [0, 100). */
export const pinPercent = (pin: string): number => (pinHash(pin) / 2 ** 32) * 100;

/** The task pinned by `pin` goes to the ramp's new version at `percent` (0 to 100). */
export const toNewVersion = (pin: string, percent: number): boolean => pinPercent(pin) < percent;
