// Defects the gRPC fuzzer (grpc-fuzz.test.ts) found, each pinned by the
// smallest call that showed it, against a one-voter Raft replica over real
// gRPC (the only kind of replica that serves RaftService).
//
// 1. RaftService/Status echoed the whole group id into its NOT_FOUND message:
//    with a 1 MB id the trailer passed the client's header-list limit, the
//    call never got its status, and the HTTP/2 connection it rode on stalled
//    every later call on it too (a Health/Check on the same channel hung).
// 2. RaftService had no tolerant decoding: a well-formed request holding a
//    uint64 past 2^53 (a term of 2^64-1), which the generated decoder refuses,
//    got grpc-js's INTERNAL "Error deserializing request" on Stream and
//    InstallSnapshot; now INVALID_ARGUMENT, as on every other meshlb service.
// 3. Well-formed Raft messages were stepped whoever they named as sender: a
//    heartbeat "from /r/z#1" (a replica of another cell) at term 621 made the
//    one-voter root follow that phantom leader, and a forged snapshot from it
//    with no voters took the root out of its own group: no leader ever again
//    (seed 606699486). Now the runtime drops messages from ids that are not
//    "<cell>#<n>", from itself or for another replica, and the core refuses a
//    snapshot without voters. (A process that names a real member is the
//    pretender mTLS keeps out: docs/security.md.)
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BinaryWriter, WireType } from '@bufbuild/protobuf/wire';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  RaftMessageType,
  RaftServiceStatusRequest,
  RaftServiceStatusResponse,
  RaftServiceStreamRequest,
  type RaftMessage,
} from '../../src/gen/meshlb/v1/raft.js';
import { Replica } from '../../src/mesh/replica.js';
import { parseTopology } from '../../src/topology/parse.js';
import { LIMITS } from '../../src/util/limits.js';
import { freePort } from '../helpers/process.js';

const identity = (b: Buffer): Buffer => b;
const DEADLINE_MS = 2000;

interface Answer {
  code: grpc.status;
  details: string;
}

describe('RaftService answers hostile input (fuzzer findings)', () => {
  let dir = '';
  let replica: Replica;
  let client: grpc.Client;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'meshlb-fuzz-reg-'));
    const address = `127.0.0.1:${await freePort()}`;
    const topology = parseTopology(`name: reg\ncells:\n  name: /\n  replicas: [{ address: "${address}" }]\n`);
    replica = await new Replica({ topology, cell: '/', dataDir: join(dir, 'root') }).start();
    client = new grpc.Client(replica.address, grpc.credentials.createInsecure(), {
      'grpc.use_local_subchannel_pool': 1,
      'grpc.max_send_message_length': 8 << 20,
    });
  });

  afterAll(async () => {
    client?.close();
    await replica?.close(100);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  function unary(path: string, body: Uint8Array): Promise<Answer> {
    return new Promise((resolve) =>
      client.makeUnaryRequest(
        path,
        identity,
        identity,
        Buffer.from(body),
        new grpc.Metadata(),
        { deadline: Date.now() + DEADLINE_MS },
        (err) => resolve({ code: err?.code ?? grpc.status.OK, details: err?.details ?? '' }),
      ),
    );
  }

  /** A message of one string field (field 1). */
  const stringField = (s: string) => new BinaryWriter().tag(1, WireType.LengthDelimited).string(s).finish();

  /** A RaftMessage whose term (field 4, uint64) is 2^64-1: valid protobuf, past what a JS number holds. */
  const hugeTerm = () => new BinaryWriter().tag(4, WireType.Varint).uint64('18446744073709551615').finish();

  it('Status with a 1 MB group id: NOT_FOUND, short, and the connection still answers the next call', async () => {
    const a = await unary('/meshlb.v1.RaftService/Status', stringField('g'.repeat(1 << 20)));
    expect(grpc.status[a.code]).toBe('NOT_FOUND');
    expect(a.details.length).toBeLessThan(LIMITS.statusMessage);
    const health = await unary('/grpc.health.v1.Health/Check', new Uint8Array(0));
    expect(grpc.status[health.code]).toBe('OK');
  });

  it('Stream and InstallSnapshot with a uint64 of 2^64-1: INVALID_ARGUMENT, not INTERNAL', async () => {
    const streamReq = new BinaryWriter()
      .tag(1, WireType.LengthDelimited)
      .string('/')
      .tag(3, WireType.LengthDelimited)
      .bytes(hugeTerm())
      .finish();
    const stream = await new Promise<Answer>((resolve) => {
      const call = client.makeBidiStreamRequest(
        '/meshlb.v1.RaftService/Stream',
        identity,
        identity,
        new grpc.Metadata(),
        {
          deadline: Date.now() + DEADLINE_MS,
        },
      );
      call.on('data', () => undefined);
      call.on('error', () => undefined);
      call.on('status', (s: grpc.StatusObject) => resolve({ code: s.code, details: s.details }));
      call.write(Buffer.from(streamReq));
    });
    expect(grpc.status[stream.code], stream.details).toBe('INVALID_ARGUMENT');

    // RaftServiceInstallSnapshotRequest.header (1) = RaftSnapshotHeader { message (2) = the RaftMessage }.
    const header = new BinaryWriter().tag(2, WireType.LengthDelimited).bytes(hugeTerm()).finish();
    const snapReq = new BinaryWriter().tag(1, WireType.LengthDelimited).bytes(header).finish();
    const snap = await new Promise<Answer>((resolve) => {
      const call = client.makeClientStreamRequest(
        '/meshlb.v1.RaftService/InstallSnapshot',
        identity,
        identity,
        new grpc.Metadata(),
        { deadline: Date.now() + DEADLINE_MS },
        (err) => resolve({ code: err?.code ?? grpc.status.OK, details: err?.details ?? '' }),
      );
      call.write(Buffer.from(snapReq));
      call.end();
    });
    expect(grpc.status[snap.code], snap.details).toBe('INVALID_ARGUMENT');
  });

  it('messages naming a foreign or forged sender do not move the root: it keeps its term and its lead', async () => {
    const status = async (): Promise<RaftServiceStatusResponse> =>
      new Promise((resolve, reject) =>
        client.makeUnaryRequest(
          '/meshlb.v1.RaftService/Status',
          (r: RaftServiceStatusRequest) => Buffer.from(RaftServiceStatusRequest.encode(r).finish()),
          (b: Buffer) => RaftServiceStatusResponse.decode(b),
          { groupId: '/' },
          new grpc.Metadata(),
          { deadline: Date.now() + DEADLINE_MS },
          (err, res) => (err || !res ? reject(err ?? new Error('no answer')) : resolve(res)),
        ),
      );
    // The one voter elects itself; wait for it (bounded).
    const until = Date.now() + 10_000;
    let before = await status();
    while (before.leaderId !== '/#1' && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 50));
      before = await status();
    }
    expect(before.leaderId).toBe('/#1');

    const msg = (m: Partial<RaftMessage>): RaftMessage => ({
      type: RaftMessageType.RAFT_MESSAGE_TYPE_HEARTBEAT,
      from: '/r/z#1',
      to: '/#1',
      term: 621,
      logTerm: 0,
      index: 0,
      entries: [],
      commit: 0,
      reject: false,
      rejectHint: 0,
      snapshot: undefined,
      ...m,
    });
    const forged = [
      msg({}), // a replica of another cell
      msg({ from: '/#1' }), // ourselves
      msg({ from: 'x/#1' }), // not an id of this group
      msg({ to: '/#9' }), // for someone else
      msg({
        type: RaftMessageType.RAFT_MESSAGE_TYPE_SNAP,
        from: '/#1',
        index: 1000,
        snapshot: { index: 1000, term: 700, conf: { voters: [], learners: [] } },
      }),
    ];
    const sent = await new Promise<Answer>((resolve) => {
      const call = client.makeBidiStreamRequest(
        '/meshlb.v1.RaftService/Stream',
        (r: RaftServiceStreamRequest) => Buffer.from(RaftServiceStreamRequest.encode(r).finish()),
        identity,
        new grpc.Metadata(),
        { deadline: Date.now() + DEADLINE_MS },
      );
      call.on('data', () => undefined);
      call.on('error', () => undefined);
      call.on('status', (s: grpc.StatusObject) => resolve({ code: s.code, details: s.details }));
      call.write({ groupId: '/', from: '/r/z#1', messages: forged, fromAddress: '', clusterId: '' });
      call.end();
    });
    expect(grpc.status[sent.code], sent.details).toBe('OK');
    const after = await status();
    expect({ leader: after.leaderId, term: after.term, role: after.role }).toEqual({
      leader: '/#1',
      term: before.term,
      role: before.role,
    });
  });
});
