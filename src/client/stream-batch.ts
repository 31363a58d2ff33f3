// What the shared submit stream does with a batch's answer (shared-submit.ts).
// Items the cell decided stand, as a SubmitBatch would have answered them (the
// coalescer reads them: new, refused, a key that named a task); a status the
// cell gave the whole batch (no leader, a forward that failed, and saturation
// when the caller retries it) goes down SubmitBatch's unary path, which has the
// client's redirects and retries, as the same batch sent there would have.
import { status } from '@grpc/grpc-js';
import type { SubmitBatchItem, TaskSpec } from '../gen/meshlb/v1/task.js';

interface Batch {
  readonly specs: TaskSpec[];
  resolve(items: SubmitBatchItem[]): void;
}

/** What an entry counts against maxInFlight: its specs. */
export function weight(e: { readonly batch?: Batch }): number {
  return e.batch ? e.batch.specs.length : 1;
}

/** The items to send again (their places), and how long to wait first (the cell's hint under saturation). */
export function undecided(items: SubmitBatchItem[], retryExhausted: boolean): { at: number[]; waitMs: number } {
  const at: number[] = [];
  let waitMs = 0;
  for (let i = 0; i < items.length; i++) {
    const { code, retryAfterMs } = items[i]!;
    if (code === status.OK || code === status.INVALID_ARGUMENT) continue;
    if (code === status.RESOURCE_EXHAUSTED) {
      if (!retryExhausted) continue; // rejected with the hint, as a unary SubmitBatch would be
      waitMs = Math.max(waitMs, retryAfterMs);
    }
    at.push(i);
  }
  return { at, waitMs };
}

/** The batch's answer: the unary answers for `part.at` in their places, or the unary answer whole. */
export function merge(
  b: Batch,
  part: { items: SubmitBatchItem[]; at: number[] } | undefined,
): (sub: SubmitBatchItem[]) => void {
  return (sub) => {
    if (!part) return b.resolve(sub);
    const out = part.items.slice();
    for (let j = 0; j < part.at.length; j++) {
      out[part.at[j]!] = sub[j] ?? {
        taskId: '',
        existing: false,
        code: status.INTERNAL,
        message: 'the cell answered fewer items than sent',
        retryAfterMs: 0,
      };
    }
    b.resolve(out);
  };
}
