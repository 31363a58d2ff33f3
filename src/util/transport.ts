// The two ways a meshlb client end (a cell's parent link, an agent's stream)
// can carry its gRPC stream: grpc-js's client, or the lean client on
// node:http2 (./grpc-h2-client.ts). Both speak the gRPC wire protocol to a
// grpc-js server; which one is an option, else an environment variable.

export type Transport = 'grpc-js' | 'http2';
export const TRANSPORTS: readonly Transport[] = ['grpc-js', 'http2'];

/** The transport named by `value` (an option or an environment variable), `dflt` when empty; `what` names the stream in the error. */
export function parseTransport(what: string, value: string | undefined, dflt: Transport): Transport {
  if (value === undefined || value === '') return dflt;
  if ((TRANSPORTS as readonly string[]).includes(value)) return value as Transport;
  throw new RangeError(`${what} transport must be one of ${TRANSPORTS.join(', ')}, not "${value}"`);
}
