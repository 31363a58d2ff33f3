// What a home cell checks of a task's flow keys before it accepts it (after
// the spec's own validation, task-validate.ts): the keys' counters (and the
// debounce and singleton keys) live in the root cell's ledger, so a keyed
// task is homed there; a rate request
// larger than its key's burst could never start.
import { status } from '@grpc/grpc-js';
import type { TaskSpec } from '../gen/meshlb/v1/task.js';
import type { FlowState } from './flow-state.js';

/** The cell whose ledger owns every key's counter (docs/flow-control.md). */
export const FLOW_OWNER = '/';

export function keyedRefusal(
  spec: TaskSpec,
  home: string,
  flow: FlowState,
): { readonly code: status; readonly message: string } | undefined {
  if ((spec.debounceKey || spec.singletonKey) && home !== FLOW_OWNER)
    return {
      code: status.FAILED_PRECONDITION,
      message: `a task with a debounce or singleton key is submitted at the root cell ${FLOW_OWNER}, which holds the keys (this is ${home})`,
    };
  if (!spec.concurrencyKey && !spec.rateLimitKey) return undefined;
  if (home !== FLOW_OWNER)
    return {
      code: status.FAILED_PRECONDITION,
      message: `a task with a concurrency or rate-limit key is submitted at the root cell ${FLOW_OWNER}, which holds the keys' counters (this is ${home})`,
    };
  const rule = spec.rateLimitKey ? flow.rateRule(spec.rateLimitKey) : undefined;
  if (rule && (spec.rateUnits || 1) > rule.burst)
    return {
      code: status.INVALID_ARGUMENT,
      message: `task.rate_units ${spec.rateUnits} is over the burst of rate limit ${spec.rateLimitKey} (${rule.burst}): it could never start`,
    };
  return undefined;
}
