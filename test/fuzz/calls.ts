// Calls with raw bytes: a generic grpc-js client with identity serializers
// (what the fuzzer sends is exactly what goes on the wire, inside gRPC's
// framing), and for the framing itself a bare HTTP/2 request (a length prefix
// of 4 GiB, a compressed flag with no encoding, a frame cut short).
//
// Every call has a deadline; a watchdog waits deadline + margin for its status
// and records `code: null` if none came (the call was left unanswered).
import { connect, constants as h2, type ClientHttp2Session } from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import type { FuzzMethod } from './reflect.js';
import type { Input } from './inputs.js';

/** What a stream call does besides sending its messages. */
export type Scenario =
  /** Send everything, half-close, read every answer. */
  | 'send'
  /** Half-close at once, nothing sent (streams from the client only). */
  | 'half-close-at-once'
  /** Send everything, half-close, never read an answer. */
  | 'stop-reading'
  /** Send everything, then cancel before the answer. */
  | 'cancel'
  /** Raw HTTP/2: a frame whose length prefix is far past what follows. */
  | 'raw-huge-prefix'
  /** Raw HTTP/2: the compressed flag set, no grpc-encoding. */
  | 'raw-compressed-flag'
  /** Raw HTTP/2: the length prefix promises more than is sent before END_STREAM. */
  | 'raw-short-frame'
  /** Raw HTTP/2: a well-formed message split over several DATA frames. */
  | 'raw-split';

export interface FuzzCase {
  readonly target: string;
  readonly address: string;
  readonly method: FuzzMethod;
  readonly scenario: Scenario;
  readonly messages: readonly Input[];
}

export interface Outcome {
  /** The status code, or null when none came within deadline + margin. */
  readonly code: grpc.status | null;
  readonly details: string;
  readonly ms: number;
}

const identity = (b: Buffer): Buffer => b;

export interface CallTimes {
  readonly deadlineMs: number;
  readonly marginMs: number;
}

/** Run one case over `client` (grpc-js) or a raw HTTP/2 session. */
export function runCase(client: grpc.Client, c: FuzzCase, t: CallTimes): Promise<Outcome> {
  if (c.scenario.startsWith('raw-')) return rawCall(c, t);
  const started = Date.now();
  const deadline = started + t.deadlineMs;
  const md = new grpc.Metadata();
  const opts: grpc.CallOptions = { deadline };
  const bufs = c.messages.map((m) => Buffer.from(m.bytes));
  return new Promise<Outcome>((resolve) => {
    let call: grpc.Call | undefined;
    let done = false;
    const finish = (code: grpc.status | null, details: string) => {
      if (done) return;
      done = true;
      clearTimeout(watchdog);
      resolve({ code, details: details.slice(0, 300), ms: Date.now() - started });
    };
    const watchdog = setTimeout(() => {
      finish(null, 'no status within deadline + margin');
      call?.cancel();
    }, t.deadlineMs + t.marginMs);
    const onStatus = (s: grpc.StatusObject) => finish(s.code, s.details);
    const path = c.method.path;
    switch (c.method.shape) {
      case 'unary':
        call = client.makeUnaryRequest(path, identity, identity, bufs[0] ?? Buffer.alloc(0), md, opts, (err) =>
          finish(err ? err.code : grpc.status.OK, err?.details ?? ''),
        );
        break;
      case 'server-streaming': {
        const s = client.makeServerStreamRequest(path, identity, identity, bufs[0] ?? Buffer.alloc(0), md, opts);
        call = s;
        s.on('error', () => undefined);
        s.on('status', onStatus);
        if (c.scenario !== 'stop-reading') s.on('data', () => undefined);
        if (c.scenario === 'cancel') setImmediate(() => s.cancel());
        break;
      }
      case 'client-streaming': {
        const s = client.makeClientStreamRequest(path, identity, identity, md, opts, (err) =>
          finish(err ? err.code : grpc.status.OK, err?.details ?? ''),
        );
        call = s;
        sendAll(s, c.scenario === 'half-close-at-once' ? [] : bufs, c.scenario !== 'cancel');
        if (c.scenario === 'cancel') setImmediate(() => s.cancel());
        break;
      }
      case 'bidi': {
        const s = client.makeBidiStreamRequest(path, identity, identity, md, opts);
        call = s;
        s.on('error', () => undefined);
        s.on('status', onStatus);
        if (c.scenario !== 'stop-reading') s.on('data', () => undefined);
        sendAll(s, c.scenario === 'half-close-at-once' ? [] : bufs, c.scenario !== 'cancel');
        if (c.scenario === 'cancel') setImmediate(() => s.cancel());
        break;
      }
    }
  });
}

function sendAll(s: grpc.ClientWritableStream<Buffer>, bufs: readonly Buffer[], end: boolean): void {
  for (const b of bufs) s.write(b);
  if (end) s.end();
}

/** A 5-byte gRPC message prefix: compressed flag and big-endian length. */
function prefix(compressed: boolean, length: number): Buffer {
  const p = Buffer.alloc(5);
  p.writeUInt8(compressed ? 1 : 0, 0);
  p.writeUInt32BE(length >>> 0, 1);
  return p;
}

const sessions = new Map<string, ClientHttp2Session>();

function session(address: string): ClientHttp2Session {
  let s = sessions.get(address);
  if (!s || s.closed || s.destroyed) {
    s = connect(`http://${address}`);
    s.on('error', () => undefined);
    s.unref();
    sessions.set(address, s);
  }
  return s;
}

/** Close the raw HTTP/2 sessions the fuzzer opened. */
export function closeRawSessions(): void {
  for (const s of sessions.values()) s.destroy();
  sessions.clear();
}

/**
 * One gRPC call by hand over HTTP/2, so the framing itself can be wrong. The
 * server's deadline (grpc-timeout) bounds it; its grpc-status comes in the
 * trailers, or in the headers of a trailers-only answer.
 */
function rawCall(c: FuzzCase, t: CallTimes): Promise<Outcome> {
  const started = Date.now();
  const body = Buffer.from(c.messages[0]?.bytes ?? new Uint8Array(0));
  return new Promise<Outcome>((resolve) => {
    let done = false;
    const finish = (code: grpc.status | null, details: string) => {
      if (done) return;
      done = true;
      clearTimeout(watchdog);
      req.close(h2.NGHTTP2_CANCEL);
      resolve({ code, details: details.slice(0, 300), ms: Date.now() - started });
    };
    const watchdog = setTimeout(
      () => finish(null, 'no grpc-status within deadline + margin'),
      t.deadlineMs + t.marginMs,
    );
    const req = session(c.address).request({
      [h2.HTTP2_HEADER_METHOD]: 'POST',
      [h2.HTTP2_HEADER_PATH]: c.method.path,
      [h2.HTTP2_HEADER_CONTENT_TYPE]: 'application/grpc',
      te: 'trailers',
      'grpc-timeout': `${t.deadlineMs}m`,
    });
    const fromHeaders = (h: Record<string, unknown>) => {
      const s = h['grpc-status'];
      if (s !== undefined) finish(Number(s) as grpc.status, decodeURIComponent(String(h['grpc-message'] ?? '')));
    };
    req.on('response', fromHeaders);
    req.on('trailers', fromHeaders);
    req.on('data', () => undefined);
    req.on('error', (err: Error) => finish(grpc.status.UNAVAILABLE, `http2: ${err.message}`));
    req.on('close', () => finish(grpc.status.UNAVAILABLE, 'http2 stream closed without grpc-status'));
    switch (c.scenario) {
      case 'raw-huge-prefix':
        req.end(Buffer.concat([prefix(false, 0xffffffff), body.subarray(0, 16)]));
        break;
      case 'raw-compressed-flag':
        req.end(Buffer.concat([prefix(true, body.length), body]));
        break;
      case 'raw-short-frame':
        req.end(Buffer.concat([prefix(false, body.length + 100), body]));
        break;
      default: {
        // Split a well-formed message: the prefix alone, then the body in pieces.
        req.write(prefix(false, body.length));
        const cut = Math.max(1, Math.floor(body.length / 3));
        for (let i = 0; i < body.length; i += cut) req.write(body.subarray(i, i + cut));
        req.end();
      }
    }
  });
}
