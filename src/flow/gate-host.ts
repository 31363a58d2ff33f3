// What the flow gates (gate.ts, tenant-gate.ts) hold and how they hand tasks
// back: a task waiting for its key or its tenant, and the home that queues it
// again and runs timers.
import type { TaskSpec } from '../gen/meshlb/v1/task.js';

export interface GateItem {
  readonly taskId: string;
  readonly spec: TaskSpec;
}

export interface GateHost<T> {
  /** Back into the queue, keeping its age. */
  requeue(item: T, enqueuedAt: number): void;
  /** Run `fn` in `ms` (the cell's scheduler). */
  later(ms: number, fn: () => void): void;
}
