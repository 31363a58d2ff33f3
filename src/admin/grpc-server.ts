// One gRPC server per replica: every service of the replica on one port, plus
// grpc.health.v1 and server reflection, with bounded message sizes, keepalive
// and a stream cap per HTTP/2 connection high enough for one agent-sim process
// holding thousands of agent streams on a single connection.
//
// Health and reflection name exactly the services this server serves (a node
// cell has no LinkService, a cell with no data dir no RaftService): the
// server records every addService, including those a `register` callback
// makes, so grpcurl never offers a method that answers UNIMPLEMENTED.
//
// The hot bidi streams (LEAN_METHODS: the link a parent serves its children,
// the agent stream a node serves its agents, a client's SubmitStream) are served on the lean server
// transport by default (src/util/grpc-h2-server.ts, docs/performance.md "Lean server
// transport"): same port, same sessions, same interceptors, without grpc-js's
// per-message layers. `transport: 'grpc-js'` (or MESHLB_SERVER_TRANSPORT)
// keeps grpc-js for everything, and so does a grpc-js without the private
// shape the hook relies on (logged once).
import * as grpc from '@grpc/grpc-js';
import type { Logger } from '../util/log.js';
import { logger as rootChild } from '../util/log.js';
import type { LeanMethod } from '../util/grpc-h2-server-call.js';
import { installLeanServer, type LeanServer } from '../util/grpc-h2-server.js';
import { serverTransport, type Transport } from '../util/transport.js';
import { ReplicaHealth, serviceNameOf } from './health.js';
import { reflectionServices } from './reflection.js';

export const DEFAULT_MAX_MESSAGE_BYTES = 4 * 1024 * 1024;
/** Streams per HTTP/2 connection: one agent-sim process multiplexes 5,000+ agents on one. */
export const DEFAULT_MAX_CONCURRENT_STREAMS = 10_000;
/** The bidi methods the lean server transport serves: a cell's link to its parent, an agent's stream, a client's submit stream. */
export const LEAN_METHODS: readonly string[] = [
  '/meshlb.v1.LinkService/Open',
  '/meshlb.v1.AgentService/Connect',
  '/meshlb.v1.TaskService/SubmitStream',
];

export interface ServiceEntry {
  definition: grpc.ServiceDefinition;
  implementation: grpc.UntypedServiceImplementation;
}

export interface ReplicaServerOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** 0 = any free port. */
  port?: number;
  /** Max receive and send message size; default 4 MiB. */
  maxMessageBytes?: number;
  services: ServiceEntry[];
  log?: Logger;
  /** HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS; default 10,000. */
  maxConcurrentStreams?: number;
  /** Server keepalive pings: interval and ack timeout (ms). Defaults 20,000 / 10,000. */
  keepaliveTimeMs?: number;
  keepaliveTimeoutMs?: number;
  /** Close connections older than this (ms), so clients rebalance; off by default. */
  maxConnectionAgeMs?: number;
  maxConnectionAgeGraceMs?: number;
  /** Node http2 session memory cap in MiB (outstanding frames); default 64. */
  maxSessionMemoryMiB?: number;
  /** Start with every service SERVING (default) or NOT_SERVING until the caller says so. */
  initiallyServing?: boolean;
  /** Serve reflection (default true). */
  reflection?: boolean;
  /** Add services that register themselves on the server (the Raft stream), before it binds. */
  register?: (server: grpc.Server) => void;
  /** TLS (src/security); default plaintext. */
  credentials?: grpc.ServerCredentials;
  /** Run before every handler (the security guard); default none. */
  interceptors?: grpc.ServerInterceptor[];
  /** Who serves LEAN_METHODS: the lean path (http2) or grpc-js; default MESHLB_SERVER_TRANSPORT, else http2. */
  transport?: Transport;
}

/** A grpc.Server that records the services added to it, by fully qualified name, and the handlers of LEAN_METHODS. */
class ServedServer extends grpc.Server {
  readonly served: string[] = [];
  readonly lean = new Map<string, LeanMethod>();

  override addService(service: grpc.ServiceDefinition, implementation: grpc.UntypedServiceImplementation): void {
    super.addService(service, implementation);
    this.served.push(serviceNameOf(service));
    for (const [name, m] of Object.entries(service)) {
      const func = implementation[name] ?? (m.originalName ? implementation[m.originalName] : undefined);
      if (!LEAN_METHODS.includes(m.path) || !m.requestStream || !m.responseStream || typeof func !== 'function')
        continue;
      this.lean.set(m.path, {
        path: m.path,
        // Bound as grpc-js binds a handler to its implementation.
        func: (func as LeanMethod['func']).bind(implementation),
        serialize: m.responseSerialize as LeanMethod['serialize'],
        deserialize: m.requestDeserialize as LeanMethod['deserialize'],
      });
    }
  }
}

export interface ReplicaServer {
  server: grpc.Server;
  port: number;
  address: string;
  health: { setServing(service: string, serving: boolean): void };
  /** Every service served, fully qualified (health and reflection included), in the order added. */
  readonly services: readonly string[];
  /** Who serves LEAN_METHODS in fact: http2 only if asked for and the hook applied. */
  readonly transport: Transport;
  /** Calls served on the lean path so far (0 on grpc-js). */
  readonly leanCalls: () => number;
  /** NOT_SERVING, then a graceful shutdown; after graceMs (default 2,000) the rest is cut. */
  close(graceMs?: number): Promise<void>;
}

export function serverOptions(o: Omit<ReplicaServerOptions, 'services'>): grpc.ServerOptions {
  const max = o.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  const opts: grpc.ServerOptions = {
    'grpc.max_receive_message_length': max,
    'grpc.max_send_message_length': max,
    'grpc.max_concurrent_streams': o.maxConcurrentStreams ?? DEFAULT_MAX_CONCURRENT_STREAMS,
    // Server pings find dead peers (a half-open agent connection) within keepalive + timeout.
    'grpc.keepalive_time_ms': o.keepaliveTimeMs ?? 20_000,
    'grpc.keepalive_timeout_ms': o.keepaliveTimeoutMs ?? 10_000,
    'grpc-node.max_session_memory': o.maxSessionMemoryMiB ?? 64,
  };
  if (o.maxConnectionAgeMs !== undefined) {
    opts['grpc.max_connection_age_ms'] = o.maxConnectionAgeMs;
    opts['grpc.max_connection_age_grace_ms'] = o.maxConnectionAgeGraceMs ?? 30_000;
  }
  return opts;
}

/** Client-side options that match the server's limits (message size, keepalive within what the server accepts). */
export function clientOptions(maxMessageBytes = DEFAULT_MAX_MESSAGE_BYTES): grpc.ChannelOptions {
  return {
    'grpc.max_receive_message_length': maxMessageBytes,
    'grpc.max_send_message_length': maxMessageBytes,
    'grpc.keepalive_time_ms': 30_000,
    'grpc.keepalive_timeout_ms': 10_000,
    'grpc.keepalive_permit_without_calls': 1,
  };
}

export async function startReplicaServer(o: ReplicaServerOptions): Promise<ReplicaServer> {
  const host = o.host ?? '127.0.0.1';
  const log = o.log ?? rootChild({ component: 'grpc-server' });
  const server = new ServedServer({ ...serverOptions(o), ...(o.interceptors ? { interceptors: o.interceptors } : {}) });
  const health = new ReplicaHealth();
  const serving = o.initiallyServing ?? true;
  for (const s of o.services) server.addService(s.definition, s.implementation);
  o.register?.(server);
  health.addToServer(server);
  if (o.reflection ?? true) {
    for (const r of reflectionServices(undefined, () => server.served))
      server.addService(r.definition, r.implementation);
  }
  health.setServing('', serving);
  for (const name of server.served) health.setServing(name, serving);
  const bindHost = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(
      `${bindHost}:${o.port ?? 0}`,
      o.credentials ?? grpc.ServerCredentials.createInsecure(),
      (err, p) =>
        err
          ? reject(new Error(`cannot listen on ${bindHost}:${o.port ?? 0}: ${err.message}`, { cause: err }))
          : resolve(p),
    );
  });
  const address = `${bindHost}:${port}`;
  const lean = leanSide(server, o, log);
  const transport: Transport = lean?.installed ? 'http2' : 'grpc-js';
  log.info(
    { address, services: server.served, tls: o.credentials?._isSecure() ?? false, transport },
    'grpc server listening',
  );
  let closing: Promise<void> | undefined;
  return {
    server,
    port,
    address,
    health,
    services: server.served,
    transport,
    leanCalls: () => lean?.calls ?? 0,
    close(graceMs = 2_000) {
      closing ??= new Promise<void>((resolve) => {
        health.setAll(false);
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, graceMs);
        timer.unref?.();
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      }).then(() => log.info({ address }, 'grpc server closed'));
      return closing;
    },
  };
}

/** The lean server transport on `server` if asked for (undefined if not); a hook that cannot apply is logged once. */
function leanSide(server: ServedServer, o: ReplicaServerOptions, log: Logger): LeanServer | undefined {
  if (serverTransport(o.transport ?? process.env.MESHLB_SERVER_TRANSPORT) !== 'http2') return undefined;
  if (server.lean.size === 0) return undefined;
  const lean = installLeanServer(server, {
    methods: server.lean,
    interceptors: o.interceptors ?? [],
    credentialInterceptors: o.credentials?._getInterceptors() ?? [],
    maxMessageBytes: o.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES,
  });
  if (!lean.installed) warnOnce(log, lean.reason ?? 'unknown');
  return lean;
}

let warned = false;
function warnOnce(log: Logger, reason: string): void {
  if (warned) return;
  warned = true;
  log.warn({ reason }, 'lean server transport unavailable: grpc-js serves every stream');
}
