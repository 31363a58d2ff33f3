// The one mapping from the Raft library's errors to a gRPC status. src/raft
// knows no MeshError (it is a library); services that answer with a replica's
// outcome pass failures through here and then through toServiceError().
import { status } from '@grpc/grpc-js';
import { ApplyError, NotLeaderError, OverloadedError, ShuttingDownError, TimeoutError } from '../raft/index.js';
import { MeshError, notLeader, resourceExhausted } from './errors.js';

/** FAILED_PRECONDITION carries the leader hint, RESOURCE_EXHAUSTED the retry hint; anything else is INTERNAL. */
export function toMeshError(err: unknown): MeshError {
  if (err instanceof MeshError) return err;
  if (err instanceof NotLeaderError) return notLeader(err.message, err.leader, err.leaderAddress);
  if (err instanceof TimeoutError) return new MeshError(status.DEADLINE_EXCEEDED, err.message);
  if (err instanceof ShuttingDownError) return new MeshError(status.UNAVAILABLE, err.message);
  if (err instanceof OverloadedError) return resourceExhausted(err.message, err.retryAfterMs);
  if (err instanceof ApplyError) return new MeshError(status.INTERNAL, err.message, {}, { cause: err });
  return new MeshError(status.INTERNAL, err instanceof Error ? err.message : String(err), {}, { cause: err });
}
