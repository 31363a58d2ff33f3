// The lean server transport (src/util/grpc-h2-server*.ts) over real sockets
// on 127.0.0.1: a replica server (startReplicaServer) serving a test
// LinkService, once with the lean path and once with grpc-js, driven by a raw
// node:http2 client so every byte and trailer is visible. The same input gets
// the same answer from both: messages split across and merged into DATA
// frames echoed in order, an error status with its metadata in trailers
// (grpc-message URI-encoded), trailers-only refusals, a message over the limit
// read (from its header) or written (RESOURCE_EXHAUSTED), an undecodable one
// (INTERNAL), grpc-timeout honoured (DEADLINE_EXCEEDED) or invalid (INTERNAL),
// a client's reset seen by the handler as 'cancelled' then 'close', a handler
// that pauses reading gets nothing more until it resumes. On the
// lean path: writes to a client that does not read return false after 16
// messages, their callbacks wait for the client's window, 'drain' follows; a
// compressed-flag message on an identity call is refused (INTERNAL); a call
// announcing gzip is left to grpc-js. And the hook itself: it applies on this
// grpc-js (a failing test here means the lean path silently stopped), and
// does nothing, saying why, on a server without the private shape it needs.
import * as grpc from '@grpc/grpc-js';
import { connect, type ClientHttp2Session, type IncomingHttpHeaders } from 'node:http2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startReplicaServer, type ReplicaServer } from '../../src/admin/grpc-server.js';
import { LinkServiceService, OpenRequest, OpenResponse } from '../../src/gen/meshlb/v1/link.js';
import { Deframer, frameMessage } from '../../src/util/grpc-frame.js';
import { installLeanServer } from '../../src/util/grpc-h2-server.js';
import { seededRandom } from '../../src/util/rng.js';
import { serverTransport, TRANSPORTS, type Transport } from '../../src/util/transport.js';
import { waitFor } from '../helpers/wait.js';

const SEED = Number(process.env.MESHLB_TEST_SEED ?? 20261207);
const PATH = LinkServiceService.open.path;
const MAX = 64 * 1024;
const hello = (cell: string, replicaId = 'x'): Buffer =>
  Buffer.from(
    OpenRequest.encode({
      msg: {
        $case: 'hello',
        value: { cell, replicaId, term: 0, holding: [], mesh: 'm', meshId: 'id', parentCell: '/', sendNumbers: false },
      },
    }).finish(),
  );
const welcome = (replicaId: string): OpenResponse =>
  OpenResponse.fromPartial({ msg: { $case: 'welcome', value: { replicaId, parentCell: '/' } } });

/** What each call's handler saw, by the cell its first hello names. */
const seen = new Map<string, string[]>();
const flood = { writesTrue: 0, callbacks: 0, drained: false, lengthAtFalse: -1 };
/** The 'pause' calls (one per transport), paused after their first message. */
const pausedCalls: grpc.ServerDuplexStream<OpenRequest, OpenResponse>[] = [];

/** The test LinkService: the first hello's cell says what to do. */
function open(call: grpc.ServerDuplexStream<OpenRequest, OpenResponse>): void {
  let mode = '';
  const log = (e: string): void => void seen.get(mode)?.push(e);
  call.on('data', (m: OpenRequest) => {
    if (m.msg?.$case !== 'hello') return;
    if (mode === '') {
      mode = m.msg.value.cell;
      seen.set(mode, []);
    }
    log(`data ${m.msg.value.replicaId}`);
    if (mode === 'echo') call.write(welcome(m.msg.value.replicaId));
    if (mode === 'fail') {
      call.write(welcome('before'));
      const md = new grpc.Metadata();
      md.set('meshlb-leader-address', '10.0.0.9:7000');
      call.emit('error', {
        code: grpc.status.FAILED_PRECONDITION,
        details: 'not the leader: ünïcode 100%',
        metadata: md,
      });
    }
    if (mode === 'big') call.write(welcome('y'.repeat(MAX)));
    if (mode === 'pause') {
      call.write(welcome(m.msg.value.replicaId));
      if (!pausedCalls.includes(call)) {
        call.pause();
        pausedCalls.push(call);
      }
    }
    if (mode === 'flood') {
      const big = welcome('z'.repeat(8 * 1024));
      for (let i = 0; i < 64; i++) {
        const ok = call.write(big, () => flood.callbacks++);
        if (ok) flood.writesTrue++;
        else if (flood.lengthAtFalse < 0) flood.lengthAtFalse = call.writableLength;
      }
      call.on('drain', () => (flood.drained = true));
    }
  });
  call.on('end', () => {
    log('end');
    call.end();
  });
  call.on('cancelled', () => log('cancelled'));
  call.on('close', () => log('close'));
}

interface Answer {
  headers: IncomingHttpHeaders;
  trailers: IncomingHttpHeaders;
  messages: OpenResponse[];
}

const sessions: ClientHttp2Session[] = [];
/** One raw gRPC call: `chunks` written as they are (split or merged frames), then the client's end unless `keepOpen`. */
function rawCall(
  address: string,
  chunks: Buffer[],
  o: { headers?: Record<string, string>; keepOpen?: boolean; window?: number } = {},
) {
  const session = connect(`http://${address}`, o.window ? { settings: { initialWindowSize: o.window } } : {});
  sessions.push(session);
  const req = session.request({
    ':method': 'POST',
    ':path': PATH,
    'content-type': 'application/grpc',
    te: 'trailers',
    ...o.headers,
  });
  const answer: Answer = { headers: {}, trailers: {}, messages: [] };
  const deframer = new Deframer(1 << 24);
  req.on('response', (h) => (answer.headers = h));
  req.on('trailers', (t) => (answer.trailers = t));
  req.on('data', (c: Buffer) => {
    for (const m of deframer.push(c)) answer.messages.push(OpenResponse.decode(m));
  });
  for (const c of chunks) req.write(c);
  if (!o.keepOpen) req.end();
  // Over when the server's side is (its trailers came): a client that has not half-closed resets then.
  const done = new Promise<Answer>((resolve) => {
    const over = (): void => {
      if (!req.closed) req.close();
      resolve(answer);
    };
    req.on('end', over);
    req.on('close', over);
  });
  return { req, done };
}
/** grpc-status and grpc-message wherever they came (trailers, or a trailers-only response). */
const statusOf = (a: Answer) => {
  const h = a.trailers['grpc-status'] !== undefined ? a.trailers : a.headers;
  return { code: Number(h['grpc-status']), details: decodeURI(String(h['grpc-message'] ?? '')) };
};

/** Bytes cut into pieces of seeded random sizes (1..17), so frames split and merge anywhere. */
function chop(bytes: Buffer, seed: number): Buffer[] {
  const rnd = seededRandom(seed);
  const out: Buffer[] = [];
  for (let i = 0; i < bytes.length;) {
    const n = 1 + Math.floor(rnd() * 17);
    out.push(bytes.subarray(i, i + n));
    i += n;
  }
  return out;
}

const servers = new Map<Transport, ReplicaServer>();
beforeAll(async () => {
  for (const transport of TRANSPORTS) {
    servers.set(
      transport,
      await startReplicaServer({
        services: [{ definition: LinkServiceService, implementation: { open } }],
        maxMessageBytes: MAX,
        transport,
      }),
    );
  }
});
afterAll(async () => {
  for (const s of sessions) s.destroy();
  for (const s of servers.values()) await s.close(0);
});

describe('the server transport setting', () => {
  it('parses like the client ones; http2 is the default', () => {
    expect(serverTransport(undefined)).toBe('http2');
    expect(serverTransport('')).toBe('http2');
    expect(serverTransport('grpc-js')).toBe('grpc-js');
    expect(() => serverTransport('h3')).toThrow(/server transport must be one of grpc-js, http2, not "h3"/);
  });

  it('the hook applies on this grpc-js: lean calls are counted (a failure means the lean path silently stopped)', async () => {
    const lean = servers.get('http2')!;
    const before = lean.leanCalls();
    const { done } = rawCall(lean.address, [frameMessage(hello('echo', 'hook'))]);
    await done;
    expect(lean.transport).toBe('http2');
    expect(lean.leanCalls()).toBe(before + 1);
    expect(servers.get('grpc-js')!.transport).toBe('grpc-js');
    expect(servers.get('grpc-js')!.leanCalls()).toBe(0);
  });

  it('installs nothing, and says why, where grpc-js has not the private shape it needs', () => {
    const methods = new Map();
    const fake = {} as grpc.Server;
    expect(installLeanServer(fake, { methods, interceptors: [], maxMessageBytes: MAX })).toMatchObject({
      installed: false,
      reason: expect.stringContaining('http2Servers'),
    });
    const unbound = new grpc.Server();
    expect(installLeanServer(unbound, { methods, interceptors: [], maxMessageBytes: MAX })).toMatchObject({
      installed: false,
      reason: 'the server is not bound',
    });
  });
});

for (const transport of TRANSPORTS) {
  describe(`${transport} server, raw HTTP/2 client (seed ${SEED})`, () => {
    const address = () => servers.get(transport)!.address;

    it('echoes messages split across and merged into DATA frames, in order, then OK in trailers', async () => {
      const all = Buffer.concat(Array.from({ length: 20 }, (_, i) => frameMessage(hello('echo', `m${i}`))));
      const a = await rawCall(address(), chop(all, SEED)).done;
      expect(a.headers[':status']).toBe(200);
      expect(a.headers['content-type']).toBe('application/grpc+proto');
      expect(a.messages.map((m) => (m.msg?.$case === 'welcome' ? m.msg.value.replicaId : '?'))).toEqual(
        Array.from({ length: 20 }, (_, i) => `m${i}`),
      );
      expect(statusOf(a)).toEqual({ code: grpc.status.OK, details: 'OK' });
      await waitFor(() => seen.get('echo')?.includes('close') ?? false, { what: 'close seen' });
    });

    it("an 'error' from the handler ends the call with its code, details (URI-encoded) and metadata", async () => {
      const a = await rawCall(address(), [frameMessage(hello('fail'))], { keepOpen: true }).done;
      expect(a.messages).toHaveLength(1);
      expect(statusOf(a)).toEqual({ code: grpc.status.FAILED_PRECONDITION, details: 'not the leader: ünïcode 100%' });
      expect(a.trailers['meshlb-leader-address']).toBe('10.0.0.9:7000');
    });

    it('a message over the limit: refused from its header (read), RESOURCE_EXHAUSTED when written', async () => {
      const header = Buffer.from([0, 0, 0, 0, 0]);
      header.writeUInt32BE(MAX + 1, 1);
      const read = await rawCall(address(), [header], { keepOpen: true }).done;
      expect(statusOf(read)).toEqual({
        code: grpc.status.RESOURCE_EXHAUSTED,
        details: `Received message larger than max (${MAX + 1} vs ${MAX})`,
      });
      const written = await rawCall(address(), [frameMessage(hello('big'))], { keepOpen: true }).done;
      expect(statusOf(written).code).toBe(grpc.status.RESOURCE_EXHAUSTED);
      expect(statusOf(written).details).toMatch(/^Sent message larger than max \(\d+ vs\. 65536\)$/);
    });

    it('an undecodable message is INTERNAL "Error deserializing request"', async () => {
      const a = await rawCall(address(), [frameMessage(Buffer.from([0xff, 0xff, 0xff]))], { keepOpen: true }).done;
      expect(statusOf(a)).toEqual({ code: grpc.status.INTERNAL, details: 'Error deserializing request' });
    });

    it('grpc-timeout: a silent call ends DEADLINE_EXCEEDED; an invalid value INTERNAL', async () => {
      const t0 = Date.now();
      const a = await rawCall(address(), [frameMessage(hello('wait'))], {
        keepOpen: true,
        headers: { 'grpc-timeout': '150m' },
      }).done;
      expect(statusOf(a)).toEqual({ code: grpc.status.DEADLINE_EXCEEDED, details: 'Deadline exceeded' });
      expect(Date.now() - t0).toBeGreaterThanOrEqual(140);
      const b = await rawCall(address(), [], { keepOpen: true, headers: { 'grpc-timeout': 'soon' } }).done;
      expect(statusOf(b)).toEqual({ code: grpc.status.INTERNAL, details: 'Invalid grpc-timeout value "soon"' });
    });

    it('a handler that pauses gets no message until it resumes, then the rest in order', async () => {
      pausedCalls.length = 0;
      seen.delete('pause');
      // Five messages in one write: the four after the first are at the server when the first is answered.
      const all = Buffer.concat(Array.from({ length: 5 }, (_, i) => frameMessage(hello('pause', `p${i}`))));
      const { req, done } = rawCall(address(), [all], { keepOpen: true });
      await new Promise<void>((resolve) => req.once('data', () => resolve())); // p0 answered
      expect(pausedCalls).toHaveLength(1);
      expect(seen.get('pause')).toEqual(['data p0']);
      pausedCalls[0]!.resume();
      await waitFor(() => seen.get('pause')!.length === 5, { what: 'the rest read after resume' });
      expect(seen.get('pause')).toEqual(['data p0', 'data p1', 'data p2', 'data p3', 'data p4']);
      req.end();
      await done;
    });

    it("a client's reset reaches the handler as 'cancelled' then 'close'", async () => {
      const { req, done } = rawCall(address(), [frameMessage(hello('cancel'))], { keepOpen: true });
      await waitFor(() => (seen.get('cancel')?.length ?? 0) > 0, { what: 'the hello read' });
      req.close();
      await done;
      await waitFor(() => seen.get('cancel')!.includes('close'), { what: 'close seen' });
      // Both servers: the reset ends the read side first ('end', as node's stream does), then the call.
      expect(seen.get('cancel')).toEqual(['data x', 'end', 'cancelled', 'close']);
    });
  });
}

describe('lean path only', () => {
  const address = () => servers.get('http2')!.address;

  it('writes to a client that does not read: false after 16, callbacks wait for its window, then drain', async () => {
    const { req, done } = rawCall(address(), [frameMessage(hello('flood'))], { keepOpen: true, window: 16 * 1024 });
    req.pause();
    await waitFor(() => seen.get('flood')?.length === 1, { what: 'the flood written' });
    expect(flood.writesTrue).toBe(15);
    expect(flood.lengthAtFalse).toBe(16);
    // 64 messages of ~8 KiB: with the client's window shut only what fits in it (and socket buffers) has left.
    await waitFor(() => req.readableLength > 0, { what: 'bytes waiting unread at the client' });
    expect(flood.callbacks).toBeLessThan(64);
    expect(flood.drained).toBe(false);
    req.resume();
    await waitFor(() => flood.callbacks === 64 && flood.drained, { what: 'all written and drained' });
    req.end();
    await done;
  });

  it('a compressed-flag message on an identity call is refused INTERNAL; a gzip call is left to grpc-js', async () => {
    const frame = frameMessage(hello('echo', 'c'));
    frame[0] = 1;
    const a = await rawCall(address(), [frame], { keepOpen: true }).done;
    expect(statusOf(a)).toEqual({
      code: grpc.status.INTERNAL,
      details: 'received a message flagged compressed on a call whose grpc-encoding is identity',
    });
    const lean = servers.get('http2')!;
    const before = lean.leanCalls();
    const g = await rawCall(address(), [frameMessage(hello('echo', 'g'))], { headers: { 'grpc-encoding': 'gzip' } })
      .done;
    expect(statusOf(g).code).toBe(grpc.status.OK);
    expect(g.messages).toHaveLength(1);
    expect(lean.leanCalls()).toBe(before);
  });
});
