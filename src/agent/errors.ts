// Errors a handler can throw to say how its attempt ended.

/** Throw from a handler when a retry cannot help: the task fails at once (RESULT_STATUS_FATAL). */
export class FatalTaskError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'FatalTaskError';
  }
}

/**
 * Throw from a handler when what it calls said "too many requests" (an LLM
 * provider's 429, a quota): the attempt ends RESULT_STATUS_RATE_LIMITED with
 * `retryAfterMs` as the hint. It does not spend an attempt; the task runs again
 * after the hint, and its rate-limit key (if any) pauses mesh-wide as long.
 */
export class RateLimitedError extends Error {
  readonly retryAfterMs: number;
  constructor(message: string, retryAfterMs: number, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RateLimitedError';
    this.retryAfterMs =
      Number.isFinite(retryAfterMs) && retryAfterMs > 0 ? Math.min(Math.ceil(retryAfterMs), 0xffffffff) : 0;
  }
}

/** The reason on a task's AbortSignal when the node cancels the attempt (or the agent closes). */
export class TaskCancelledError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TaskCancelledError';
  }
}
