// What a caller of the replica can be told, as Error subclasses (nats-style,
// with a cause where there is one). The library knows no wire statuses: the
// application maps these once at its own boundary (meshlb: toMeshError in
// src/util/raft-status.ts).
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
