// meshlb's public entry: the agent SDK (workers), the client SDK (submitters),
// the protocol types both share, and the pieces needed to embed a mesh
// (a replica, or a whole topology in one process). Everything else is internal.

// Agent SDK: new Agent({ address, agentId, kinds, labels, slots }).handle(kind, fn).start()
export * from './agent/index.js';

// Client SDK: new MeshClient({ address }).submit / submitBatch / get / watch / cancel
export {
  MeshClient,
  SubmitStream,
  MeshClientError,
  LEADER_ADDRESS_TRAILER,
  LEADER_TRAILER,
  RETRY_AFTER_TRAILER,
  toTaskSpec,
  isTerminal,
  taskStateName,
  outputText,
  outputJson,
} from './client/index.js';
export type {
  MeshClientOptions,
  RetryExhaustedOptions,
  CallOpts,
  SubmitResult,
  SubmitItem,
  TaskInput,
  PriorityName,
  DurabilityName,
  TaskStateName,
  TaskRecord,
  SubmitCoalesceOptions,
  SharedSubmitOptions,
  ResultStreamOptions,
  WaitOpts,
} from './client/index.js';

// Protocol types.
export { TaskState, Priority, Durability } from './gen/meshlb/v1/task.js';
export type { Task, TaskSpec, TaskResult, Label, Dispatch } from './gen/meshlb/v1/task.js';

// Topology.
export { loadTopology, parseTopology, TopologyError } from './topology/parse.js';
export type { Topology, CellSpec, ReplicaSpec, MeshDefaults, Tier } from './topology/types.js';

// Embedding: one replica of a cell, or a whole topology in one process.
export { Replica, type ReplicaOptions } from './mesh/replica.js';
export { startMesh, type MeshHarness } from './dev/harness.js';
export type { CellOptions } from './mesh/types.js';

// Security (docs/security.md): TLS and a bearer token for SDK callers; a replica's TLS and guard from the topology.
export type { CallerSecurity, CallerTlsOptions } from './security/caller.js';
export { replicaSecurity, type ReplicaSecurity } from './security/replica-security.js';
