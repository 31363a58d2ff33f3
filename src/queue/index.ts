// Public entry of the pending-task queue.

export { TaskQueue, type QueueTask, type TaskQueueOptions, type PushResult, type Popped } from './task-queue.js';
export { PRIORITIES, PRIORITY_RANK, isPriority, type Priority } from './priority.js';
