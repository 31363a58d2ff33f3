// How a child cell opens its link stream (LinkService.Open) to a parent
// replica. Two real transports, both gRPC on the wire (the parent's server
// is grpc-js either way):
//
//   grpc-js  a grpc-js channel per stream (LinkServiceClient).
//   http2    the lean client on node:http2 (src/util/grpc-h2-client.ts): the
//            same protocol without grpc-js's call layers, cheaper per
//            message at low rate (docs/performance.md, "Low-rate path").
//
// Chosen per replica (ReplicaOptions.linkTransport, else the environment
// variable MESHLB_LINK_TRANSPORT, else DEFAULT_LINK_TRANSPORT). The mesh
// simulator passes its own dialer (streams on virtual time).
import {
  credentials,
  makeGenericClientConstructor,
  type ChannelCredentials,
  type ClientOptions,
  type ServiceError,
} from '@grpc/grpc-js';
import type { ConnectionOptions } from 'node:tls';
import {
  LinkServiceService,
  type LinkServiceClient,
  type OpenRequest,
  type OpenResponse,
} from '../gen/meshlb/v1/link.js';
import { H2Channel, h2Target } from '../util/grpc-h2-client.js';
import { parseTransport, TRANSPORTS, type Transport } from '../util/transport.js';
import { decodeOpenRequest, decodeOpenResponse, encodeOpenRequest, encodeOpenResponse } from './wire-codec.js';

/** LinkService with the mesh's codec (wire-codec.ts: relayed items go as the bytes they came as), both ends. */
export const LINK_SERVICE = {
  open: {
    ...LinkServiceService.open,
    requestSerialize: encodeOpenRequest,
    requestDeserialize: (b: Buffer): OpenRequest => decodeOpenRequest(b),
    responseSerialize: encodeOpenResponse,
    responseDeserialize: (b: Buffer): OpenResponse => decodeOpenResponse(b),
  },
} as const;

const LinkClient = makeGenericClientConstructor(LINK_SERVICE, 'meshlb.v1.LinkService') as unknown as new (
  address: string,
  credentials: ChannelCredentials,
  options?: Partial<ClientOptions>,
) => LinkServiceClient;

/** What the link uses of a stream: grpc-js's ClientDuplexStream and the lean client's call both fit. */
export interface LinkCall {
  write(msg: OpenRequest, cb?: (err?: Error | null) => void): boolean;
  end(): void;
  cancel(): void;
  on(event: 'data', listener: (m: OpenResponse) => void): unknown;
  on(event: 'error', listener: (err: ServiceError) => void): unknown;
  on(event: 'end', listener: () => void): unknown;
}

/** One LinkService.Open stream to a parent replica, and how to let go of its channel. */
export interface DialedLink {
  readonly call: LinkCall;
  close(): void;
  /** Which transport carries it (logged and in ParentLink.stats); absent for a simulator's. */
  readonly transport?: LinkTransport;
}

/** Opens a link stream to `address`. */
export type LinkDialer = (address: string, maxMessageBytes: number) => DialedLink;

export type LinkTransport = Transport;
export const LINK_TRANSPORTS: readonly LinkTransport[] = TRANSPORTS;
/** Chosen by measurement (docs/performance.md, "Low-rate path"). */
export const DEFAULT_LINK_TRANSPORT: LinkTransport = 'http2';

/** The transport named by `value` (an option or MESHLB_LINK_TRANSPORT), the default when empty. */
export const linkTransport = (value: string | undefined): LinkTransport =>
  parseTransport('link', value, DEFAULT_LINK_TRANSPORT);

/** Keepalive pings on the link's connection (both transports). */
const KEEPALIVE_MS = 10_000;

/** The grpc-js dialer: a channel per stream (plaintext unless given TLS credentials), with keepalives. */
export const grpcDialer =
  (creds?: ChannelCredentials): LinkDialer =>
  (address, max) => {
    const client = new LinkClient(address, creds ?? credentials.createInsecure(), {
      'grpc.max_receive_message_length': max,
      'grpc.max_send_message_length': max,
      'grpc.keepalive_time_ms': KEEPALIVE_MS,
    });
    return { call: client.open(), close: () => client.close(), transport: 'grpc-js' };
  };
export const grpcLinkDialer: LinkDialer = grpcDialer();

/**
 * The lean dialer: one HTTP/2 connection per stream, plaintext, or TLS with
 * the options `tls` gives at each connect (the replica's current certificate
 * and the check of the parent's). An address it cannot dial (not host:port)
 * goes through `fallback`.
 */
export const h2Dialer =
  (tls?: () => ConnectionOptions, fallback: LinkDialer = grpcLinkDialer): LinkDialer =>
  (address, max) => {
    if (!h2Target(address)) return fallback(address, max);
    const channel = new H2Channel({
      address,
      maxMessageBytes: max,
      keepaliveMs: KEEPALIVE_MS,
      ...(tls ? { tls } : {}),
    });
    const call = channel.duplex(LinkServiceService.open.path, encodeOpenRequest, decodeOpenResponse);
    return { call, close: () => channel.close(), transport: 'http2' };
  };

/** What a replica's security offers its link (src/security/replica-security.ts). */
export interface LinkSecurity {
  channelCredentials(cell: string): ChannelCredentials;
  /** TLS options for a connection to a replica of `cell`; undefined when the mesh is plaintext. */
  tlsConnectOptions?(cell: string): ConnectionOptions | undefined;
}

/** The dialer for a replica's link to `parent` with `transport`, plaintext or as `security` says. */
export function linkDialer(transport: LinkTransport, parent: string, security?: LinkSecurity): LinkDialer {
  const creds = security?.channelCredentials(parent);
  const grpc = creds ? grpcDialer(creds) : grpcLinkDialer;
  if (transport === 'grpc-js') return grpc;
  if (!security) return h2Dialer(undefined, grpc);
  // A security without TLS options for links (a custom one) keeps grpc-js, which has its credentials.
  if (!security.tlsConnectOptions) return grpc;
  if (security.tlsConnectOptions(parent) === undefined) return h2Dialer(undefined, grpc);
  return h2Dialer(() => security.tlsConnectOptions!(parent)!, grpc);
}
