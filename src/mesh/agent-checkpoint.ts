// Checkpoints at the node: what an agent sends (ConnectRequest.checkpoint) is
// checked here, answered with a CheckpointAck, and sent on toward the task's
// home through the cell (relay.ts routes it along the attempt's origin); and
// the hook that asks an agent to hand attempts back (a preemption, a drain
// with migration): docs/agent-protocol.md, "Checkpoints".
//
// A refused checkpoint leaves the stream up: the agent is told why
// (CheckpointAck.error) and the node logs it; nothing else changes.
import type { TaskCheckpoint, TaskRef } from '../gen/meshlb/v1/task.js';
import { clip } from '../util/limits.js';
import type { AgentSession } from './agent-session.js';
import type { CellPort } from './port.js';
import { routeKey } from './types.js';

/** The grace an agent gets to checkpoint before it hands an attempt back, when the asker names none. */
export const DEFAULT_HAND_BACK_GRACE_MS = 5000;

/** Why the node refuses a checkpoint from `s`, or '' to take it. */
function checkpointRefusal(s: AgentSession, cp: TaskCheckpoint, maxBytes: number): string {
  if (!s.assigned.has(routeKey(cp.taskId, cp.attempt))) {
    return `checkpoint for task ${clip(cp.taskId)} attempt ${cp.attempt}: this agent does not run that attempt`;
  }
  if (maxBytes <= 0) return 'this node takes no checkpoints';
  if (cp.data.length > maxBytes) {
    return `checkpoint of ${cp.data.length} bytes is over the node's limit of ${maxBytes} bytes (Welcome.max_checkpoint_bytes)`;
  }
  return '';
}

/** A checkpoint from agent `s`: refused with a reason, or acked and sent on toward the home. */
export function agentCheckpoint(cell: CellPort, s: AgentSession, cp: TaskCheckpoint): void {
  const ack = { taskId: cp.taskId, attempt: cp.attempt, seq: cp.seq };
  const why = checkpointRefusal(s, cp, cell.settings.checkpointMaxBytes);
  if (why) {
    const fields = { agent: s.id, task: clip(cp.taskId), attempt: cp.attempt, bytes: cp.data.length };
    cell.log.warn({ ...fields, why }, 'checkpoint refused');
    s.sendCheckpointAck({ ...ack, accepted: false, error: why });
    return;
  }
  const progress = Number.isFinite(cp.progress) ? cp.progress : 0;
  // The home stamps the time; the size travels so a hop can count it without the data.
  cell.deliverCheckpoint({ ...cp, progress, atUnixMs: 0, sizeBytes: cp.data.length });
  s.sendCheckpointAck({ ...ack, accepted: true, error: '' });
}

/**
 * Ask an agent to checkpoint attempts it runs and end them as handed back
 * (RESULT_STATUS_HANDED_BACK): the home queues each task again at once,
 * from its last checkpoint, without using up an attempt. For preemption
 * (a higher priority needs the slot) and operators. Returns the refs the
 * agent holds (those asked); the others are left alone.
 */
export function requestHandBack(
  agents: ReadonlyMap<string, AgentSession>,
  agentId: string,
  refs: readonly TaskRef[],
  reason: string,
  graceMs = DEFAULT_HAND_BACK_GRACE_MS,
): TaskRef[] {
  const s = agents.get(agentId);
  if (!s || s.dead) return [];
  const held = refs.filter((r) => s.assigned.has(routeKey(r.taskId, r.attempt)));
  if (held.length > 0) s.sendHandBack(held, reason, graceMs);
  return held;
}
