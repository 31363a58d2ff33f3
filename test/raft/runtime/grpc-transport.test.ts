// GrpcTransport's edges: an unreachable peer is reported (and its messages
// dropped beyond the queue bound), and several Raft groups share one server.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, describe, expect, it } from 'vitest';
import {
  GrpcTransport,
  RaftReplica,
  registerRaftService,
  type Message,
  type RaftEndpoint,
} from '../../../src/raft/index.js';
import { KvStateMachine, putCommand } from '../../../examples/raft-kv/state.js';
import { waitFor } from '../../helpers/wait.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

function fakeEndpoint(): RaftEndpoint & { unreachable: string[]; got: Message[] } {
  const unreachable: string[] = [];
  const got: Message[] = [];
  return {
    groupId: 'g',
    id: 'a',
    unreachable,
    got,
    deliver: (m) => void got.push(...m),
    reportUnreachable: (p) => void unreachable.push(p),
    reportSnapshot: () => undefined,
    status: () => ({
      id: 'a',
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

const hb = (to: string): Message => ({
  type: 'heartbeat',
  from: 'a',
  to,
  term: 1,
  logTerm: 0,
  index: 0,
  entries: [],
  commit: 0,
  reject: false,
  rejectHint: 0,
});

describe('GrpcTransport', () => {
  it('reports an unreachable peer, and drops beyond the bounded queue', async () => {
    const ep = fakeEndpoint();
    const t = new GrpcTransport({ groupId: 'g', self: 'a', peers: { b: '127.0.0.1:1' }, maxQueue: 4 });
    cleanups.push(() => t.close());
    t.start(ep);
    t.send(
      'b',
      Array.from({ length: 6 }, () => hb('b')),
    );
    expect(ep.unreachable).toEqual(['b', 'b']); // 2 over the bound of 4, reported at once
    await waitFor(() => ep.unreachable.length > 2, { timeoutMs: 5_000, what: 'stream failure report' });
    t.send('zz', [hb('zz')]);
    expect(ep.unreachable.at(-1)).toBe('zz'); // unknown peer
  });

  it('carries batches to the right replica of the right group on a shared server', async () => {
    const server = new grpc.Server();
    cleanups.push(() => void server.forceShutdown());
    const port = await new Promise<number>((res, rej) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))),
    );
    const [x, y] = [fakeEndpoint(), fakeEndpoint()];
    Object.assign(x, { groupId: 'g1', id: 'b' });
    Object.assign(y, { groupId: 'g2', id: 'b' });
    const offX = registerRaftService(server, x);
    registerRaftService(server, y);
    const t = new GrpcTransport({ groupId: 'g2', self: 'a', peers: { b: `127.0.0.1:${port}` } });
    cleanups.push(() => t.close());
    t.start(fakeEndpoint());
    t.send('b', [hb('b'), { ...hb('b'), term: 2 }]);
    await waitFor(() => y.got.length === 2, { what: 'delivery to g2/b' });
    expect(x.got).toHaveLength(0);
    expect(y.got.map((m) => m.term)).toEqual([1, 2]);
    offX();
  });

  it('runs two Raft groups over the same three servers', async () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'meshlb-raft-shared-'));
    cleanups.push(() => fs.rmSync(root, { recursive: true, force: true }));
    const servers = await Promise.all(
      [0, 1, 2].map(async () => {
        const s = new grpc.Server();
        const p = await new Promise<number>((res, rej) =>
          s.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, port) => (e ? rej(e) : res(port))),
        );
        return { s, addr: `127.0.0.1:${p}` };
      }),
    );
    cleanups.push(() => servers.forEach((x) => x.s.forceShutdown()));
    const ids = ['r1', 'r2', 'r3'];
    const peers = Object.fromEntries(ids.map((id, i) => [id, servers[i]!.addr]));
    const groups = ['cellA', 'cellB'].map((g) =>
      ids.map((id, i) => {
        const kv = new KvStateMachine();
        const replica = new RaftReplica({
          groupId: g,
          id,
          peers,
          dataDir: path.join(root, g, id),
          stateMachine: kv,
          transport: new GrpcTransport({ groupId: g, self: id, peers }),
        });
        registerRaftService(servers[i]!.s, replica);
        cleanups.push(() => replica.stop());
        return { replica, kv };
      }),
    );
    for (const [gi, g] of groups.entries()) {
      await waitFor(() => g.some((n) => n.replica.isLeader()), { timeoutMs: 5_000, what: `leader of group ${gi}` });
      await g[0]!.replica.propose(putCommand('group', String(gi)));
    }
    await waitFor(() => groups.every((g, gi) => g.every((n) => n.kv.data.get('group') === String(gi))), {
      what: 'each group applied its own write',
    });
  });
});
