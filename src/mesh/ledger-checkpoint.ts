// Checkpoints in the home ledger: the `checkpointed` transition, pure and
// deterministic like the rest of the ledger (ledger.ts calls it).
//
// Invariants (test/mesh/checkpoint.test.ts):
// - only the task's current attempt saves a checkpoint: one of an older
//   attempt is `stale` (a newer attempt has been dispatched) and never
//   overwrites the record's; the just-ended attempt still may while the task
//   waits QUEUED for its next one (its last checkpoint arriving after its
//   hand-back or loss is still the latest there is);
// - within one attempt the agent's `seq` only grows: an older one is `stale`;
// - a task that ended keeps what, when and how big its last checkpoint was,
//   not the data (memory stays bounded by live tasks times the size limit);
//   replayed (AdminService RetryTask), it starts over (resumable()).
import type { TaskCheckpoint } from '../gen/meshlb/v1/task.js';
import { isTerminal, type ApplyResult, type TaskRecord } from './ledger-record.js';

const NO_DATA: Buffer = Buffer.alloc(0);

export function applyCheckpoint(rec: TaskRecord | undefined, cp: TaskCheckpoint, atMs: number): ApplyResult {
  const id = cp.taskId;
  if (!rec) return { ok: false, id, why: 'unknown' };
  if (isTerminal(rec.state)) return { ok: false, id, why: 'terminal', state: rec.state };
  const last = rec.checkpoint;
  if (rec.attempt === 0 || cp.attempt !== rec.attempt || (last && last.attempt === cp.attempt && last.seq > cp.seq)) {
    return { ok: false, id, why: 'stale', state: rec.state };
  }
  rec.checkpoint = {
    taskId: id,
    attempt: cp.attempt,
    data: cp.data,
    progress: cp.progress,
    seq: cp.seq,
    // The home's clock (the leader decided it): the same on every replica.
    atUnixMs: Math.round(atMs),
    sizeBytes: cp.data.length,
  };
  return { ok: true, id, state: rec.state, attempt: rec.attempt };
}

/** The task ended: keep the checkpoint's figures, drop its bytes. */
export function dropCheckpointData(rec: TaskRecord): void {
  if (rec.checkpoint && rec.checkpoint.data.length > 0) rec.checkpoint = { ...rec.checkpoint, data: NO_DATA };
}

/**
 * The checkpoint the task's next attempt resumes from: the last one saved,
 * while it still has its data (a task that ended and was replayed starts over).
 */
export function resumable(rec: TaskRecord): TaskCheckpoint | undefined {
  const cp = rec.checkpoint;
  return cp && cp.data.length === cp.sizeBytes ? cp : undefined;
}

/** Whether a checkpoint of `attempt` could still be recorded for `rec` (the home checks before it logs one). */
export function checkpointable(rec: TaskRecord | undefined, attempt: number): rec is TaskRecord {
  return rec !== undefined && !isTerminal(rec.state) && rec.attempt > 0 && rec.attempt === attempt;
}
