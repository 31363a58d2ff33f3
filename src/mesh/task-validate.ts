// What a task spec must satisfy before a cell accepts it (every replica checks
// before it serves or forwards a submit, so bad input never costs a hop).
import { Durability, Priority, type TaskSpec } from '../gen/meshlb/v1/task.js';

/** Specs per SubmitBatch. */
export const MAX_BATCH = 10_000;
const MAX_KEY = 256;
const MAX_LABELS = 64;

/** Why a spec is unacceptable, or '' if it is fine. */
export function validateSpec(spec: TaskSpec | undefined, maxPayloadBytes: number, now: number): string {
  if (!spec) return 'task is required';
  if (!spec.kind) return 'task.kind is required';
  if (spec.kind.length > 128) return 'task.kind is longer than 128 characters';
  if (spec.idempotencyKey.length > MAX_KEY) return `task.idempotency_key is longer than ${MAX_KEY} characters`;
  if (spec.payload.length > maxPayloadBytes) {
    return `task.payload is ${spec.payload.length} bytes, over the cap of ${maxPayloadBytes}`;
  }
  if (!(spec.priority in Priority) || spec.priority < 0)
    return `task.priority ${spec.priority} is not a known priority`;
  if (!(spec.durability in Durability) || spec.durability < 0) return `task.durability ${spec.durability} is unknown`;
  if (spec.labels.length > MAX_LABELS || spec.affinity.length > MAX_LABELS) return `at most ${MAX_LABELS} labels`;
  for (const l of spec.labels) if (!l.key) return 'label keys must be non-empty';
  for (const l of spec.affinity) if (!l.key) return 'label keys must be non-empty';
  if (spec.deadlineUnixMs < 0) return 'task.deadline_unix_ms must not be negative';
  if (spec.deadlineUnixMs > 0 && spec.deadlineUnixMs <= now) return 'task.deadline_unix_ms is in the past';
  if (spec.maxAttempts > 100) return 'task.max_attempts must be <= 100';
  return '';
}
