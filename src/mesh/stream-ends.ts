// Ending an agent stream or a child's link stream with an error, counted: every
// such end goes to the cell's meter with its reason (meshlb_streams_ended_total,
// docs/operations.md "Metrics") as well as to the log (failStream). The reason
// is read from the error's status unless the caller knows better (a hello
// timeout and a silent peer are both DEADLINE_EXCEEDED; an over-rate refusal and
// a full replica both RESOURCE_EXHAUSTED).
import { status, type ServerDuplexStream } from '@grpc/grpc-js';
import { LEADER_ADDRESS_TRAILER, MeshError } from '../util/errors.js';
import type { Logger } from '../util/log.js';
import { failStream } from './grpc-util.js';
import type { CellMeter, EndedStream, StreamEnd } from './meter.js';

/** The reason label an error's status gives, when the caller names none. */
export function streamEndOf(err: unknown): StreamEnd {
  if (!(err instanceof MeshError)) return 'error';
  switch (err.code) {
    case status.FAILED_PRECONDITION:
      return err.details[LEADER_ADDRESS_TRAILER] ? 'not_leader' : 'refused';
    case status.UNAVAILABLE:
      return 'not_leader'; // a follower with no leader to name yet
    case status.NOT_FOUND:
    case status.PERMISSION_DENIED:
    case status.UNAUTHENTICATED:
      return 'refused';
    case status.ALREADY_EXISTS:
      return 'duplicate';
    case status.INVALID_ARGUMENT:
      return 'bad_message';
    case status.RESOURCE_EXHAUSTED:
      return 'full';
    case status.DEADLINE_EXCEEDED:
      return 'silent';
    default:
      return 'error';
  }
}

/** End `call` with `err` (logged as `what`), counted as `reason` (else the error's) on `stream` of the cell. */
export function endStream(
  call: ServerDuplexStream<never, never> | ServerDuplexStream<unknown, unknown>,
  err: unknown,
  cell: { readonly meter: CellMeter; readonly log: Logger },
  stream: EndedStream,
  what: string,
  reason: StreamEnd = streamEndOf(err),
): void {
  cell.meter.streamEnded(stream, reason);
  failStream(call as ServerDuplexStream<unknown, unknown>, err, cell.log, what);
}
