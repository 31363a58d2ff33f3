// What a task spec must satisfy before a cell accepts it (every replica checks
// before it serves or forwards a submit, so bad input never costs a hop).
// Lengths and counts come from src/util/limits.ts; no message echoes caller input.
import { Durability, Priority, type Label, type TaskSpec } from '../gen/meshlb/v1/task.js';
import { LIMITS, overLimit } from '../util/limits.js';
import { keyedSpecProblem } from '../flow/keyed.js';
import { gangSpecProblem } from './gang-index.js';

/** Specs per SubmitBatch. */
export const MAX_BATCH = LIMITS.tasksPerBatch;

/** Why a list of labels is unacceptable, or ''. `field` is `task.labels` or `task.affinity`. */
function checkLabels(field: string, labels: readonly Label[]): string {
  if (labels.length > LIMITS.labelsPerTask) {
    return `${field} has ${labels.length} labels, over the limit of ${LIMITS.labelsPerTask}`;
  }
  for (let i = 0; i < labels.length; i++) {
    const l = labels[i]!;
    if (!l.key) return `${field}: label keys must be non-empty`;
    const why =
      overLimit(`${field}[${i}].key`, l.key, LIMITS.labelKey) ||
      overLimit(`${field}[${i}].value`, l.value, LIMITS.labelValue);
    if (why) return why;
  }
  return '';
}

/** The cell's bounds a spec is checked against (CellSettings). */
export interface SpecBounds {
  readonly maxPayloadBytes: number;
  /** No agent may declare more slots (its hello is refused): a task of more could never run. */
  readonly maxAgentSlots: number;
}

/** Why a spec is unacceptable, or '' if it is fine. */
export function validateSpec(spec: TaskSpec | undefined, bounds: SpecBounds, now: number): string {
  const { maxPayloadBytes, maxAgentSlots } = bounds;
  if (!spec) return 'task is required';
  if (!spec.kind) return 'task.kind is required';
  const tooLong =
    overLimit('task.kind', spec.kind, LIMITS.kind) ||
    overLimit('task.idempotency_key', spec.idempotencyKey, LIMITS.idempotencyKey) ||
    overLimit('task.tenant', spec.tenant, LIMITS.tenant) ||
    overLimit('task.context_key', spec.contextKey, LIMITS.contextKey) ||
    overLimit('task.trace_parent', spec.traceParent, LIMITS.traceParent) ||
    overLimit('task.trace_state', spec.traceState, LIMITS.traceState) ||
    overLimit('task.concurrency_key', spec.concurrencyKey, LIMITS.tenant) ||
    overLimit('task.rate_limit_key', spec.rateLimitKey, LIMITS.tenant) ||
    overLimit('task.gang_id', spec.gangId, LIMITS.idempotencyKey);
  if (tooLong) return tooLong;
  if (spec.payload.length > maxPayloadBytes) {
    return `task.payload is ${spec.payload.length} bytes, over the cap of ${maxPayloadBytes}`;
  }
  if (!(spec.priority in Priority) || spec.priority < 0)
    return `task.priority ${spec.priority} is not a known priority`;
  if (!(spec.durability in Durability) || spec.durability < 0) return `task.durability ${spec.durability} is unknown`;
  const labels = checkLabels('task.labels', spec.labels) || checkLabels('task.affinity', spec.affinity);
  if (labels) return labels;
  if (spec.deadlineUnixMs < 0) return 'task.deadline_unix_ms must not be negative';
  if (spec.deadlineUnixMs > 0 && spec.deadlineUnixMs <= now) return 'task.deadline_unix_ms is in the past';
  if (spec.maxAttempts > 100) return 'task.max_attempts must be <= 100';
  if (spec.slots > maxAgentSlots)
    return `task.slots ${spec.slots} is over ${maxAgentSlots}, the most slots an agent may have`;
  // Not yet: a keyed task waiting for a block of slots would give its key's admission back and take it
  // again on every pump (docs/gang.md, "Not yet").
  if (spec.slots > 1 && (spec.concurrencyKey || spec.rateLimitKey || spec.debounceKey || spec.singletonKey))
    return 'a task of several slots cannot name a concurrency, rate-limit, debounce or singleton key yet';
  const gang = gangSpecProblem(spec);
  if (gang) return gang;
  // A permit or rate spent must outlive a leader change: it is in the replicated ledger, with the task.
  if ((spec.concurrencyKey || spec.rateLimitKey) && spec.durability === Durability.DURABILITY_NONE)
    return 'a task with a concurrency or rate-limit key must be durability LOGGED';
  return keyedSpecProblem(spec);
}
