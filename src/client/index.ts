// The client SDK: submit, read, watch and cancel tasks.
export { MeshClient, SubmitStream } from './client.js';
export type {
  MeshClientOptions,
  RetryExhaustedOptions,
  SubmitRetryOptions,
  CallOpts,
  SubmitResult,
  SubmitItem,
} from './client.js';
export { newIdempotencyKey } from './retry.js';
export type { SubmitCoalesceOptions } from './submit-coalescer.js';
export type { SharedSubmitOptions } from './shared-submit.js';
export type { ResultStreamOptions, WaitOpts } from './result-stream.js';
export { MeshClientError, LEADER_ADDRESS_TRAILER, LEADER_TRAILER, RETRY_AFTER_TRAILER } from './errors.js';
export { toTaskSpec, isTerminal, taskStateName, outputText, outputJson } from './spec.js';
export type { TaskInput, PriorityName, DurabilityName, TaskStateName, TaskRecord } from './spec.js';
export { TaskState, Priority, Durability, ResultStatus } from '../gen/meshlb/v1/task.js';
export type { Task, TaskSpec, TaskResult } from '../gen/meshlb/v1/task.js';
