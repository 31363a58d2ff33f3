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

/**
 * The reason on a task's AbortSignal when the node preempts the attempt for a
 * task of higher priority (docs/flow-control.md, "Preemption"). Stop — or save
 * what you can — within `graceMs`: then the agent counts the attempt as ended
 * and its slot as free (a result the handler returns later is dropped). The
 * attempt is requeued without spending one of the task's attempts.
 */
export class TaskPreemptedError extends TaskCancelledError {
  constructor(
    message: string,
    /** How long the handler has to stop, from when the agent got the preemption. */
    readonly graceMs: number,
    /** The task that takes the slot. */
    readonly byTaskId: string,
  ) {
    super(message);
    this.name = 'TaskPreemptedError';
  }
}

/** A checkpoint the node refused (over its size limit, an attempt it no longer holds) or that could not be sent. */
export class CheckpointError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CheckpointError';
  }
}

/** Why the mesh asks an attempt to checkpoint and stop: the reason of AgentTask.handBack. */
export class HandBackRequest extends Error {
  constructor(
    /** e.g. 'preempted', or the drain's reason. */
    readonly why: string,
    /** How long the handler has before the agent hands the attempt back by itself (ms). */
    readonly graceMs: number,
  ) {
    super(`hand back: ${why}`);
    this.name = 'HandBackRequest';
  }
}
