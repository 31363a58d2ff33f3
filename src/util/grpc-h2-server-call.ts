// The server side of one gRPC call on an HTTP/2 stream grpc-js's server
// accepted, without grpc-js's per-message layers: the lean server transport
// of the hot bidi streams (grpc-h2-server.ts, docs/performance.md "Lean server
// transport"). It implements grpc-js's ServerInterceptingCallInterface, so
// the server's interceptors (the security guard) wrap it exactly as they wrap
// grpc-js's own call, and it answers on the wire as grpc-js does: the same
// response headers, grpc-status and grpc-message (URI-encoded) in trailers or
// a trailers-only response, the same statuses and details for an oversized
// message (RESOURCE_EXHAUSTED both ways), an undecodable one (INTERNAL), an
// invalid grpc-timeout (INTERNAL) and an expired one (DEADLINE_EXCEEDED).
//
// What it leaves out is grpc-js's read path: pausing and resuming the HTTP/2
// stream around every message, a promise per message for decompression, a
// nextTick per read. Messages are handed on as they arrive, one per
// startRead() (the pull contract interceptors rely on); only when a reader
// falls behind (an interceptor still deciding) is the HTTP/2 stream paused, so
// what is buffered stays bounded by the peer's flow-control window.
//
// Compression: a call whose grpc-encoding is not identity never comes here
// (grpc-h2-server.ts leaves it to grpc-js, which can decompress); a message
// flagged compressed on an identity call is refused with INTERNAL.
import * as grpc from '@grpc/grpc-js';
import { constants, type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import { TLSSocket } from 'node:tls';
import { Deframer, FrameError, FRAME_HEADER_BYTES, frameOf } from './grpc-frame.js';
import { wellFormed } from './limits.js';

type Iface = grpc.ServerInterceptingCallInterface;
type Listener = Parameters<Iface['start']>[0];
type Status = Parameters<Iface['sendStatus']>[0];

/** A bidi method the lean path serves: grpc-js's handler fields, from the service definition. */
export interface LeanMethod {
  readonly path: string;
  readonly func: (call: grpc.ServerDuplexStream<unknown, unknown>) => void;
  readonly serialize: (value: unknown) => Buffer;
  readonly deserialize: (bytes: Buffer) => unknown;
}

const HALF_CLOSE: unique symbol = Symbol('half-close');
const DEADLINE_REGEX = /(\d{1,8})\s*([HMSmun])/;
const UNIT_MS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000001 };
/** Response headers as grpc-js sends them, but for the encodings accepted: identity only here. */
const RESPONSE_HEADERS = {
  [constants.HTTP2_HEADER_STATUS]: constants.HTTP_STATUS_OK,
  [constants.HTTP2_HEADER_CONTENT_TYPE]: 'application/grpc+proto',
};
const ENCODING_HEADERS = { 'grpc-accept-encoding': 'identity', 'grpc-encoding': 'identity' };
/** Request headers not handed to the application (as grpc-js removes them). */
const TRANSPORT_HEADERS = [
  'grpc-timeout',
  'grpc-encoding',
  'grpc-accept-encoding',
  'accept-encoding',
  'te',
  'content-type',
];
const COMPRESSED = 'received a message flagged compressed on a call whose grpc-encoding is identity';
const noop = (): void => {};

/** The metrics recorder grpc-js hands interceptors; metrics are not recorded on the lean path. */
const NO_METRICS = {
  recordRequestCostMetric: noop,
  recordUtilizationMetric: noop,
  recordNamedMetric: noop,
  recordCpuUtilizationMetric: noop,
  recordMemoryUtilizationMetric: noop,
  recordApplicationUtilizationMetric: noop,
  recordQpsMetric: noop,
  recordEpsMetric: noop,
  serialize: () => Buffer.alloc(0),
} as unknown as ReturnType<Iface['getMetricsRecorder']>;

export class H2ServerCall implements Iface {
  readonly metadata: grpc.Metadata;
  private listener: Listener | null = null;
  private readonly deframer: Deframer;
  private readonly queue: (unknown | typeof HALF_CLOSE)[] = [];
  private readPending = false;
  private delivering = false;
  private paused = false;
  private metadataSent = false;
  private statusSent = false;
  private cancelled = false;
  private deadline: grpc.Deadline = Infinity;
  private deadlineTimer: NodeJS.Timeout | undefined;
  private readonly host: string;

  constructor(
    private readonly stream: ServerHttp2Stream,
    headers: IncomingHttpHeaders,
    private readonly method: LeanMethod,
    private readonly maxMessageBytes: number,
  ) {
    this.host = headers[':authority'] ?? headers.host ?? '';
    this.deframer = new Deframer(maxMessageBytes, COMPRESSED);
    const md = grpc.Metadata.fromHttp2Headers(headers);
    const timeout = md.get('grpc-timeout')[0];
    for (const h of TRANSPORT_HEADERS) md.remove(h);
    this.metadata = md;
    stream.on('error', noop); // its 'close' follows; the call ends there
    stream.once('close', () => this.notifyCancel());
    stream.on('data', (chunk: Buffer) => this.onData(chunk));
    stream.on('end', () => {
      this.queue.push(HALF_CLOSE);
      this.deliver();
    });
    if (timeout !== undefined) this.startDeadline(String(timeout));
  }

  start(listener: Listener): void {
    if (this.checkCancelled()) return;
    this.listener = listener;
    listener.onReceiveMetadata(this.metadata);
  }

  startRead(): void {
    if (this.checkCancelled()) return;
    this.readPending = true;
    this.deliver();
  }

  sendMetadata(metadata: grpc.Metadata): void {
    if (this.checkCancelled() || this.metadataSent) return;
    this.metadataSent = true;
    this.stream.respond(
      { ...RESPONSE_HEADERS, ...ENCODING_HEADERS, ...metadata.toHttp2Headers() },
      { waitForTrailers: true },
    );
  }

  sendMessage(message: unknown, callback: () => void): void {
    if (this.checkCancelled()) return;
    let frame: Buffer;
    try {
      frame = frameOf(this.method.serialize, message);
    } catch {
      return this.sendStatus({ code: grpc.status.INTERNAL, details: 'Error serializing response' });
    }
    if (frame.length - FRAME_HEADER_BYTES > this.maxMessageBytes) {
      return this.sendStatus({
        code: grpc.status.RESOURCE_EXHAUSTED,
        details: `Sent message larger than max (${frame.length} vs. ${this.maxMessageBytes})`,
      });
    }
    if (!this.metadataSent) this.sendMetadata(new grpc.Metadata());
    // A write that fails destroys the stream: the call ends there ('close'), so no status is due here.
    this.stream.write(frame, callback);
  }

  sendStatus(status: Status): void {
    if (this.checkCancelled() || this.statusSent) return;
    this.statusSent = true;
    const trailers = {
      'grpc-status': status.code,
      'grpc-message': encodeURI(wellFormed(status.details ?? '')),
      ...(status.metadata ? status.metadata.toHttp2Headers() : {}),
    };
    if (this.metadataSent) {
      this.stream.once('wantTrailers', () => {
        this.stream.sendTrailers(trailers);
        this.notifyCancel();
      });
      this.stream.end();
    } else {
      // Trailers-only response.
      this.stream.respond({ ...trailers, ...RESPONSE_HEADERS }, { endStream: true });
      this.notifyCancel();
    }
  }

  getPeer(): string {
    const s = this.stream.session?.socket;
    if (!s?.remoteAddress) return 'unknown';
    return s.remotePort ? `${s.remoteAddress}:${s.remotePort}` : s.remoteAddress;
  }

  getDeadline(): grpc.Deadline {
    return this.deadline;
  }

  getHost(): string {
    return this.host;
  }

  /** As grpc-js's: the peer's certificate when the TLS connection authorized it. */
  getAuthContext(): ReturnType<Iface['getAuthContext']> {
    const socket = this.stream.session?.socket;
    if (!(socket instanceof TLSSocket) || !socket.authorized) return {};
    const cert = socket.getPeerCertificate();
    return { transportSecurityType: 'ssl', sslPeerCertificate: cert.raw ? cert : undefined };
  }

  getConnectionInfo(): ReturnType<Iface['getConnectionInfo']> {
    const s = this.stream.session?.socket;
    return {
      localAddress: s?.localAddress,
      localPort: s?.localPort,
      remoteAddress: s?.remoteAddress,
      remotePort: s?.remotePort,
    } as ReturnType<Iface['getConnectionInfo']>;
  }

  getMetricsRecorder(): ReturnType<Iface['getMetricsRecorder']> {
    return NO_METRICS;
  }

  private onData(chunk: Buffer): void {
    if (this.checkCancelled()) return;
    let messages: Buffer[];
    try {
      messages = this.deframer.push(chunk);
    } catch (err) {
      if (!(err instanceof FrameError)) throw err;
      // grpc-js's server words the oversize refusal "(N vs M)", its client "(N vs. M)".
      const details = err.sizes
        ? `Received message larger than max (${err.sizes.length} vs ${err.sizes.max})`
        : err.message;
      return this.sendStatus({ code: grpc.status[err.code], details });
    }
    for (const bytes of messages) {
      let msg: unknown;
      try {
        msg = this.method.deserialize(bytes);
      } catch {
        return this.sendStatus({ code: grpc.status.INTERNAL, details: 'Error deserializing request' });
      }
      this.queue.push(msg);
    }
    this.deliver();
  }

  /** Hands queued messages on, one per startRead; pauses the HTTP/2 stream while a reader is behind. */
  private deliver(): void {
    if (this.delivering) return;
    this.delivering = true;
    try {
      while (this.readPending && this.listener && this.queue.length > 0 && !this.cancelled) {
        this.readPending = false;
        const next = this.queue.shift();
        if (next === HALF_CLOSE) this.listener.onReceiveHalfClose();
        else this.listener.onReceiveMessage(next);
      }
    } finally {
      this.delivering = false;
    }
    const behind = this.queue.length > 0 && !this.cancelled;
    if (behind !== this.paused) {
      this.paused = behind;
      if (behind) this.stream.pause();
      else this.stream.resume();
    }
  }

  private startDeadline(value: string): void {
    const m = DEADLINE_REGEX.exec(value);
    if (!m) {
      const status = { code: grpc.status.INTERNAL, details: `Invalid grpc-timeout value "${value}"` };
      process.nextTick(() => this.sendStatus(status));
      return;
    }
    const ms = (Number(m[1]) * UNIT_MS[m[2]!]!) | 0;
    this.deadline = Date.now() + ms;
    this.deadlineTimer = setTimeout(
      () => this.sendStatus({ code: grpc.status.DEADLINE_EXCEEDED, details: 'Deadline exceeded' }),
      ms,
    );
  }

  private checkCancelled(): boolean {
    if (!this.cancelled && (this.stream.destroyed || this.stream.closed)) this.notifyCancel();
    return this.cancelled;
  }

  /** Once, when the call is over (status sent or stream gone): the listener's onCancel, as grpc-js does. */
  private notifyCancel(): void {
    if (this.cancelled) return;
    this.cancelled = true;
    clearTimeout(this.deadlineTimer);
    this.queue.length = 0;
    if (this.paused) this.stream.resume(); // what still arrives is read and dropped
    this.paused = false;
    process.nextTick(() => this.listener?.onCancel());
  }
}
