// What a caller of the replica can be told, as Error subclasses (nats-style,
// with a cause where there is one). They become a gRPC status in exactly one
// place: toMeshError() below, which the service layer hands to toServiceError().
import { status } from '@grpc/grpc-js';
import { MeshError, notLeader } from '../../util/errors.js';
import type { NodeId } from '../core/types.js';

export class RaftError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RaftError';
  }
}

/** This replica cannot take the request; `leader`/`leaderAddress` say who can ('' when unknown). */
export class NotLeaderError extends RaftError {
  constructor(
    readonly leader: NodeId,
    readonly leaderAddress: string,
  ) {
    super(
      leader
        ? `not the leader; the leader is ${leader} (${leaderAddress || 'address unknown'})`
        : 'not the leader; no leader is known',
    );
    this.name = 'NotLeaderError';
  }
}

/** The deadline passed. For a proposal the outcome is unknown: it may still commit. */
export class TimeoutError extends RaftError {
  constructor(
    what: string,
    readonly timeoutMs: number,
  ) {
    super(`${what} timed out after ${timeoutMs} ms`);
    this.name = 'TimeoutError';
  }
}

export class ShuttingDownError extends RaftError {
  constructor() {
    super('raft replica is shutting down');
    this.name = 'ShuttingDownError';
  }
}

/** The leader refused more work for now (too many uncommitted entries, a transfer in progress). */
export class OverloadedError extends RaftError {
  constructor(
    readonly reason: string,
    readonly retryAfterMs: number,
  ) {
    super(`raft proposal refused: ${reason}`);
    this.name = 'OverloadedError';
  }
}

/** The state machine threw while applying this replica's own proposal. */
export class ApplyError extends RaftError {
  constructor(index: number, cause: unknown) {
    super(`state machine failed applying entry ${index}: ${String(cause)}`, { cause });
    this.name = 'ApplyError';
  }
}

/** The one mapping from runtime errors to a gRPC status (FAILED_PRECONDITION carries the leader hint). */
export function toMeshError(err: unknown): MeshError {
  if (err instanceof MeshError) return err;
  if (err instanceof NotLeaderError) return notLeader(err.message, err.leader, err.leaderAddress);
  if (err instanceof TimeoutError) return new MeshError(status.DEADLINE_EXCEEDED, err.message);
  if (err instanceof ShuttingDownError) return new MeshError(status.UNAVAILABLE, err.message);
  if (err instanceof OverloadedError) {
    return new MeshError(status.RESOURCE_EXHAUSTED, err.message, { 'meshlb-retry-after-ms': String(err.retryAfterMs) });
  }
  if (err instanceof ApplyError) return new MeshError(status.INTERNAL, err.message, {}, { cause: err });
  return new MeshError(status.INTERNAL, err instanceof Error ? err.message : String(err), {}, { cause: err });
}
