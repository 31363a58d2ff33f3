// Share gRPC connections among many agents in one process (agent-sim runs
// thousands). grpc-js multiplexes streams over one HTTP/2 connection; a pool of
// N channels per address spreads the streams over N connections, which helps
// when the server caps concurrent streams per connection or one connection's
// flow control becomes the bottleneck. On the lean transport (transport.ts)
// the pool holds N HTTP/2 connections per address the same way; its
// openStream serves either transport (clientFor is grpc-js only).
import { credentials as grpcCredentials, type ChannelCredentials, type ChannelOptions } from '@grpc/grpc-js';
import { AgentServiceClient } from '../gen/meshlb/v1/agent.js';
import type { CallerSecurity } from '../security/caller.js';
import { h2AgentStreams, leanSetup, type AgentCall, type AgentStreams, type AgentTransport } from './transport.js';

export interface AgentChannelPoolOptions {
  /** Connections per address (default 1). */
  channels?: number;
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
  private readonly channels: number;
  private readonly lean: AgentStreams | undefined;

  constructor(private readonly opts: AgentChannelPoolOptions = {}) {
    this.channels = Math.max(1, Math.floor(opts.channels ?? 1));
    const { transport, channelOptions, security } = opts;
    // Credentials without the security they came from could be anything: they keep grpc-js.
    const setup = leanSetup({ transport, channelOptions, ...(security ?? { credentials: opts.credentials }) });
    if (setup)
      this.lean = h2AgentStreams({
        ...setup,
        channels: this.channels,
        maxMessageBytes: opts.maxMessageBytes ?? 4 * 1024 * 1024,
        fallback: (a) => this.clientFor(a).connect(),
      });
  }

  /** Which transport the pool's streams take (to a host:port address). */
  get transport(): AgentTransport {
    return this.lean ? 'http2' : 'grpc-js';
  }

  /** A stream to the address on the pool's transport and connections. Pass as AgentOptions.openStream. */
  readonly openStream = (address: string): AgentCall => this.lean?.open(address) ?? this.clientFor(address).connect();

  /** A client for the address, round-robin over the pool's channels. Pass as AgentOptions.clientFor. */
  readonly clientFor = (address: string): AgentServiceClient => {
    let list = this.clients.get(address);
    if (!list) {
      list = [];
      const max = this.opts.maxMessageBytes ?? 4 * 1024 * 1024;
      for (let i = 0; i < this.channels; i++) {
        list.push(
          new AgentServiceClient(address, this.opts.credentials ?? grpcCredentials.createInsecure(), {
            'grpc.max_send_message_length': max,
            'grpc.max_receive_message_length': max,
            // Each client gets its own subchannel (its own HTTP/2 connection) instead of the global pool's shared one.
            'grpc.use_local_subchannel_pool': 1,
            ...this.opts.channelOptions,
          }),
        );
      }
      this.clients.set(address, list);
    }
    const i = this.next.get(address) ?? 0;
    this.next.set(address, (i + 1) % list.length);
    return list[i]!;
  };

  close(): void {
    this.lean?.close();
    for (const list of this.clients.values()) for (const c of list) c.close();
    this.clients.clear();
  }
}
