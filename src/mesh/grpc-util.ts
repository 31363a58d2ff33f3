// Small gRPC helpers shared by the mesh services.
import type { Server, ServiceDefinition, ServerDuplexStream, ServerWritableStream } from '@grpc/grpc-js';
import type { Server as NetServer, Socket } from 'node:net';
import { toServiceError } from '../util/errors.js';
import type { Logger } from '../util/log.js';

/** A request that failed to decode; handlers answer INVALID_ARGUMENT. */
export interface Undecodable {
  readonly $invalid: string;
}

export function isUndecodable(m: unknown): m is Undecodable {
  return typeof m === 'object' && m !== null && '$invalid' in m;
}

/**
 * The service definition with tolerant request decoding: garbage bytes become
 * an Undecodable value the handler answers with INVALID_ARGUMENT and a log
 * line, instead of grpc-js's bare INTERNAL "Error deserializing request".
 */
export function tolerantService<D extends ServiceDefinition>(def: D): D {
  const out: Record<string, unknown> = {};
  for (const [name, m] of Object.entries(def)) {
    out[name] = {
      ...m,
      requestDeserialize: (buf: Buffer) => {
        try {
          return m.requestDeserialize(buf);
        } catch (err) {
          return { $invalid: err instanceof Error ? err.message : String(err) } satisfies Undecodable;
        }
      },
    };
  }
  return out as D;
}

/** End a server stream with an error status (after what was already queued to it). */
export function failStream(
  call: ServerDuplexStream<unknown, unknown> | ServerWritableStream<unknown, unknown>,
  err: unknown,
  log: Logger,
  what: string,
): void {
  const se = toServiceError(err);
  log.warn({ code: se.code, err: se.details, peer: safePeer(call) }, what);
  try {
    call.emit('error', se);
  } catch {
    // already closed
  }
}

export function safePeer(call: { getPeer(): string }): string {
  try {
    return call.getPeer();
  } catch {
    return 'unknown';
  }
}

/**
 * grpc-js sets TCP_NODELAY on client sockets but not on the sockets its server
 * accepts, so small server→client messages (dispatches down a link,
 * assignments to agents, unary answers) wait for Nagle and the peer's delayed
 * ACK: ~40 ms per hop at low rates on Linux. Set it on every accepted socket.
 * Reaches into grpc-js's http2 servers (no public hook); harmless if absent.
 */
export function enableNoDelay(server: Server): void {
  const servers = (server as unknown as { http2Servers?: Map<NetServer, unknown> }).http2Servers;
  for (const s of servers?.keys() ?? []) s.on('connection', (sock: Socket) => sock.setNoDelay(true));
}
