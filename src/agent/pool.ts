// Share gRPC connections among many agents in one process (agent-sim runs
// thousands). grpc-js multiplexes streams over one HTTP/2 connection; a pool of
// N channels per address spreads the streams over N connections, which helps
// when the server caps concurrent streams per connection or one connection's
// flow control becomes the bottleneck. On the lean transport (transport.ts)
// the pool holds N HTTP/2 connections per address the same way; its
// openStream serves either transport (clientFor is grpc-js only).
//
// openStream puts a stream on the connection with the fewest open ones, and
// opens another connection once every one holds `streamsPerConnection`
// (default 1,000, and on the lean transport never more than the server's
// SETTINGS_MAX_CONCURRENT_STREAMS): a stream past the server's limit would
// wait on its connection unsent (transport.ts, STREAMS_PER_CONNECTION), so
// `channels` is a floor, not a ceiling. clientFor, whose callers open the
// streams themselves, goes round-robin over `channels` clients.
import { credentials as grpcCredentials, type ChannelCredentials, type ChannelOptions } from '@grpc/grpc-js';
import { AgentServiceClient } from '../gen/meshlb/v1/agent.js';
import type { CallerSecurity } from '../security/caller.js';
import {
  h2AgentStreams,
  leanSetup,
  pickConnection,
  STREAMS_PER_CONNECTION,
  type AgentCall,
  type AgentStreams,
  type AgentTransport,
} from './transport.js';

export interface AgentChannelPoolOptions {
  /** Connections per address at least (default 1); openStream opens more as streams need them. */
  channels?: number;
  /** Streams openStream puts on one connection at most (default 1,000). */
  streamsPerConnection?: number;
  /** Max message size both ways (default 4 MiB). */
  maxMessageBytes?: number;
  channelOptions?: ChannelOptions;
  credentials?: ChannelCredentials;
  /** 'grpc-js' or 'http2' for openStream; default MESHLB_AGENT_TRANSPORT, else DEFAULT_AGENT_TRANSPORT. */
  transport?: AgentTransport;
  /** TLS and token for the lean transport (grpc-js uses `credentials`, which should say the same). */
  security?: CallerSecurity;
}

export class AgentChannelPool {
  private readonly clients = new Map<string, AgentServiceClient[]>();
  private readonly next = new Map<string, number>();
  /** openStream's grpc-js clients per address, each with its open streams. */
  private readonly streamClients = new Map<
    string,
    { client: AgentServiceClient; openStreams: number; peerMaxStreams: number }[]
  >();
  private readonly channels: number;
  private readonly cap: number;
  private readonly lean: AgentStreams | undefined;

  constructor(private readonly opts: AgentChannelPoolOptions = {}) {
    this.channels = Math.max(1, Math.floor(opts.channels ?? 1));
    this.cap = Math.max(1, Math.floor(opts.streamsPerConnection ?? STREAMS_PER_CONNECTION));
    const { transport, channelOptions, security } = opts;
    // Credentials without the security they came from could be anything: they keep grpc-js.
    const setup = leanSetup({ transport, channelOptions, ...(security ?? { credentials: opts.credentials }) });
    if (setup)
      this.lean = h2AgentStreams({
        ...setup,
        channels: this.channels,
        streamsPerConnection: this.cap,
        maxMessageBytes: opts.maxMessageBytes ?? 4 * 1024 * 1024,
        fallback: (a) => this.grpcStream(a),
      });
  }

  /** Which transport the pool's streams take (to a host:port address). */
  get transport(): AgentTransport {
    return this.lean ? 'http2' : 'grpc-js';
  }

  /** A stream to the address on the pool's transport and connections. Pass as AgentOptions.openStream. */
  readonly openStream = (address: string): AgentCall => this.lean?.open(address) ?? this.grpcStream(address);

  /** A client for the address, round-robin over the pool's channels. Pass as AgentOptions.clientFor. */
  readonly clientFor = (address: string): AgentServiceClient => {
    let list = this.clients.get(address);
    if (!list) {
      list = Array.from({ length: this.channels }, () => this.newClient(address));
      this.clients.set(address, list);
    }
    const i = this.next.get(address) ?? 0;
    this.next.set(address, (i + 1) % list.length);
    return list[i]!;
  };

  /** A grpc-js stream on the client with the fewest open, or on a new one when all hold `streamsPerConnection`. */
  private grpcStream(address: string): AgentCall {
    let list = this.streamClients.get(address);
    if (!list) {
      list = [];
      this.streamClients.set(address, list);
    }
    // Up to `channels` connections first, then the least-loaded with room.
    let i = list.length < this.channels ? -1 : pickConnection(list, this.cap);
    if (i < 0) i = list.push({ client: this.newClient(address), openStreams: 0, peerMaxStreams: Infinity }) - 1;
    const entry = list[i]!;
    const call = entry.client.connect();
    entry.openStreams++;
    call.once('status', () => entry.openStreams--);
    return call;
  }

  private newClient(address: string): AgentServiceClient {
    const max = this.opts.maxMessageBytes ?? 4 * 1024 * 1024;
    return new AgentServiceClient(address, this.opts.credentials ?? grpcCredentials.createInsecure(), {
      'grpc.max_send_message_length': max,
      'grpc.max_receive_message_length': max,
      // Each client gets its own subchannel (its own HTTP/2 connection) instead of the global pool's shared one.
      'grpc.use_local_subchannel_pool': 1,
      ...this.opts.channelOptions,
    });
  }

  close(): void {
    this.lean?.close();
    for (const list of this.clients.values()) for (const c of list) c.close();
    for (const list of this.streamClients.values()) for (const e of list) e.client.close();
    this.clients.clear();
    this.streamClients.clear();
  }
}
