// The fixed answers of every picker (./picker.ts): frozen once, so the pick path allocates nothing
// and a dispatcher can tell them apart by identity (SPILL_NO_AFFINITY: hold a task no agent below
// matches as unplaceable, docs/mesh.md "Affinity through the tiers").
import type { PickResult } from './types.js';

export const SPILL_NO_KIND: PickResult = Object.freeze({ type: 'spillUp', reason: 'no candidate has the kind' });
export const SPILL_NO_MATCH: PickResult = Object.freeze({
  type: 'spillUp',
  reason: 'no candidate of the kind matches affinity/exclusions',
});
/** No candidate of the kind may match the task's affinity, exclusions aside (a dispatcher may hold it as unplaceable). */
export const SPILL_NO_AFFINITY: PickResult = Object.freeze({
  type: 'spillUp',
  reason: 'no candidate of the kind matches the affinity',
});
export const QUEUE_FULL: PickResult = Object.freeze({ type: 'queue', reason: 'all candidates of the kind are full' });
export const QUEUE_HOLDER: PickResult = Object.freeze({ type: 'queue', reason: "the context key's holder is full" });
export const REJECT_NO_KIND: PickResult = Object.freeze({
  type: 'reject',
  code: 'INVALID_ARGUMENT',
  reason: 'task has no kind',
});
