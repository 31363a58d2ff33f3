// The one error type the client SDK throws: a gRPC status with the mesh's hints
// (leader address, retry-after) lifted out of the trailers.
import { Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { LEADER_ADDRESS_TRAILER, LEADER_TRAILER, RETRY_AFTER_TRAILER } from '../util/errors.js';

export { LEADER_ADDRESS_TRAILER, LEADER_TRAILER, RETRY_AFTER_TRAILER };

export class MeshClientError extends Error {
  /** gRPC status code (grpc-js `status`). */
  readonly code: status;
  /** The status name, e.g. "RESOURCE_EXHAUSTED". */
  readonly codeName: string;
  /** The server's status message. */
  readonly details: string;
  /** Trailers as strings (first value per key). */
  readonly metadata: Record<string, string>;
  /** From `meshlb-retry-after-ms`, when the server sent a hint. */
  readonly retryAfterMs: number | undefined;
  /** From `meshlb-leader-address`, on FAILED_PRECONDITION from a follower. */
  readonly leaderAddress: string | undefined;

  constructor(code: status, details: string, metadata: Record<string, string> = {}, options?: { cause?: unknown }) {
    const codeName = status[code] ?? `CODE_${code}`;
    super(`${codeName}: ${details}`, options);
    this.name = 'MeshClientError';
    this.code = code;
    this.codeName = codeName;
    this.details = details;
    this.metadata = metadata;
    const retry = Number(metadata[RETRY_AFTER_TRAILER]);
    this.retryAfterMs =
      metadata[RETRY_AFTER_TRAILER] !== undefined && Number.isFinite(retry) && retry >= 0 ? retry : undefined;
    this.leaderAddress = metadata[LEADER_ADDRESS_TRAILER] || undefined;
  }

  /** Wrap whatever a grpc-js call failed with. */
  static from(err: unknown): MeshClientError {
    if (err instanceof MeshClientError) return err;
    const se = err as Partial<ServiceError> | undefined;
    if (se && typeof se.code === 'number') {
      return new MeshClientError(se.code, se.details ?? se.message ?? '', metadataToRecord(se.metadata), {
        cause: err,
      });
    }
    return new MeshClientError(status.UNKNOWN, err instanceof Error ? err.message : String(err), {}, { cause: err });
  }
}

function metadataToRecord(md: Metadata | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!md) return out;
  for (const [k, v] of Object.entries(md.getMap())) out[k] = typeof v === 'string' ? v : Buffer.from(v).toString();
  return out;
}
