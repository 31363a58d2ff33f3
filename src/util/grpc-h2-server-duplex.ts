// What a bidi service handler gets on the lean server path: the part of
// grpc-js's ServerDuplexStream the mesh's handlers use, on top of a server
// call (grpc-h2-server-call.ts, possibly wrapped by interceptors), without a
// Node Duplex stream between them.
//
//   events   'data' per message, 'end' when the client half-closes, 'error'
//            (emitted by the handler: ends the call with the error's status,
//            as grpc-js's does), 'cancelled' then 'close' when the call is over
//            (grpc-js emits them after a status it sent too), 'drain'.
//   write    write(msg, cb?) returns false while HIGH_WATER_MARK messages or
//            more wait for their bytes to leave (a Node object-mode stream's
//            default, which grpc-js's is); 'drain' follows when none wait.
//            writableLength counts them. A write after end calls back with an
//            error and sends nothing.
//   end      end(trailers?) sends the status: OK, or the one an 'error' set,
//            after the messages written before it.
//   pause    pause() stops 'data' until resume(): the next message is not
//            asked for, so what arrives waits in the call and HTTP/2 flow
//            control holds the client (SubmitStream's bound, task-stream.ts).
//   also     metadata, cancelled, getPeer, getDeadline, getHost, getPath,
//            getAuthContext, getMetricsRecorder, sendMetadata.
import * as grpc from '@grpc/grpc-js';
import { EventEmitter } from 'node:events';
import type { LeanMethod } from './grpc-h2-server-call.js';

type Call = grpc.ServerInterceptingCallInterface;
type Status = Parameters<Call['sendStatus']>[0];

export const HIGH_WATER_MARK = 16;

/** grpc-js's serverErrorToStatus: a ServiceError-like error's code, details and metadata, else UNKNOWN. */
export function errorToStatus(error: unknown): Status {
  const e = (typeof error === 'object' && error !== null ? error : {}) as Partial<grpc.ServiceError>;
  const s: Status = {
    code: grpc.status.UNKNOWN,
    details: typeof e.message === 'string' ? e.message : 'Unknown Error',
    metadata: e.metadata ?? null,
  };
  if (typeof e.code === 'number' && Number.isInteger(e.code)) {
    s.code = e.code;
    if (typeof e.details === 'string') s.details = e.details;
  }
  return s;
}

export class H2ServerDuplex extends EventEmitter {
  cancelled = false;
  private inFlight = 0;
  private needDrain = false;
  private ended = false;
  private pendingStatus: Status = { code: grpc.status.OK, details: 'OK' };
  private paused = false;
  /** A message was handed on while paused: the next one is asked for on resume. */
  private readWanted = false;

  constructor(
    private readonly path: string,
    private readonly call: Call,
    readonly metadata: grpc.Metadata,
  ) {
    super();
    this.on('error', (err: unknown) => {
      this.pendingStatus = errorToStatus(err);
      this.end();
    });
  }

  write(msg: unknown, cb?: (err?: Error | null) => void): boolean {
    if (this.ended) {
      if (cb) process.nextTick(cb, new Error('write after end'));
      return false;
    }
    this.inFlight++;
    this.call.sendMessage(msg, () => {
      this.inFlight--;
      cb?.();
      if (this.needDrain && this.inFlight === 0) {
        this.needDrain = false;
        this.emit('drain');
      }
    });
    if (this.inFlight < HIGH_WATER_MARK) return true;
    this.needDrain = true;
    return false;
  }

  end(trailers?: grpc.Metadata): this {
    if (this.ended) return this;
    this.ended = true;
    this.call.sendStatus({ ...this.pendingStatus, metadata: this.pendingStatus.metadata ?? trailers ?? null });
    return this;
  }

  pause(): this {
    this.paused = true;
    return this;
  }

  resume(): this {
    this.paused = false;
    if (this.readWanted) {
      this.readWanted = false;
      this.call.startRead();
    }
    return this;
  }

  isPaused(): boolean {
    return this.paused;
  }

  /** After a message was handed on: ask for the next one, unless paused (then resume does). */
  readNext(): void {
    if (this.paused) this.readWanted = true;
    else this.call.startRead();
  }

  get writableLength(): number {
    return this.inFlight;
  }

  get writable(): boolean {
    return !this.ended && !this.cancelled;
  }

  get destroyed(): boolean {
    return this.cancelled;
  }

  sendMetadata(md: grpc.Metadata): void {
    this.call.sendMetadata(md);
  }

  getPeer(): string {
    return this.call.getPeer();
  }

  getDeadline(): grpc.Deadline {
    return this.call.getDeadline();
  }

  getHost(): string {
    return this.call.getHost();
  }

  getPath(): string {
    return this.path;
  }

  getAuthContext(): ReturnType<Call['getAuthContext']> {
    return this.call.getAuthContext();
  }

  getMetricsRecorder(): ReturnType<Call['getMetricsRecorder']> {
    return this.call.getMetricsRecorder();
  }

  /** The call is over: 'cancelled' then 'close', once. */
  onCallOver(): void {
    if (this.cancelled) return;
    this.cancelled = true;
    this.ended = true;
    this.emit('cancelled', 'cancelled');
    this.emit('close');
  }
}

/**
 * Runs `method`'s handler on `call` as grpc-js's handleBidiStreaming does: the
 * handler gets the duplex once the metadata passed the interceptors; each
 * message read is handed to it and the next one asked for at once.
 */
export function serveBidi(call: Call, method: LeanMethod): void {
  let duplex: H2ServerDuplex | undefined;
  call.start({
    onReceiveMetadata(md) {
      duplex = new H2ServerDuplex(method.path, call, md);
      try {
        method.func(duplex as unknown as grpc.ServerDuplexStream<unknown, unknown>);
      } catch {
        call.sendStatus({ code: grpc.status.UNKNOWN, details: 'Unknown error' });
        return;
      }
      call.startRead();
    },
    onReceiveMessage(msg) {
      duplex?.emit('data', msg);
      duplex?.readNext();
    },
    onReceiveHalfClose() {
      duplex?.emit('end');
    },
    onCancel() {
      duplex?.onCallOver();
    },
  });
}
