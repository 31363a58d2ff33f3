// A small gRPC client for one bidirectional stream, straight on node:http2:
// the lean transport of the cell-to-cell link (docs/performance.md, "Low-rate
// path") and of the agent SDK's stream (src/agent/transport.ts). It speaks the gRPC wire protocol as any gRPC server expects it
// (POST, content-type application/grpc, te: trailers, length-prefixed
// messages, grpc-status and grpc-message in trailers or a trailers-only
// response), so the server stays grpc-js and grpcurl and other clients are
// unaffected. What it saves at low rate is grpc-js's call layers: its
// interceptor and filter stacks, the per-message nextTick hops, pausing and
// resuming the HTTP/2 stream for every message read.
//
// The call object has the part of grpc-js's ClientDuplexStream the link and
// the agent SDK use (write with a callback, end, cancel; 'data', 'drain' after
// a write() that returned false, 'error' with a ServiceError
// whose code, details and metadata are what grpc-js would give, 'end' on an
// OK status, 'status') and the same rules: exactly one of 'error' or 'end',
// emitted on a later tick, never from inside write() or cancel().
//
// Bounded: a message longer than maxMessageBytes ends the call with
// RESOURCE_EXHAUSTED, read (from its header, before its body is buffered) or
// written. Writes go to the HTTP/2 stream, which honours the peer's flow
// control window; a write's callback fires when its bytes have left, so the
// writer (the link's StreamBatcher) counts what is buffered and stops a peer
// that does not read. Reads are handed on synchronously as they arrive.
// Keepalive pings every keepaliveMs (10 s, as the grpc-js link channel)
// with keepaliveTimeoutMs (20 s, grpc-js's default) for the answer.
import { Metadata, status, type ServiceError, type StatusObject } from '@grpc/grpc-js';
import { EventEmitter } from 'node:events';
import {
  connect,
  constants,
  type ClientHttp2Session,
  type ClientHttp2Stream,
  type IncomingHttpHeaders,
  type IncomingHttpStatusHeader,
} from 'node:http2';
import { connect as netConnect, isIP } from 'node:net';
import type { Duplex } from 'node:stream';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { Deframer, FRAME_HEADER_BYTES, FrameError, frameOf } from './grpc-frame.js';
import { keepalive } from './h2-keepalive.js';

export interface H2ChannelOptions {
  /** host:port (IPv6 as [addr]:port), optionally after `dns:` or `dns:///`. */
  readonly address: string;
  readonly maxMessageBytes: number;
  /** TLS options read at each new connection (certificates that rotate); absent: plaintext HTTP/2. */
  readonly tls?: () => ConnectionOptions;
  readonly keepaliveMs?: number;
  readonly keepaliveTimeoutMs?: number;
}

/** The target of `address`: host:port, or undefined when this client cannot dial it (unix sockets, other schemes). */
export function h2Target(address: string): { host: string; port: number; authority: string } | undefined {
  const a = address.replace(/^dns:(\/\/\/)?/, '');
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:/[\]]+):(\d{1,5})$/.exec(a);
  if (!m) return undefined;
  const port = Number(m[2]);
  if (port < 1 || port > 65535) return undefined;
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port, authority: a };
}

/** One HTTP/2 connection to one address, opened at the first call; close() lets it go. */
export class H2Channel {
  /** Calls opened here that have not ended yet (a pool spreads its streams by it). */
  openStreams = 0;
  /**
   * The server's SETTINGS_MAX_CONCURRENT_STREAMS once its SETTINGS came (Infinity before): streams past
   * it wait on this connection, unsent, until others end.
   */
  peerMaxStreams = Number.POSITIVE_INFINITY;
  private session: ClientHttp2Session | undefined;
  private keepalive: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly target: { host: string; port: number; authority: string };

  constructor(private readonly o: H2ChannelOptions) {
    const t = h2Target(o.address);
    if (!t) throw new Error(`cannot dial ${o.address} over HTTP/2 (host:port expected)`);
    this.target = t;
  }

  /** Opens a bidirectional stream on `path` (/package.Service/Method). */
  duplex<Req, Res>(
    path: string,
    encode: (m: Req) => Uint8Array,
    decode: (b: Uint8Array) => Res,
    metadata: Readonly<Record<string, string>> = {},
  ): H2DuplexCall<Req, Res> {
    const call = new H2DuplexCall<Req, Res>(encode, decode, this.o.maxMessageBytes);
    if (this.closed) {
      call.fail(status.UNAVAILABLE, 'Channel has been shut down');
      return call;
    }
    let session: ClientHttp2Session;
    let stream: ClientHttp2Stream;
    try {
      session = this.connected();
      stream = session.request(
        {
          [constants.HTTP2_HEADER_METHOD]: 'POST',
          [constants.HTTP2_HEADER_PATH]: path,
          [constants.HTTP2_HEADER_AUTHORITY]: this.target.authority,
          [constants.HTTP2_HEADER_CONTENT_TYPE]: 'application/grpc',
          [constants.HTTP2_HEADER_TE]: 'trailers',
          [constants.HTTP2_HEADER_USER_AGENT]: 'meshlb-h2',
          'grpc-accept-encoding': 'identity',
          ...metadata,
        },
        { endStream: false },
      );
    } catch (err) {
      call.fail(status.UNAVAILABLE, (err as Error).message);
      return call;
    }
    call.attach(stream, () => this.session !== session || session.destroyed);
    this.openStreams++;
    call.once('status', () => this.openStreams--);
    return call;
  }

  private connected(): ClientHttp2Session {
    const s = this.session;
    if (s && !s.closed && !s.destroyed) return s;
    const { host, port } = this.target;
    const tlsOpts = this.o.tls?.();
    const url = `${tlsOpts ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${port}`;
    // Our own socket, to set TCP_NODELAY (an HTTP/2 session's socket may not be touched once it has it).
    const createConnection = (): Duplex => {
      const sock = tlsOpts
        ? tlsConnect({
            ...tlsOpts,
            host,
            port,
            ALPNProtocols: ['h2'],
            ...(isIP(host) === 0 && !tlsOpts.servername ? { servername: host } : {}),
          })
        : netConnect({ host, port });
      sock.setNoDelay(true);
      return sock;
    };
    const session = connect(url, { settings: { enablePush: false }, createConnection });
    this.session = session;
    // Errors reach the streams (their 'error' and 'close'); the session must not throw them.
    session.on('error', () => undefined);
    session.on('remoteSettings', (settings) => {
      if (this.session === session && settings.maxConcurrentStreams !== undefined)
        this.peerMaxStreams = settings.maxConcurrentStreams;
    });
    session.on('close', () => {
      if (this.session === session) this.session = undefined;
      this.stopKeepalive();
    });
    this.startKeepalive(session);
    return session;
  }

  private startKeepalive(session: ClientHttp2Session): void {
    this.stopKeepalive();
    this.keepalive = keepalive(session, this.o.keepaliveMs ?? 10_000, this.o.keepaliveTimeoutMs ?? 20_000);
  }

  private stopKeepalive(): void {
    clearInterval(this.keepalive);
    this.keepalive = undefined;
  }

  /** No new calls; the connection closes once its streams have (cancel them first to close at once). */
  close(): void {
    this.closed = true;
    this.stopKeepalive();
    this.session?.close();
  }
}

export class H2DuplexCall<Req, Res> extends EventEmitter {
  private stream: ClientHttp2Stream | undefined;
  private readonly deframer: Deframer;
  /** The status once known (trailers, or a local end); output once reads are done. */
  private final: StatusObject | undefined;
  private output = false;
  private httpStatus = 0;
  private readsDone = false;
  /** An error of the connection (refused, reset, keepalive): the call is UNAVAILABLE. */
  private transportError: Error | undefined;
  private lostConnection: () => boolean = () => false;

  constructor(
    private readonly encode: (m: Req) => Uint8Array,
    private readonly decode: (b: Uint8Array) => Res,
    private readonly maxMessageBytes: number,
  ) {
    super();
    this.deframer = new Deframer(maxMessageBytes);
  }

  /** @internal The HTTP/2 stream this call runs on. */
  attach(stream: ClientHttp2Stream, lostConnection: () => boolean): void {
    this.stream = stream;
    this.lostConnection = lostConnection;
    stream.on('response', (headers: IncomingHttpHeaders & IncomingHttpStatusHeader, flags: number) => {
      this.httpStatus = Number(headers[constants.HTTP2_HEADER_STATUS] ?? 0);
      // Trailers-only: the status (a refusal) is in the headers.
      if ((flags & constants.NGHTTP2_FLAG_END_STREAM) !== 0) this.trailers(headers);
      else this.emit('metadata', toMetadata(headers));
    });
    stream.on('trailers', (headers: IncomingHttpHeaders) => this.trailers(headers));
    stream.on('data', (chunk: Buffer) => this.read(chunk));
    // write() returned false: 'drain' says when to write again (the agent's connection waits on it).
    stream.on('drain', () => this.emit('drain'));
    stream.on('end', () => {
      this.readsDone = true;
      this.maybeOutput();
    });
    stream.on('error', (err: Error & { code?: string }) => {
      // RST_STREAM codes are read at 'close'; anything else is the connection's.
      if (err.code !== 'ERR_HTTP2_STREAM_ERROR') this.transportError = err;
    });
    // After any 'error' of the same moment, as grpc-js does, so the cause is known.
    stream.on('close', () => process.nextTick(() => this.closed(stream)));
  }

  write(msg: Req, cb?: (err?: Error | null) => void): boolean {
    const stream = this.stream;
    if (!stream || this.final || stream.destroyed) {
      // After the end, writes go nowhere, as with grpc-js; the callback still fires (the batcher counts on it).
      if (cb) process.nextTick(cb);
      return false;
    }
    let frame: Buffer;
    try {
      frame = frameOf(this.encode, msg);
    } catch (err) {
      this.fail(status.INTERNAL, `Request message serialization failure: ${(err as Error).message}`);
      if (cb) process.nextTick(cb);
      return false;
    }
    if (frame.length - FRAME_HEADER_BYTES > this.maxMessageBytes) {
      this.fail(
        status.RESOURCE_EXHAUSTED,
        `Sent message larger than max (${frame.length - FRAME_HEADER_BYTES} vs. ${this.maxMessageBytes})`,
      );
      if (cb) process.nextTick(cb);
      return false;
    }
    return stream.write(frame, cb);
  }

  /** Half-close: no more writes; reads go on until the server's status. */
  end(): void {
    const s = this.stream;
    if (s && !this.final && !s.destroyed) s.end();
  }

  cancel(): void {
    this.fail(status.CANCELLED, 'Cancelled on client');
  }

  /** @internal End the call here with `code` (no server status will be read). */
  fail(code: status, details: string): void {
    if (this.final) return;
    this.final = { code, details, metadata: new Metadata() };
    this.closeStream();
    this.maybeOutput();
  }

  private read(chunk: Buffer): void {
    if (this.final) return;
    let messages: Uint8Array[];
    try {
      messages = this.deframer.push(chunk);
    } catch (err) {
      const e = err as FrameError;
      // An error page with an HTTP status says more than a framing error (as grpc-js reports it).
      if (this.httpStatus !== 200 && this.httpStatus !== 0) this.fail(...httpStatusToGrpc(this.httpStatus));
      else this.fail(e.code === 'RESOURCE_EXHAUSTED' ? status.RESOURCE_EXHAUSTED : status.INTERNAL, e.message);
      return;
    }
    for (const bytes of messages) {
      if (this.final) return;
      let m: Res;
      try {
        m = this.decode(bytes);
      } catch (err) {
        this.fail(status.INTERNAL, `Response message parsing error: ${(err as Error).message}`);
        return;
      }
      this.emit('data', m);
    }
  }

  private trailers(headers: IncomingHttpHeaders): void {
    if (this.final) return;
    const metadata = toMetadata(headers);
    const raw = headers['grpc-status'];
    let code: status;
    let details = '';
    if (typeof raw === 'string' && /^\d+$/.test(raw)) {
      code = Number(raw) as status;
      const m = headers['grpc-message'];
      if (typeof m === 'string') details = percentDecode(m);
    } else if (this.httpStatus !== 200) [code, details] = httpStatusToGrpc(this.httpStatus);
    else [code, details] = [status.UNKNOWN, 'No status received'];
    metadata.remove('grpc-status');
    metadata.remove('grpc-message');
    this.final = { code, details, metadata };
    this.maybeOutput();
  }

  private closed(stream: ClientHttp2Stream): void {
    this.readsDone = true;
    if (this.final) {
      this.maybeOutput();
      return;
    }
    const rst = stream.rstCode ?? constants.NGHTTP2_NO_ERROR;
    let code: status;
    let details: string;
    if (this.transportError || this.lostConnection()) {
      code = status.UNAVAILABLE;
      details = this.transportError?.message ?? 'Connection dropped';
    } else if (rst === constants.NGHTTP2_NO_ERROR) {
      [code, details] =
        this.httpStatus !== 200 && this.httpStatus !== 0
          ? httpStatusToGrpc(this.httpStatus)
          : [status.INTERNAL, 'Received RST_STREAM with code 0 (Call ended without gRPC status)'];
    } else if (rst === constants.NGHTTP2_REFUSED_STREAM)
      [code, details] = [status.UNAVAILABLE, 'Stream refused by server'];
    else if (rst === constants.NGHTTP2_CANCEL) [code, details] = [status.CANCELLED, 'Call cancelled'];
    else if (rst === constants.NGHTTP2_ENHANCE_YOUR_CALM)
      [code, details] = [status.RESOURCE_EXHAUSTED, 'Bandwidth exhausted or memory limit exceeded'];
    else if (rst === constants.NGHTTP2_INADEQUATE_SECURITY)
      [code, details] = [status.PERMISSION_DENIED, 'Protocol not secure enough'];
    else [code, details] = [status.INTERNAL, `Received RST_STREAM with code ${rst}`];
    this.final = { code, details, metadata: new Metadata() };
    this.maybeOutput();
  }

  /** Emit the status once: an error at once, OK only after every message was read. */
  private maybeOutput(): void {
    const f = this.final;
    if (!f || this.output) return;
    if (f.code === status.OK && !this.readsDone) return;
    this.output = true;
    this.closeStream();
    process.nextTick(() => {
      if (f.code === status.OK) this.emit('end');
      else this.emit('error', serviceError(f));
      this.emit('status', f);
    });
  }

  /** Let go of the HTTP/2 stream once the call has its status (RST unless both sides ended). */
  private closeStream(): void {
    const s = this.stream;
    if (!s || s.destroyed || s.closed) return;
    if (this.final?.code === status.OK) s.close(constants.NGHTTP2_NO_ERROR);
    else s.close(constants.NGHTTP2_CANCEL);
  }
}

/** The error grpc-js gives for a non-OK status: "<code> <NAME>: <details>", with code, details and metadata. */
export function serviceError(s: StatusObject): ServiceError {
  return Object.assign(new Error(`${s.code} ${status[s.code]}: ${s.details}`), s);
}

function toMetadata(headers: IncomingHttpHeaders): Metadata {
  const md = Metadata.fromHttp2Headers(headers);
  for (const k of ['content-type', 'te', 'date', 'grpc-encoding', 'grpc-accept-encoding', 'user-agent']) md.remove(k);
  return md;
}

/** grpc-message is percent-encoded (gRPC over HTTP/2); a bad escape is left as it came. */
function percentDecode(s: string): string {
  if (!s.includes('%')) return s;
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** What grpc-js reports for a response with an HTTP status other than 200 and no gRPC status. */
export function httpStatusToGrpc(http: number): [status, string] {
  const details = `Received HTTP status code ${http}`;
  switch (http) {
    case 400:
      return [status.INTERNAL, details];
    case 401:
      return [status.UNAUTHENTICATED, details];
    case 403:
      return [status.PERMISSION_DENIED, details];
    case 404:
      return [status.UNIMPLEMENTED, details];
    case 429:
    case 502:
    case 503:
    case 504:
      return [status.UNAVAILABLE, details];
    default:
      return [status.UNKNOWN, details];
  }
}
