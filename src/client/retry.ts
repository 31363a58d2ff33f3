// When a client call may be repeated. A submit whose outcome is unknown (the
// answer never came: a deadline, a dropped connection, a replica or leader
// that went away mid-call) may have been accepted or not; repeating it with
// the same idempotency keys is safe (the home cell answers the task it already
// has), and the only way to learn the outcome.
import { randomBytes } from 'node:crypto';
import { status } from '@grpc/grpc-js';
import { Backoff } from '../agent/backoff.js';
import type { MeshClientError } from './errors.js';

export interface SubmitRetryOptions {
  /** Attempts of one submit call whose outcome stayed unknown, the first included (default 10). */
  maxAttempts?: number;
  /**
   * Deadline of one attempt (default: half the call's deadline), so that a
   * replica that hangs leaves time to ask another within the call's deadline.
   */
  attemptTimeoutMs?: number;
  /** Wait before a retry: uniform in [0, cap], the cap doubling from initialBackoffMs to maxBackoffMs (50, 2000). */
  initialBackoffMs?: number;
  maxBackoffMs?: number;
}

/** How a unary call may be repeated: `safe` to repeat at all; `submit` under the unknown-outcome policy. */
export interface Repeat {
  readonly safe: boolean;
  readonly submit: boolean;
}
/** Get and cancel: safe to repeat (cancel of a cancelled task answers its record). */
export const READ: Repeat = { safe: true, submit: false };

export const SUBMIT_RETRY_DEFAULTS: Required<Omit<SubmitRetryOptions, 'attemptTimeoutMs'>> = {
  maxAttempts: 10,
  initialBackoffMs: 50,
  maxBackoffMs: 2000,
};

/** The submit retry settings in force: the defaults under the caller's. */
export type SubmitRetry = SubmitRetryOptions & typeof SUBMIT_RETRY_DEFAULTS;

/** One attempt's share of a submit call of `callMs` under the unknown-outcome policy (none: the whole call). */
export function submitAttemptMs(r: SubmitRetry | undefined, callMs: number): number {
  return r ? (r.attemptTimeoutMs ?? Math.max(1, Math.ceil(callMs / 2))) : Infinity;
}

/** The jittered backoff between attempts of a submit whose outcome stayed unknown (the defaults without `r`). */
export function submitBackoff(r: SubmitRetry | undefined, random: () => number): Backoff {
  const { initialBackoffMs: initial, maxBackoffMs: max } = r ?? SUBMIT_RETRY_DEFAULTS;
  return new Backoff({ initialMs: initial, maxMs: Math.max(initial, max) }, random);
}

/** The address after `current` in `addresses`, round the list (the first when `current` is not in it). */
export function nextAddress(addresses: readonly string[], current: string): string {
  return addresses[(addresses.indexOf(current) + 1) % addresses.length]!;
}

/** A random 128-bit idempotency key (32 hex digits) for a task the caller gave none. */
export function newIdempotencyKey(): string {
  return randomBytes(16).toString('hex');
}

/**
 * The call may or may not have taken effect: no answer came (deadline), the
 * replica was unreachable or went away mid-call, or the connection was reset
 * under it. A status the server chose (INVALID_ARGUMENT, NOT_FOUND, ...) is an
 * outcome and is never retried here.
 */
export function outcomeUnknown(err: MeshClientError): boolean {
  switch (err.code) {
    case status.UNAVAILABLE:
    case status.DEADLINE_EXCEEDED:
    case status.CANCELLED:
      return true;
    case status.INTERNAL:
      // grpc-js reports a stream reset by a dying server as INTERNAL.
      return /RST_STREAM|Session closed|Connection dropped/i.test(err.details);
    default:
      return false;
  }
}

/** Watching is read-only, so it is retried after transport failures and saturation. */
export function retryableWatchError(err: MeshClientError): boolean {
  if (err.code === status.UNAVAILABLE || err.code === status.RESOURCE_EXHAUSTED) return true;
  return err.code === status.INTERNAL && /RST_STREAM|Session closed/i.test(err.details);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
