// What an Agent tells its listeners besides tasks: how its streams ended, with
// the gRPC code also given by name, and result statuses by name, so logs and
// printouts say `UNIMPLEMENTED` and `ok` rather than 12 and 1.
import { status as grpcStatus, type StatusObject } from '@grpc/grpc-js';
import { ResultStatus } from '../gen/meshlb/v1/task.js';
import { LEADER_TRAILER } from '../util/errors.js';

/** A result status by name. */
export type ResultStatusName = 'unspecified' | 'ok' | 'error' | 'fatal' | 'rate_limited' | 'handed_back';

export function resultStatusName(s: ResultStatus): ResultStatusName {
  const n = ResultStatus[s];
  return (typeof n === 'string' ? n.replace('RESULT_STATUS_', '').toLowerCase() : 'unspecified') as ResultStatusName;
}

/** How a stream ended: the gRPC code, its name (e.g. 'UNIMPLEMENTED') and the details. */
export interface StreamStatus {
  code: number;
  codeName: string;
  details: string;
}

export function codeName(code: number): string {
  return grpcStatus[code] ?? String(code);
}

export function streamStatus(s: Pick<StatusObject, 'code' | 'details'>): StreamStatus {
  return { code: s.code, codeName: codeName(s.code), details: s.details };
}

/**
 * Why an agent gives up by itself: every address it was given answered
 * UNIMPLEMENTED, so none is a node cell (AgentService is served by node cells
 * only) and retrying cannot help.
 */
export function notNodeCell(addresses: readonly string[], details: string): string {
  return (
    `${addresses.join(', ')} ${addresses.length > 1 ? 'are' : 'is'} not a node cell replica ` +
    `(AgentService.Connect is UNIMPLEMENTED there${details ? `: ${details}` : ''}); ` +
    'give the agent the address of a node cell (meshlb topology show FILE lists them)'
  );
}

/** The node refused the hello itself (not a redirect to its leader, not a network failure). */
export function isRefusal(s: StatusObject): boolean {
  if (s.code === grpcStatus.INVALID_ARGUMENT) return true;
  // A secured node (docs/security.md): no valid token, or a token without the agent role.
  if (s.code === grpcStatus.UNAUTHENTICATED || s.code === grpcStatus.PERMISSION_DENIED) return true;
  return s.code === grpcStatus.FAILED_PRECONDITION && s.metadata.get(LEADER_TRAILER).length === 0;
}
