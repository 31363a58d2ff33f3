// The lean server transport: a grpc-js Server's hot bidi methods served
// straight on its node:http2 streams (grpc-h2-server-call.ts, with the handler
// on grpc-h2-server-duplex.ts), everything else by grpc-js as before, on the
// same port and the same HTTP/2 sessions (so keepalive, connection limits,
// TLS and shutdown stay grpc-js's and node's).
//
// grpc-js has no public hook for this. Version 1.14 keeps its node:http2
// servers in the private `http2Servers` map and serves requests from one
// 'stream' listener on each; install() replaces that listener by one that
// takes a hot method's stream and hands every other stream to grpc-js's
// listener untouched. If that private shape is not there (another grpc-js),
// install() installs nothing and says why: the caller logs it and grpc-js
// serves everything, as with the grpc-js transport.
//
// A stream is taken only if grpc-js would serve it the plain way: a hot
// path, content-type application/grpc..., and no request compression
// (grpc-encoding absent or identity; grpc-js can decompress, the lean path
// cannot). The server's interceptors (the security guard) run over the lean
// call as grpc-js runs them over its own, in the same order.
import type * as grpc from '@grpc/grpc-js';
import type { IncomingHttpHeaders, ServerHttp2Stream } from 'node:http2';
import type { EventEmitter } from 'node:events';
import { H2ServerCall, type LeanMethod } from './grpc-h2-server-call.js';
import { serveBidi } from './grpc-h2-server-duplex.js';

export interface LeanServerOptions {
  /** The hot bidi methods, by path. */
  readonly methods: ReadonlyMap<string, LeanMethod>;
  /** The server's interceptors (ServerOptions.interceptors), first applied first, as grpc-js applies them. */
  readonly interceptors: readonly grpc.ServerInterceptor[];
  /** The credentials' own interceptors (ServerCredentials._getInterceptors()), applied before those. */
  readonly credentialInterceptors?: readonly grpc.ServerInterceptor[];
  readonly maxMessageBytes: number;
}

/** What install() did: the streams it served so far (tests check the hook applies), or why it did nothing. */
export interface LeanServer {
  readonly installed: boolean;
  /** Why nothing was installed (a grpc-js without the private shape this relies on). */
  readonly reason?: string;
  /** Calls served on the lean path since install. */
  readonly calls: number;
}

type StreamListener = (
  this: unknown,
  stream: ServerHttp2Stream,
  headers: IncomingHttpHeaders,
  ...rest: unknown[]
) => void;

/** The node:http2 servers of a bound grpc-js Server, or why they cannot be reached. */
function http2ServersOf(server: grpc.Server): EventEmitter[] | string {
  const map = (server as unknown as { http2Servers?: unknown }).http2Servers;
  if (!(map instanceof Map)) return 'grpc-js has no http2Servers map (not 1.14?)';
  const out: EventEmitter[] = [];
  for (const s of map.keys()) {
    const em = s as EventEmitter;
    if (typeof em?.listeners !== 'function') return 'an http2Servers key is not an http2 server';
    if (em.listeners('stream').length !== 1)
      return `an http2 server has ${em.listeners('stream').length} 'stream' listeners, not 1`;
    out.push(em);
  }
  if (out.length === 0) return 'the server is not bound';
  return out;
}

/** Serve `o.methods` of the bound `server` on the lean path; grpc-js keeps the rest. Call once, after bindAsync. */
export function installLeanServer(server: grpc.Server, o: LeanServerOptions): LeanServer {
  const found = http2ServersOf(server);
  if (typeof found === 'string') return { installed: false, reason: found, calls: 0 };
  const interceptors = [...(o.credentialInterceptors ?? []), ...o.interceptors];
  const state = { installed: true, calls: 0 };
  const onIdle = (server as unknown as { onStreamOpened?: (s: ServerHttp2Stream) => void }).onStreamOpened;
  // What the interceptors are shown of each method, built once.
  const definitions = new Map(
    [...o.methods.values()].map((m) => [
      m.path,
      {
        path: m.path,
        requestStream: true,
        responseStream: true,
        requestDeserialize: m.deserialize,
        responseSerialize: m.serialize,
      } as grpc.ServerMethodDefinition<unknown, unknown>,
    ]),
  );
  for (const h2 of found) {
    const grpcListener = h2.listeners('stream')[0] as StreamListener;
    h2.removeListener('stream', grpcListener);
    h2.on('stream', function (this: unknown, stream: ServerHttp2Stream, headers: IncomingHttpHeaders, ...rest) {
      const method = leanMethod(o.methods, headers);
      if (!method) return grpcListener.call(this, stream, headers, ...rest);
      state.calls++;
      // grpc-js's idle-connection accounting (grpc.max_connection_idle_ms), when it has it.
      if (typeof onIdle === 'function') onIdle.call(server, stream);
      const base: grpc.ServerInterceptingCallInterface = new H2ServerCall(stream, headers, method, o.maxMessageBytes);
      const definition = definitions.get(method.path)!;
      const call = interceptors.reduce((c, interceptor) => interceptor(definition, c), base);
      serveBidi(call, method);
    });
  }
  return state;
}

function leanMethod(methods: ReadonlyMap<string, LeanMethod>, headers: IncomingHttpHeaders): LeanMethod | undefined {
  const path = headers[':path'];
  if (path === undefined) return undefined;
  const method = methods.get(path);
  if (!method) return undefined;
  const type = headers['content-type'];
  if (typeof type !== 'string' || !type.startsWith('application/grpc')) return undefined;
  const enc = headers['grpc-encoding'];
  if (enc !== undefined && enc !== 'identity') return undefined;
  return method;
}
