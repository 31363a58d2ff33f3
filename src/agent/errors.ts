// Errors a handler can throw to say how its attempt ended.

/** Throw from a handler when a retry cannot help: the task fails at once (RESULT_STATUS_FATAL). */
export class FatalTaskError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'FatalTaskError';
  }
}

/** The reason on a task's AbortSignal when the node cancels the attempt (or the agent closes). */
export class TaskCancelledError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TaskCancelledError';
  }
}
