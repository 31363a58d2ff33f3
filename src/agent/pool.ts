// Share gRPC connections among many agents in one process (agent-sim runs
// thousands). grpc-js multiplexes streams over one HTTP/2 connection; a pool of
// N channels per address spreads the streams over N connections, which helps
// when the server caps concurrent streams per connection or one connection's
// flow control becomes the bottleneck.
import { credentials as grpcCredentials, type ChannelCredentials, type ChannelOptions } from '@grpc/grpc-js';
import { AgentServiceClient } from '../gen/meshlb/v1/agent.js';

export interface AgentChannelPoolOptions {
  /** Connections per address (default 1). */
  channels?: number;
  /** Max message size both ways (default 4 MiB). */
  maxMessageBytes?: number;
  channelOptions?: ChannelOptions;
  credentials?: ChannelCredentials;
}

export class AgentChannelPool {
  private readonly clients = new Map<string, AgentServiceClient[]>();
  private readonly next = new Map<string, number>();
  private readonly channels: number;

  constructor(private readonly opts: AgentChannelPoolOptions = {}) {
    this.channels = Math.max(1, Math.floor(opts.channels ?? 1));
  }

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
    for (const list of this.clients.values()) for (const c of list) c.close();
    this.clients.clear();
  }
}
