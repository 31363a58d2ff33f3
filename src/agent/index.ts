// The agent SDK: what a worker process imports to take tasks from a node cell.
export { Agent, AGENT_SDK_VERSION } from './agent.js';
export type { AgentOptions, AgentState, AgentStats, AgentEvents } from './agent.js';
export type { AgentTask, TaskHandler, HandlerOutput } from './task.js';
export {
  CheckpointError,
  FatalTaskError,
  HandBackRequest,
  RateLimitedError,
  TaskCancelledError,
  TaskPreemptedError,
} from './errors.js';
export { resultStatusName, codeName } from './events.js';
export type { ResultStatusName, StreamStatus } from './events.js';
export { Backoff, seededRandom } from './backoff.js';
export type { BackoffOptions } from './backoff.js';
export { AgentChannelPool } from './pool.js';
export { AgentContextSet, MAX_HELD as MAX_HELD_CONTEXTS } from './contexts.js';
export type { AgentChannelPoolOptions } from './pool.js';
export { ResultStatus } from '../gen/meshlb/v1/task.js';
export { AGENT_TRANSPORTS, DEFAULT_AGENT_TRANSPORT, agentTransport } from './transport.js';
export type { AgentCall, AgentTransport, AgentTransportOptions } from './transport.js';
export type { LeaderHints, ReconnectOptions } from './leader-hints.js';
