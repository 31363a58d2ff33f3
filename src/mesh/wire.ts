// Messages on the links and agent streams, as the mesh writes them: the
// Dispatch for an item, and the sizes the batchers count (approximate encoded
// bytes, for message splitting and the unread-bytes bound).
import type { Dispatch, TaskResult } from '../gen/meshlb/v1/task.js';
import type { WorkItem } from './types.js';

/** The Dispatch for an item: the one it arrived as (same attempt, lease and spec), else a new one. */
export function wireDispatch(item: WorkItem): Dispatch {
  return (
    item.wire ?? {
      taskId: item.taskId,
      attempt: item.attempt,
      homeCell: item.homeCell,
      spec: item.spec,
      leaseMs: item.leaseMs,
      traceParent: '',
    }
  );
}

export function dispatchSize(d: Dispatch): number {
  return 96 + (d.spec?.payload.length ?? 0) + (d.spec?.kind.length ?? 0);
}

export function resultSize(r: TaskResult): number {
  return 64 + r.output.length + r.error.length;
}
