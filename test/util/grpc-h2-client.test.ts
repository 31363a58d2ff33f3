// The lean gRPC client on node:http2 (src/util/grpc-h2-client.ts) over real
// sockets on 127.0.0.1. Against a grpc-js server serving LinkService: messages
// both ways, an OK end, and refusals (trailers-only and after messages) seen
// as the same ServiceError grpc-js's own client reports (code, details,
// metadata, message). Against a raw HTTP/2 server: messages split across and
// merged into DATA frames, an oversize message (RESOURCE_EXHAUSTED, read or
// written), an HTTP error without gRPC status, a server that does not read
// (write callbacks wait for its window: nothing is buffered without bound,
// and the link's batcher sees it and trips its maxBufferedBytes),
// an unreachable address (UNAVAILABLE), a silent peer (keepalive:
// UNAVAILABLE) and cancel (CANCELLED).
import * as grpc from '@grpc/grpc-js';
import { createServer, type Http2Server, type Http2Session, type ServerHttp2Stream } from 'node:http2';
import { createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  LinkServiceClient,
  LinkServiceService,
  OpenRequest,
  OpenResponse,
  type LinkServiceServer,
} from '../../src/gen/meshlb/v1/link.js';
import { StreamBatcher } from '../../src/mesh/batcher.js';
import { DEFAULT_LINK_TRANSPORT, linkDialer, linkTransport } from '../../src/mesh/link-dialer.js';
import { realScheduler } from '../../src/mesh/scheduler.js';
import { frameMessage } from '../../src/util/grpc-frame.js';
import { H2Channel, H2DuplexCall, h2Target } from '../../src/util/grpc-h2-client.js';
import { freePort } from '../helpers/process.js';
import { waitFor } from '../helpers/wait.js';

const PATH = LinkServiceService.open.path;
const enc = (m: OpenRequest): Uint8Array => OpenRequest.encode(m).finish();
const dec = (b: Uint8Array): OpenResponse => OpenResponse.decode(b);
const hello = (cell: string): OpenRequest => ({
  msg: {
    $case: 'hello',
    value: {
      cell,
      replicaId: 'x#1',
      term: 0,
      holding: [],
      mesh: 'm',
      meshId: 'id',
      parentCell: '/',
      sendNumbers: false,
    },
  },
});
const welcome = (replicaId: string): OpenResponse =>
  OpenResponse.fromPartial({
    msg: { $case: 'welcome', value: { replicaId, parentCell: '/', mesh: 'm', meshId: 'id' } },
  });

interface Outcome {
  readonly data: OpenResponse[];
  readonly error?: grpc.ServiceError;
  readonly ended: boolean;
}

/** Collect what a call emits until its 'error' or 'end'. */
function outcome(call: {
  on(e: 'data', l: (m: OpenResponse) => void): unknown;
  on(e: 'error', l: (err: grpc.ServiceError) => void): unknown;
  on(e: 'end', l: () => void): unknown;
}): Promise<Outcome> {
  const data: OpenResponse[] = [];
  return new Promise((resolve) => {
    call.on('data', (m) => data.push(m));
    call.on('error', (error) => resolve({ data, error, ended: false }));
    call.on('end', () => resolve({ data, ended: true }));
  });
}

const channels: H2Channel[] = [];
function lean(address: string, max = 4 << 20): H2DuplexCall<OpenRequest, OpenResponse> {
  const ch = new H2Channel({ address, maxMessageBytes: max });
  channels.push(ch);
  return ch.duplex(PATH, enc, dec);
}

describe('the lean client against a grpc-js server', () => {
  let server: grpc.Server;
  let address = '';
  beforeAll(async () => {
    server = new grpc.Server();
    const impl: LinkServiceServer = {
      open: (call) => {
        call.on('data', (m: OpenRequest) => {
          if (m.msg?.$case !== 'hello') return;
          const cell = m.msg.value.cell;
          if (cell === '/refuse') {
            const md = new grpc.Metadata();
            md.set('meshlb-leader-address', '127.0.0.1:9');
            call.emit('error', {
              code: grpc.status.FAILED_PRECONDITION,
              details: 'not the leader; try 100%',
              metadata: md,
            });
          } else if (cell === '/late-refuse') {
            call.write(welcome('a'));
            call.emit('error', { code: grpc.status.RESOURCE_EXHAUSTED, details: 'too much' });
          } else if (cell === '/echo3') {
            for (let i = 0; i < 3; i++) call.write(welcome(`r${i}`));
            call.end();
          }
        });
      },
    };
    server.addService(LinkServiceService, impl);
    const port = await new Promise<number>((res, rej) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))),
    );
    address = `127.0.0.1:${port}`;
  });
  afterAll(() => {
    for (const c of channels) c.close();
    server.forceShutdown();
  });

  it('writes and reads messages and ends on the OK status', async () => {
    const call = lean(address);
    const done = outcome(call);
    call.write(hello('/echo3'));
    const o = await done;
    expect(o.error).toBeUndefined();
    expect(o.ended).toBe(true);
    expect(o.data.map((m) => (m.msg?.$case === 'welcome' ? m.msg.value.replicaId : '?'))).toEqual(['r0', 'r1', 'r2']);
  });

  it('a refusal is the ServiceError grpc-js reports: code, details, metadata, message', async () => {
    for (const cell of ['/refuse', '/late-refuse']) {
      const call = lean(address);
      const mine = outcome(call);
      call.write(hello(cell));
      const client = new LinkServiceClient(address, grpc.credentials.createInsecure());
      const ref = client.open();
      const theirs = outcome(ref);
      ref.write(hello(cell));
      const [a, b] = await Promise.all([mine, theirs]);
      client.close();
      expect(a.error, cell).toBeDefined();
      expect(a.error!.code, cell).toBe(b.error!.code);
      expect(a.error!.details, cell).toBe(b.error!.details);
      expect(a.error!.message, cell).toBe(b.error!.message);
      expect(a.error!.metadata.get('meshlb-leader-address'), cell).toEqual(
        b.error!.metadata.get('meshlb-leader-address'),
      );
      expect(a.data.length, cell).toBe(b.data.length);
    }
  });

  it('the link dialer for http2 is the lean client; for grpc-js, grpc-js', () => {
    const h2 = linkDialer('http2', '/')(address, 1 << 20);
    const gj = linkDialer('grpc-js', '/')(address, 1 << 20);
    expect(h2.call).toBeInstanceOf(H2DuplexCall);
    expect(gj.call).not.toBeInstanceOf(H2DuplexCall);
    // An address that is not host:port (a unix socket) goes through grpc-js.
    const unix = linkDialer('http2', '/')('unix:/tmp/meshlb-no-such.sock', 1 << 20);
    expect(unix.transport).toBe('grpc-js');
    for (const d of [h2, gj, unix]) {
      d.call.on('error', () => undefined);
      d.call.cancel();
      d.close();
    }
    expect(linkTransport(undefined)).toBe(DEFAULT_LINK_TRANSPORT);
    expect(linkTransport('')).toBe(DEFAULT_LINK_TRANSPORT);
    expect(linkTransport('grpc-js')).toBe('grpc-js');
    expect(() => linkTransport('tcp')).toThrow('link transport must be one of grpc-js, http2, not "tcp"');
  });
});

describe('the lean client against a raw HTTP/2 server', () => {
  let server: Http2Server;
  let address = '';
  const handlers = new Map<string, (s: ServerHttp2Stream) => void>();
  const streams: ServerHttp2Stream[] = [];
  beforeAll(async () => {
    server = createServer();
    server.on('stream', (s, headers) => {
      streams.push(s);
      s.on('error', () => undefined);
      handlers.get(String(headers['x-case']))?.(s);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    for (const c of channels) c.close();
    for (const s of streams) s.destroy();
    await new Promise((r) => server.close(r));
  });
  const ok = { ':status': 200, 'content-type': 'application/grpc' };
  const call = (c: string, max?: number): H2DuplexCall<OpenRequest, OpenResponse> => {
    const ch = new H2Channel({ address, maxMessageBytes: max ?? 1 << 20 });
    channels.push(ch);
    return ch.duplex(PATH, enc, dec, { 'x-case': c });
  };

  it('reads messages split across DATA frames and merged into one; non-OK trailers with a percent-encoded message', async () => {
    handlers.set('split', (s) => {
      s.respond(ok, { waitForTrailers: true });
      const one = frameMessage(OpenResponse.encode(welcome('split')).finish());
      // Byte by byte: every header and body split across frames.
      for (const b of one) s.write(Buffer.of(b));
      s.write(Buffer.concat([0, 1, 2].map((i) => frameMessage(OpenResponse.encode(welcome(`m${i}`)).finish()))));
      s.on('wantTrailers', () =>
        s.sendTrailers({ 'grpc-status': '9', 'grpc-message': 'not%20the%20leader', 'x-hint': 'h' }),
      );
      s.end();
    });
    const o = await outcome(call('split'));
    expect(o.data.map((m) => (m.msg?.$case === 'welcome' ? m.msg.value.replicaId : '?'))).toEqual([
      'split',
      'm0',
      'm1',
      'm2',
    ]);
    expect(o.error!.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(o.error!.details).toBe('not the leader');
    expect(o.error!.message).toBe('9 FAILED_PRECONDITION: not the leader');
    expect(o.error!.metadata.get('x-hint')).toEqual(['h']);
  });

  it('a message over the maximum ends the call RESOURCE_EXHAUSTED, read or written', async () => {
    handlers.set('big', (s) => {
      s.respond(ok);
      s.write(frameMessage(Buffer.alloc(2000)));
    });
    const r = await outcome(call('big', 1000));
    expect(r.error!.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(r.error!.details).toBe('Received message larger than max (2000 vs. 1000)');
    expect(r.data).toEqual([]);
    handlers.set('quiet', (s) => s.respond(ok));
    const w = call('quiet', 100);
    const wo = outcome(w);
    let cb = false;
    const big = hello('/' + 'x'.repeat(200));
    w.write(big, () => (cb = true));
    const e = (await wo).error!;
    expect(e.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(e.details).toMatch(/^Sent message larger than max \(\d+ vs\. 100\)$/);
    expect(cb).toBe(true);
  });

  it('an HTTP error without a gRPC status maps as grpc-js maps it (503: UNAVAILABLE)', async () => {
    handlers.set('503', (s) => {
      s.respond({ ':status': 503 });
      s.end('busy');
    });
    const e = (await outcome(call('503'))).error!;
    expect(e.code).toBe(grpc.status.UNAVAILABLE);
  });

  it('respects flow control: write callbacks wait while the server does not read, then all fire', async () => {
    let server: ServerHttp2Stream | undefined;
    handlers.set('noread', (s) => {
      s.respond(ok);
      s.pause();
      server = s;
    });
    const c = call('noread', 1 << 20);
    c.on('error', () => undefined);
    const size = 256 << 10;
    // 4 MiB written: under the session memory Node allows (10 MB), past which it ends the stream ENHANCE_YOUR_CALM.
    const n = 16;
    let fired = 0;
    const big = OpenRequest.fromPartial({ msg: { $case: 'summary', value: { cell: 'x'.repeat(size) } } });
    for (let i = 0; i < n; i++) c.write(big, () => fired++);
    await waitFor(() => server, { what: 'the server stream' });
    // The windows (64 KiB each) fill; what is past them waits in the stream, its callbacks unfired
    // (after a ping round trip everything the client could send has arrived).
    await new Promise<void>((r) => server!.session!.ping(() => r()));
    expect(fired).toBeLessThan(4);
    server!.resume();
    await waitFor(() => fired === n, { what: `all ${n} write callbacks (fired ${fired})`, timeoutMs: 30_000 });
    c.cancel();
  });

  it("with the link's batcher, a server that does not read trips maxBufferedBytes once", async () => {
    let server: ServerHttp2Stream | undefined;
    handlers.set('noread2', (s) => {
      s.respond(ok);
      s.pause();
      server = s;
    });
    const c = call('noread2', 1 << 20);
    c.on('error', () => undefined);
    let overflow = 0;
    const b = new StreamBatcher<OpenRequest>(
      c,
      [
        {
          wrap: (cells: string[]) =>
            OpenRequest.fromPartial({ msg: { $case: 'summary', value: { cell: cells.join('') } } }),
          sizeOf: (x: string) => x.length,
        },
      ],
      { maxBatchItems: 1, maxBatchBytes: 1 << 20, maxBufferedBytes: 1 << 20 },
      realScheduler,
      () => overflow++,
    );
    await waitFor(
      () => {
        // 64 KiB items until the batcher sees more than 1 MiB unacknowledged by the stream.
        if (overflow === 0) for (let i = 0; i < 4; i++) b.push(0, 'y'.repeat(64 << 10));
        return overflow > 0;
      },
      { what: 'the batcher to overflow', timeoutMs: 10_000 },
    );
    expect(server).toBeDefined();
    expect(overflow).toBe(1);
    expect(b.bufferedBytes).toBeGreaterThan(1 << 20);
    // Bounded: what went out is what the windows took, the rest waits counted in the batcher.
    expect(b.bufferedBytes).toBeLessThan(4 << 20);
    b.close();
    c.cancel();
  });

  it('an address with nothing listening ends UNAVAILABLE; cancel ends CANCELLED', async () => {
    const port = await freePort();
    const e = (await outcome(lean(`127.0.0.1:${port}`))).error!;
    expect(e.code).toBe(grpc.status.UNAVAILABLE);
    handlers.set('hold', (s) => s.respond(ok));
    const c = call('hold');
    const o = outcome(c);
    c.write(hello('/a'));
    await waitFor(() => streams.length > 0);
    c.cancel();
    expect((await o).error!.code).toBe(grpc.status.CANCELLED);
  });

  it('a peer that never answers a keepalive ping ends the call UNAVAILABLE', async () => {
    // A TCP server that takes the bytes and says nothing (a peer gone silent behind a live socket).
    const sink = createNetServer((sock) => {
      sock.on('data', () => undefined);
      sock.on('error', () => undefined);
      sinks.push(sock);
    });
    const sinks: Socket[] = [];
    await new Promise<void>((r) => sink.listen(0, '127.0.0.1', r));
    const ch = new H2Channel({
      address: `127.0.0.1:${(sink.address() as AddressInfo).port}`,
      maxMessageBytes: 1 << 20,
      keepaliveMs: 50,
      keepaliveTimeoutMs: 100,
    });
    channels.push(ch);
    const c = ch.duplex(PATH, enc, dec);
    c.write(hello('/a'));
    const e = (await outcome(c)).error!;
    expect(e.code).toBe(grpc.status.UNAVAILABLE);
    expect(e.details).toBe('keepalive ping not answered');
    for (const s of sinks) s.destroy();
    await new Promise((r) => sink.close(r));
  });

  it('a ping that errors (cancelled) does not end the connection: only an unanswered one does', async () => {
    handlers.set('hold', (s) => s.respond(ok));
    const ch = new H2Channel({ address, maxMessageBytes: 1 << 20, keepaliveMs: 20, keepaliveTimeoutMs: 10_000 });
    channels.push(ch);
    const c = ch.duplex(PATH, enc, dec);
    let ended = false;
    c.on('status', () => (ended = true));
    c.on('error', () => undefined);
    c.write(hello('/a'));
    await waitFor(() => streams.length > 0, { what: 'the stream at the server' });
    // Every keepalive ping from now on comes back with the error Node gives a cancelled ping.
    const session = (ch as unknown as { session: Http2Session }).session;
    let pings = 0;
    session.ping = ((cb: (err: Error | null, duration: number, payload: Buffer) => void) => {
      pings++;
      process.nextTick(() =>
        cb(Object.assign(new Error('HTTP2 ping cancelled'), { code: 'ERR_HTTP2_PING_CANCEL' }), 0, Buffer.alloc(8)),
      );
      return true;
    }) as Http2Session['ping'];
    await waitFor(() => pings >= 5, { what: 'five keepalive rounds' });
    expect(session.destroyed).toBe(false);
    expect(ended).toBe(false);
    c.cancel();
  });

  it('parses the addresses it can dial, and only those', () => {
    expect(h2Target('127.0.0.1:80')).toEqual({ host: '127.0.0.1', port: 80, authority: '127.0.0.1:80' });
    expect(h2Target('dns:///node-a.example:7000')?.host).toBe('node-a.example');
    expect(h2Target('[::1]:7000')?.host).toBe('::1');
    expect(h2Target('unix:/tmp/sock')).toBeUndefined();
    expect(h2Target('host')).toBeUndefined();
    expect(h2Target('host:0')).toBeUndefined();
  });
});
