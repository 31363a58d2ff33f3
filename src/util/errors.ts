// Errors that cross the gRPC boundary. Inside the product, expected failures
// are values or these typed errors; they become a gRPC status in exactly one
// place (toServiceError), so every handler answers the same way.
import { Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { LIMITS, overLimit, truncate, wellFormed } from './limits.js';

export class MeshError extends Error {
  constructor(
    readonly code: status,
    message: string,
    /** Extra trailers: leader hints, retry hints. */
    readonly details: Record<string, string> = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'MeshError';
  }
}

export const invalidArgument = (msg: string) => new MeshError(status.INVALID_ARGUMENT, msg);
export const notFound = (msg: string) => new MeshError(status.NOT_FOUND, msg);
export const alreadyExists = (msg: string) => new MeshError(status.ALREADY_EXISTS, msg);
export const unavailable = (msg: string) => new MeshError(status.UNAVAILABLE, msg);
export const deadlineExceeded = (msg: string) => new MeshError(status.DEADLINE_EXCEEDED, msg);

/** Throws INVALID_ARGUMENT naming the field and the limit when `value` is longer than `max`. */
export function checkLength(field: string, value: string, max: number): void {
  const why = overLimit(field, value, max);
  if (why) throw invalidArgument(why);
}

/** The trailers that name the cell's leader (its replica id, its address) on a refusal by a follower. */
export const LEADER_TRAILER = 'meshlb-leader';
export const LEADER_ADDRESS_TRAILER = 'meshlb-leader-address';

/** Not the leader: the trailer `meshlb-leader` names who is (id and address when known). */
export function notLeader(msg: string, leaderId: string, leaderAddress: string): MeshError {
  return new MeshError(status.FAILED_PRECONDITION, msg, {
    [LEADER_TRAILER]: leaderId,
    [LEADER_ADDRESS_TRAILER]: leaderAddress,
  });
}

/** The trailer that carries a retry hint (ms) with UNAVAILABLE or RESOURCE_EXHAUSTED. */
export const RETRY_AFTER_TRAILER = 'meshlb-retry-after-ms';

/** Saturated: the trailer `meshlb-retry-after-ms` says when to try again. */
export function resourceExhausted(msg: string, retryAfterMs: number): MeshError {
  return new MeshError(status.RESOURCE_EXHAUSTED, msg, { [RETRY_AFTER_TRAILER]: String(retryAfterMs) });
}

/**
 * Map anything thrown inside a handler to a ServiceError; unknown errors become
 * INTERNAL. The message is cut to LIMITS.statusMessage whatever made it: it
 * travels as an HTTP/2 trailer, and one past the peer's header-list limit is
 * never delivered (the call would hang until its deadline). Lone surrogates
 * become U+FFFD (wellFormed: the trailer is URI-encoded).
 */
export function toServiceError(err: unknown): Partial<ServiceError> {
  const metadata = new Metadata();
  if (err instanceof MeshError) {
    for (const [k, v] of Object.entries(err.details)) metadata.set(k, v);
    return { code: err.code, details: wellFormed(truncate(err.message, LIMITS.statusMessage)), metadata };
  }
  const message = err instanceof Error ? err.message : String(err);
  return {
    code: status.INTERNAL,
    details: wellFormed(truncate(`internal error: ${message}`, LIMITS.statusMessage)),
    metadata,
  };
}
