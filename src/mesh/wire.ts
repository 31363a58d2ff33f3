// Messages on the links and agent streams, as the mesh writes them: the
// Dispatch for an item, and the sizes the batchers count (approximate encoded
// bytes, for message splitting and the unread-bytes bound).
import type { Dispatch, TaskCheckpoint, TaskResult } from '../gen/meshlb/v1/task.js';
import type { WorkItem } from './types.js';
import { keptBytes } from './wire-codec.js';

/**
 * The Dispatch for an item: the one it arrived as (same attempt, lease and
 * spec), else a new one. Traced here (tracer.ts), a copy naming this cell's
 * span: the one it arrived as stays as the sender made it.
 */
export function wireDispatch(item: WorkItem): Dispatch {
  if (item.traceParent !== '') return { ...untraced(item), traceParent: item.traceParent };
  return untraced(item);
}

function untraced(item: WorkItem): Dispatch {
  return (
    item.wire ?? {
      taskId: item.taskId,
      attempt: item.attempt,
      homeCell: item.homeCell,
      spec: item.spec,
      leaseMs: item.leaseMs,
      traceParent: '',
      checkpoint: item.checkpoint,
      guaranteed: item.guaranteed,
      send: 0,
    }
  );
}

// A relayed item goes as the bytes it came as (wire-codec.ts), fields a newer sender added included:
// it counts as those when they are more than the estimate.
export function dispatchSize(d: Dispatch): number {
  const s = d.spec;
  // Trace context counts too: a caller's trace_state alone may be 512 characters.
  const trace = d.traceParent.length + (s ? s.traceParent.length + s.traceState.length : 0);
  const est = 96 + trace + (s?.payload.length ?? 0) + (s?.kind.length ?? 0) + (d.checkpoint?.data.length ?? 0);
  return Math.max(est, keptBytes(d));
}

export function resultSize(r: TaskResult): number {
  return Math.max(64 + r.output.length + r.error.length, keptBytes(r));
}

export function checkpointSize(c: TaskCheckpoint): number {
  return 64 + c.taskId.length + c.data.length;
}
