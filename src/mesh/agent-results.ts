// The results an agent sends (ConnectRequest.results), taken at its node: each
// frees the slot of its attempt and goes on toward the task's home. Moved out
// of agent-sessions.ts (which holds the streams) so that file stays about the
// streams' lifecycle; the parts it touches are passed in.
import type { TaskResult } from '../gen/meshlb/v1/task.js';
import { MeshFailure } from '../gen/meshlb/v1/task.js';
import type { AgentCapacity } from './agent-capacity.js';
import type { CarryOver } from './agent-carry.js';
import type { AgentSession } from './agent-session.js';
import type { Speeds } from './agent-speed.js';
import type { CellPort } from './port.js';
import { slotsOf } from './slot-map.js';
import { routeKey } from './types.js';

export interface ResultParts {
  readonly capacity: AgentCapacity;
  readonly carry: CarryOver;
  readonly speeds: Speeds;
}

/** Take `results` from session `s`: free their slots, measure the agent, deliver them toward their homes. */
export function takeResults(cell: CellPort, p: ResultParts, s: AgentSession, results: readonly TaskResult[]): void {
  const now = cell.scheduler.now();
  let unknown = 0;
  for (const r of results) {
    const key = routeKey(r.taskId, r.attempt);
    // Only the mesh makes mesh failures: an agent's result is its own.
    if (r.meshFailure !== MeshFailure.MESH_FAILURE_UNSPECIFIED) r.meshFailure = MeshFailure.MESH_FAILURE_UNSPECIFIED;
    const item = s.assigned.get(key);
    if (item === undefined) {
      const c = s.carried.get(key);
      if (c === undefined) {
        unknown++;
        continue;
      }
      // An attempt from before this session: its slot frees; the result goes on like any
      // other (it was failed back as lost, so the home drops it as stale).
      p.carry.answered(s, key, c);
      r.agentId = s.id;
      r.nodeCell = cell.path;
      cell.deliverResult(r, key);
      continue;
    }
    s.assigned.delete(key);
    const cost = slotsOf(item.spec);
    p.capacity.slotsTaken(s, -cost);
    if (s.usable) cell.slotFreed(s.id, item.kind, cost);
    p.speeds.measured(s, now - item.sentMs, r, item.kind);
    r.agentId = s.id;
    r.nodeCell = cell.path;
    cell.deliverResult(r, key);
  }
  if (unknown > 0) cell.log.warn({ agent: s.id, unknown }, 'agent sent results for attempts it does not hold; ignored');
  // Freed slots went back to the live picker (slotFreed), new latency and success figures follow: no rebuild.
  if (s.usable) cell.agentChanged(s.id);
  cell.capacityChanged();
}
