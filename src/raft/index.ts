// The Raft library's public entry: what a mesh cell needs to run a replicated
// state machine. The pure core's internals stay behind src/raft/core.
export type {
  ConfChange,
  ConfState,
  Entry,
  HardState,
  Message,
  NodeId,
  RaftConfig,
  Ready,
  Snapshot,
  SnapshotMeta,
} from './core/types.js';
export { EntryType, NONE } from './core/types.js';
export * from './storage/index.js';
export { RaftReplica } from './runtime/replica.js';
export type { ReplicaOptions, RequestOptions, StateMachine } from './runtime/options.js';
export type { CoreFactory, RaftCore } from './runtime/core-port.js';
export { DEFAULT_LIMITS, DEFAULT_TIMING, type RaftLimits, type RaftTiming } from './runtime/defaults.js';
export {
  ApplyError,
  NotLeaderError,
  OverloadedError,
  RaftError,
  ShuttingDownError,
  TimeoutError,
} from './runtime/errors.js';
export { silentLogger, type RaftLogger } from './logger.js';
export { GrpcTransport, registerRaftService, type GrpcTransportOptions } from './runtime/grpc-transport.js';
export { realClock, type RaftClock, type RaftTimer } from './runtime/clock.js';
export {
  MemoryNetwork,
  type MemoryNetworkOptions,
  type NetworkFaults,
  type RaftEndpoint,
  type RaftMember,
  type ReplicaStatus,
  type Transport,
} from './runtime/transport.js';
