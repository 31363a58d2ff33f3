// The two ways a meshlb stream can be carried: by grpc-js, or by the lean
// code on node:http2 (the client ./grpc-h2-client.ts for a cell's parent link
// and an agent's stream; the server ./grpc-h2-server.ts for the hot streams a
// replica serves). Both speak the gRPC wire protocol, so either end works
// with the other's choice; which one is an option, else an environment
// variable (MESHLB_LINK_TRANSPORT, MESHLB_AGENT_TRANSPORT,
// MESHLB_SERVER_TRANSPORT).

export type Transport = 'grpc-js' | 'http2';
export const TRANSPORTS: readonly Transport[] = ['grpc-js', 'http2'];

/** The transport named by `value` (an option or an environment variable), `dflt` when empty; `what` names the stream in the error. */
export function parseTransport(what: string, value: string | undefined, dflt: Transport): Transport {
  if (value === undefined || value === '') return dflt;
  if ((TRANSPORTS as readonly string[]).includes(value)) return value as Transport;
  throw new RangeError(`${what} transport must be one of ${TRANSPORTS.join(', ')}, not "${value}"`);
}

/** The server side's default, chosen by measurement (docs/performance.md, "Lean server transport"). */
export const DEFAULT_SERVER_TRANSPORT: Transport = 'http2';

/** The server transport named by `value` (ReplicaServerOptions.transport or MESHLB_SERVER_TRANSPORT), the default when empty. */
export const serverTransport = (value: string | undefined): Transport =>
  parseTransport('server', value, DEFAULT_SERVER_TRANSPORT);
