// How an agent opens its stream (AgentService.Connect) to a node replica.
// Two transports, both gRPC on the wire (the node's server is grpc-js either
// way, so Python agents and grpcurl see no difference):
//
//   grpc-js  an AgentServiceClient per address (or the caller's clientFor).
//   http2    the lean client on node:http2 (src/util/grpc-h2-client.ts, the
//            one the cell-to-cell link uses): the same protocol without
//            grpc-js's call layers, cheaper per message at low rate
//            (docs/performance.md, "Lean agent transport").
//
// Chosen per agent (AgentOptions.transport, else the environment variable
// MESHLB_AGENT_TRANSPORT, else DEFAULT_AGENT_TRANSPORT), named as the link's
// linkTransport / MESHLB_LINK_TRANSPORT. What the lean client cannot honour
// keeps grpc-js whatever the choice: given `credentials` or `channelOptions`
// (grpc-js objects), a `clientFor`, a token from a function (asked per call),
// or an address that is not host:port (unix sockets); and, when no transport
// is named, a proxy in grpc_proxy, https_proxy or http_proxy (grpc-js uses it).
import type { ChannelCredentials, ChannelOptions, ClientDuplexStream, StatusObject } from '@grpc/grpc-js';
import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import {
  AgentServiceService,
  ConnectRequest,
  ConnectResponse,
  type AgentServiceClient,
} from '../gen/meshlb/v1/agent.js';
import { H2Channel, h2Target } from '../util/grpc-h2-client.js';
import type { CallerSecurity } from '../security/caller.js';
import { parseTransport, TRANSPORTS, type Transport } from '../util/transport.js';

export type AgentTransport = Transport;
export const AGENT_TRANSPORTS: readonly AgentTransport[] = TRANSPORTS;
/** Chosen by measurement (docs/performance.md, "Lean agent transport"). */
export const DEFAULT_AGENT_TRANSPORT: AgentTransport = 'http2';

/** The transport named by `value` (an option or MESHLB_AGENT_TRANSPORT), the default when empty. */
export const agentTransport = (value: string | undefined): AgentTransport =>
  parseTransport('agent', value, DEFAULT_AGENT_TRANSPORT);

/** What the agent's connection uses of a stream: grpc-js's ClientDuplexStream and the lean call both fit. */
export interface AgentCall {
  write(msg: ConnectRequest, cb?: (err?: Error | null) => void): boolean;
  end(): void;
  cancel(): void;
  on(event: 'data', listener: (m: ConnectResponse) => void): unknown;
  on(event: 'error', listener: (err: Error) => void): unknown;
  on(event: 'status', listener: (s: StatusObject) => void): unknown;
  once(event: 'drain', listener: () => void): unknown;
}

/** Opens agent streams to addresses; close() lets go of the connections it made. */
export interface AgentStreams {
  open(address: string): AgentCall;
  close(): void;
  /** Close the connections to `address` (a leader address learned from a hint, forgotten: leader-hints.ts). */
  forget(address: string): void;
  /** Which transport carries the streams to `address`. */
  transportFor(address: string): AgentTransport;
}

/** grpc-js's stream is an AgentCall (checked where it is assigned, in connection.ts). */
export type GrpcAgentCall = ClientDuplexStream<ConnectRequest, ConnectResponse>;

/**
 * TLS options for the lean client from the SDK's tls option, read at each
 * connection (files that rotate are picked up at the next connect, as the
 * grpc-js path's reloading provider does). `true`: the system's roots.
 */
export function tlsConnectOptions(tls: NonNullable<CallerSecurity['tls']>): () => ConnectionOptions {
  if (tls === true) return () => ({});
  return () => {
    const o: ConnectionOptions = {};
    const ca = tls.caFile !== undefined ? readFileSync(tls.caFile) : tls.ca;
    const cert = tls.certFile !== undefined ? readFileSync(tls.certFile) : tls.cert;
    const key = tls.keyFile !== undefined ? readFileSync(tls.keyFile) : tls.key;
    if (ca !== undefined) o.ca = ca;
    if (cert !== undefined) o.cert = cert;
    if (key !== undefined) o.key = key;
    return o;
  };
}

export interface H2AgentStreamsOptions extends LeanSetup {
  maxMessageBytes: number;
  /** HTTP/2 connections per address at least, opened as streams need them (an AgentChannelPool's `channels`; default 1). */
  channels?: number;
  /** Streams per connection at most (default STREAMS_PER_CONNECTION; lower when the server's SETTINGS say less). */
  streamsPerConnection?: number;
  /** Where an address the lean client cannot dial goes (not host:port). */
  fallback: (address: string) => AgentCall;
}

/**
 * Agent streams one pooled HTTP/2 connection carries at most before the pool opens another. A stream
 * past the server's SETTINGS_MAX_CONCURRENT_STREAMS (a node's: 10,000) is not refused: it waits on its
 * connection, its hello unsent, until another stream there ends, and its agent only times out waiting
 * for a Welcome and opens another one on the same full connection (docs/performance.md, Scale: 12,500 agents
 * on one connection left 2,500 of them unwelcomed for good). Far below the node's limit, one lost
 * connection also takes fewer agents with it.
 */
export const STREAMS_PER_CONNECTION = 1000;

/**
 * Which of `list` (connections with `openStreams`, `peerMaxStreams`) takes the next stream: the one with
 * the fewest open, if it is below `cap` and below what its server allows; else -1 (open another).
 */
export function pickConnection(list: readonly { openStreams: number; peerMaxStreams: number }[], cap: number): number {
  let best = -1;
  for (let i = 0; i < list.length; i++) {
    const c = list[i]!;
    if (c.openStreams >= Math.min(cap, c.peerMaxStreams)) continue;
    if (best < 0 || c.openStreams < list[best]!.openStreams) best = i;
  }
  return best;
}

const encodeRequest = (m: ConnectRequest): Uint8Array => ConnectRequest.encode(m).finish();
const decodeResponse = (b: Uint8Array): ConnectResponse => ConnectResponse.decode(b);

/**
 * Agent streams on the lean client: connections per address, shared by the streams opened here, each
 * stream on the least-loaded one with room (pickConnection), another connection opened when none has.
 */
export function h2AgentStreams(o: H2AgentStreamsOptions): AgentStreams {
  const channels = new Map<string, H2Channel[]>();
  const n = Math.max(1, Math.floor(o.channels ?? 1));
  const cap = Math.max(1, Math.floor(o.streamsPerConnection ?? STREAMS_PER_CONNECTION));
  const metadata: Record<string, string> = o.token !== undefined ? { authorization: `Bearer ${o.token}` } : {};
  const channel = (address: string): H2Channel =>
    new H2Channel({ address, maxMessageBytes: o.maxMessageBytes, ...(o.tls ? { tls: o.tls } : {}) });
  return {
    open(address) {
      if (!h2Target(address)) return o.fallback(address);
      let list = channels.get(address);
      if (!list) {
        list = Array.from({ length: n }, () => channel(address));
        channels.set(address, list);
      }
      let i = pickConnection(list, cap);
      if (i < 0) i = list.push(channel(address)) - 1;
      return list[i]!.duplex(AgentServiceService.connect.path, encodeRequest, decodeResponse, metadata);
    },
    forget(address) {
      for (const c of channels.get(address) ?? []) c.close();
      channels.delete(address);
    },
    close() {
      for (const list of channels.values()) for (const c of list) c.close();
      channels.clear();
    },
    transportFor: (address) => (h2Target(address) ? 'http2' : 'grpc-js'),
  };
}

const PROXY_VARS = ['grpc_proxy', 'https_proxy', 'http_proxy'];

/** The SDK options that choose an agent's transport (part of AgentOptions). */
export interface AgentTransportOptions {
  /** Extra grpc-js channel options (used when the agent makes its own client; they keep grpc-js). */
  channelOptions?: ChannelOptions;
  /** grpc-js channel credentials (they keep grpc-js; `tls` and `token` work on both transports). */
  credentials?: ChannelCredentials;
  /** Supply the grpc-js client per address (keeps grpc-js). */
  clientFor?: (address: string) => AgentServiceClient;
  /**
   * How the agent's stream is carried: 'grpc-js' or 'http2' (the lean client;
   * docs/sdk.md). Default: MESHLB_AGENT_TRANSPORT, else DEFAULT_AGENT_TRANSPORT.
   */
  transport?: AgentTransport;
  /** Opens the stream per address, e.g. an AgentChannelPool's openStream (either transport), shared by many agents. */
  openStream?: (address: string) => AgentCall;
}

/** What the lean client needs of an agent's security. */
export interface LeanSetup {
  tls?: () => ConnectionOptions;
  token?: string;
}

/**
 * The lean client's setup for an agent (or pool) with these options, or
 * undefined when it keeps grpc-js: grpc-js was chosen, or something only
 * grpc-js can honour was given (see the head of this file). Throws on an
 * unknown transport name.
 */
export function leanSetup(o: AgentTransportOptions & CallerSecurity): LeanSetup | undefined {
  const named = o.transport ?? process.env.MESHLB_AGENT_TRANSPORT;
  if (agentTransport(named) !== 'http2') return undefined;
  // grpc-js goes through an HTTP CONNECT proxy these name; the lean client does not: unchosen, keep grpc-js.
  if (!named && PROXY_VARS.some((v) => process.env[v])) return undefined;
  if (o.credentials !== undefined || o.channelOptions !== undefined || o.clientFor !== undefined) return undefined;
  if (o.openStream !== undefined || typeof o.token === 'function') return undefined;
  return {
    ...(o.tls ? { tls: tlsConnectOptions(o.tls) } : {}),
    ...(typeof o.token === 'string' ? { token: o.token } : {}),
  };
}
