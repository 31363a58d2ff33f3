// GrpcTransport's cluster id over 127.0.0.1: a sender whose clusterId differs
// from the one the receiving replica was registered with is refused
// (FAILED_PRECONDITION naming both, logged at both ends) and nothing it sends
// is delivered — neither appends with entries nor a snapshot — while a sender
// of the same cluster on the same server is delivered to.
import * as grpc from '@grpc/grpc-js';
import { afterAll, describe, expect, it } from 'vitest';
import {
  EntryType,
  GrpcTransport,
  registerRaftService,
  type Message,
  type RaftEndpoint,
  type RaftLogger,
} from '../../../src/raft/index.js';
import { waitFor } from '../../helpers/wait.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

function endpoint(id: string): RaftEndpoint & { got: Message[]; unreachable: string[]; snapshots: boolean[] } {
  const got: Message[] = [];
  const unreachable: string[] = [];
  const snapshots: boolean[] = [];
  return {
    groupId: '/eu',
    id,
    got,
    unreachable,
    snapshots,
    deliver: (m) => void got.push(...m),
    reportUnreachable: (p) => void unreachable.push(p),
    reportSnapshot: (_p, ok) => void snapshots.push(ok),
    status: () => ({
      id,
      role: 'follower',
      term: 0,
      leader: '',
      leaderAddress: '',
      commit: 0,
      applied: 0,
      lastIndex: 0,
      firstIndex: 1,
    }),
  };
}

/** Warn lines as "msg: err". */
function warnings(): RaftLogger & { lines: string[] } {
  const lines: string[] = [];
  const ignore = (): void => undefined;
  return {
    lines,
    debug: ignore,
    info: ignore,
    error: ignore,
    warn: (o, msg) => void lines.push(`${msg ?? ''}: ${String((o as { err?: unknown }).err)}`),
  };
}

const append = (from: string, to: string, term: number): Message => ({
  type: 'app',
  from,
  to,
  term,
  logTerm: 0,
  index: 0,
  entries: [{ term, index: 1, type: EntryType.Normal, data: new Uint8Array([1, 2, 3]) }],
  commit: 0,
  reject: false,
  rejectHint: 0,
});

describe('GrpcTransport clusterId', () => {
  it('peers of different clusters never exchange entries; peers of one cluster do', async () => {
    const server = new grpc.Server();
    cleanups.push(() => void server.forceShutdown());
    const port = await new Promise<number>((res, rej) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))),
    );
    const serverLog = warnings();
    const receiver = endpoint('/eu#2');
    registerRaftService(server, receiver, { clusterId: 'alpha-id/eu', log: serverLog });
    const peers = { '/eu#1': '127.0.0.1:1', '/eu#2': `127.0.0.1:${port}` };

    // A replica of another mesh, same cell path and replica ids, pointed at our address.
    const strangerLog = warnings();
    const stranger = endpoint('/eu#1');
    const other = new GrpcTransport({
      groupId: '/eu',
      self: '/eu#1',
      peers,
      clusterId: 'beta-id/eu',
      log: strangerLog,
    });
    cleanups.push(() => other.close());
    other.start(stranger);
    other.send('/eu#2', [append('/eu#1', '/eu#2', 1), append('/eu#1', '/eu#2', 2)]);
    const refusal =
      'raft stream from "/eu#1" refused: it is for cluster "beta-id/eu", ' +
      'but replica "/eu#2" here is in cluster "alpha-id/eu"';
    await waitFor(() => strangerLog.lines.includes(`raft peer refused us: ${refusal}`), {
      what: 'the stranger to hear the refusal',
    });
    expect(serverLog.lines).toContain(`raft stream refused: another cluster: ${refusal}`);
    expect(stranger.unreachable).toContain('/eu#2');
    // A snapshot is refused the same way.
    other.send('/eu#2', [
      {
        ...append('/eu#1', '/eu#2', 3),
        type: 'snap',
        entries: [],
        snapshot: {
          meta: { index: 5, term: 3, conf: { voters: ['/eu#1', '/eu#2'], learners: [] } },
          data: new Uint8Array(8),
        },
      },
    ]);
    await waitFor(() => stranger.snapshots.length === 1, { what: 'the snapshot outcome' });
    expect(stranger.snapshots).toEqual([false]);

    // A replica of our own cluster on the same server is delivered to.
    const own = new GrpcTransport({ groupId: '/eu', self: '/eu#1', peers, clusterId: 'alpha-id/eu' });
    cleanups.push(() => own.close());
    own.start(endpoint('/eu#1'));
    own.send('/eu#2', [append('/eu#1', '/eu#2', 7)]);
    await waitFor(() => receiver.got.length > 0, { what: 'delivery from our own cluster' });
    expect(receiver.got.map((m) => m.term)).toEqual([7]);
    expect(receiver.got[0]!.entries).toHaveLength(1);
  });
});
