// The agent's counters: one object, the sum of its parts' stats, exposed live as `agent.stats`.
import type { CheckpointStats } from './checkpoints.js';
import type { ConnectionStats } from './connection.js';
import type { ExecutorStats } from './executor.js';
import type { OutboxStats } from './outbox.js';

/** Counters of the agent's parts, kept in one object the agent exposes live. */
export interface AgentStats extends ConnectionStats, ExecutorStats, OutboxStats, CheckpointStats {}

/** Every counter at 0 (a literal, so the compiler checks that none is missing). */
export function newAgentStats(): AgentStats {
  return {
    connects: 0,
    disconnects: 0,
    inFlight: 0,
    maxInFlight: 0,
    tasksStarted: 0,
    tasksOk: 0,
    tasksFailed: 0,
    tasksCancelled: 0,
    tasksHandedBack: 0,
    refusedOverSlots: 0,
    refusedOther: 0,
    duplicateAssignments: 0,
    resultsSent: 0,
    resultsResent: 0,
    resultsDropped: 0,
    messagesSent: 0,
    heartbeatsSent: 0,
    welcomeTimeouts: 0,
    heartbeatIntervalMs: 0,
    checkpointsSent: 0,
    checkpointsAccepted: 0,
    checkpointsRefused: 0,
  };
}
