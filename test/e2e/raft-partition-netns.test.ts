// Real network partitions between real Raft processes. Three replicas of the
// demo KV (examples/raft-kv/state.ts + service.ts, the same state machine
// and client service as the kill drill) each run in their own network namespace
// with their own address; this test process is the client and observer, on a
// link that partitions never cut (test/helpers/netns.ts). Links between
// replicas are cut with blackhole routes: packets vanish, connections hang.
//
// (a) isolate the leader: the majority elects a new leader in bounded time and
//     keeps acknowledging writes; the isolated old leader acknowledges nothing
//     and steps down (check-quorum); after heal everyone converges, no
//     acknowledged write is lost (read back with a linearizable read on each
//     replica), and the write sent to the isolated leader never appears.
// (b) cut only leader <-> follower1: the leader keeps its quorum through
//     follower2, so writes keep flowing; follower1 loses the leader and
//     campaigns, but pre-vote and the leader lease keep it from raising the
//     term or unseating the leader; after heal it catches up; nothing lost.
import path from 'node:path';
import fs from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RaftRole, RaftServiceClient, type RaftServiceStatusResponse } from '../../src/gen/meshlb/v1/raft.js';
import { seededRandom } from '../../src/util/rng.js';
import { call, RaftKvClient, type DumpResponse, type PutResponse } from '../../examples/raft-kv/service.js';
import { NetnsLab, netnsGate, type LabProcess } from '../helpers/netns.js';
import { waitFor } from '../helpers/wait.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const SEED = Number(process.env.MESHLB_TEST_SEED ?? Date.now() % 1_000_000);
const GROUP = 'demo';
const PORT = 7000;
const gate = netnsGate();

// examples/raft-kv/server.ts binds 127.0.0.1 (fine for the loopback drill, useless
// in a namespace); this is the same server bound to the namespace's address.
const SERVER = `
import * as grpc from '@grpc/grpc-js';
const { GrpcTransport, RaftReplica, registerRaftService } = await import(${JSON.stringify(path.join(repo, 'src/raft/index.ts'))});
const { toServiceError } = await import(${JSON.stringify(path.join(repo, 'src/util/errors.ts'))});
const { toMeshError } = await import(${JSON.stringify(path.join(repo, 'src/util/raft-status.ts'))});
const { logger } = await import(${JSON.stringify(path.join(repo, 'src/util/log.ts'))});
const { KvStateMachine, putCommand } = await import(${JSON.stringify(path.join(repo, 'examples/raft-kv/state.ts'))});
const { RaftKvService } = await import(${JSON.stringify(path.join(repo, 'examples/raft-kv/service.ts'))});
const id = process.env.KV_ID, host = process.env.KV_HOST, port = Number(process.env.KV_PORT);
const peers = Object.fromEntries(process.env.KV_PEERS.split(',').map((p) => p.split('=')));
const server = new grpc.Server();
await new Promise((res, rej) => server.bindAsync(host + ':' + port, grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))));
const kv = new KvStateMachine();
const replica = new RaftReplica({ groupId: 'demo', id, peers, dataDir: process.env.KV_DIR, stateMachine: kv,
  transport: new GrpcTransport({ groupId: 'demo', self: id, peers, log: logger({ component: 'raft-transport', group: 'demo', node: id }) }),
  log: logger({ component: 'raft', group: 'demo', node: id }) });
registerRaftService(server, replica, { log: logger({ component: 'raft-service' }) });
server.addService(RaftKvService, {
  put: (c, cb) => replica.propose(putCommand(c.request.key, c.request.value)).then((index) => cb(null, { index }), (e) => cb(toServiceError(toMeshError(e)))),
  dump: (_c, cb) => replica.read().then(() => cb(null, { entries: [...kv.data] }), (e) => cb(toServiceError(toMeshError(e)))),
  bench: (_c, cb) => cb({ code: grpc.status.UNIMPLEMENTED, details: 'no bench here' }),
});
process.stdout.write('READY ' + port + '\\n');
`;

interface Rep {
  id: string;
  address: string;
  proc: LabProcess;
  status: RaftServiceClient;
  kv: grpc.Client;
}

const chanOpts = { 'grpc.initial_reconnect_backoff_ms': 50, 'grpc.max_reconnect_backoff_ms': 500 };

describe.skipIf(gate.skip)(`raft partitions in network namespaces (seed ${SEED})`, () => {
  let lab: NetnsLab | undefined;
  let tmp = '';
  const reps: Rep[] = [];
  const acked = new Map<string, string>();
  const rnd = seededRandom(SEED);
  const trace: string[] = [];
  const note = (l: string) => trace.push(`${new Date().toISOString().slice(11, 23)} ${l}`);
  /** What a failure prints: the seed, the cuts in force, the timeline, the replicas' output tails. */
  const report = () =>
    [
      `seed ${SEED} (rerun with MESHLB_TEST_SEED=${SEED}); cuts: ${lab?.partitions.join(', ') || 'none'}`,
      ...trace.slice(-60),
      ...reps.map((r) => `--- ${r.id} output (tail):\n${r.proc.output().slice(-2000)}`),
    ].join('\n');

  const getStatus = (r: Rep, deadlineMs = 300) =>
    new Promise<RaftServiceStatusResponse | undefined>((resolve) =>
      r.status.status({ groupId: GROUP }, new grpc.Metadata(), { deadline: Date.now() + deadlineMs }, (err, res) =>
        resolve(err ? undefined : res),
      ),
    );
  const statuses = () => Promise.all(reps.map((r) => getStatus(r)));
  const byId = (id: string) => reps.find((r) => r.id === id)!;

  /** The leader all three replicas agree on (each answering, one says leader, all name it). */
  const agreed = async () => {
    const st = await statuses();
    if (st.some((s) => !s)) return undefined;
    const l = st.find((s) => s!.role === RaftRole.RAFT_ROLE_LEADER);
    if (!l || st.some((s) => s!.leaderId !== l.nodeId || s!.term !== l.term)) return undefined;
    return { leader: byId(l.nodeId), term: l.term, st: st as RaftServiceStatusResponse[] };
  };

  // Writers: bounded, each put counted only once the cluster acknowledged it.
  let leaderHint: Rep | undefined;
  let writing = false;
  let writers: Promise<void>[] = [];
  let seq = 0;
  const writerErrors: string[] = [];
  const startWriters = (n: number) => {
    writing = true;
    writers = Array.from({ length: n }, async (_, w) => {
      for (let i = 0; writing && i < 5_000; i++) {
        const key = `w${w}-${seq++}`;
        const value = `${key}@${SEED}`;
        for (let attempt = 0; writing && attempt < 200; attempt++) {
          const target = leaderHint ?? reps[Math.floor(rnd() * reps.length)]!;
          try {
            await call<unknown, PutResponse>(target.kv, 'put', { key, value }, 1_500);
            acked.set(key, value);
            // Stick to a replica that just worked, as a real client would: it is the
            // leader or a follower on the leader's side that forwards to it. Without
            // this, one failed write drops the hint and writers keep drawing the
            // isolated replica at random, each draw costing a full deadline.
            leaderHint ??= target;
            break;
          } catch (e) {
            writerErrors.push(`${target.id}: ${(e as Error).message}`.slice(0, 160));
            // Unknown outcome; the same put again is idempotent. Try elsewhere.
            if (leaderHint === target) leaderHint = undefined;
            await new Promise((r) => setTimeout(r, 20));
          }
        }
      }
    });
  };
  const stopWriters = async () => {
    writing = false;
    await Promise.all(writers);
  };

  /** Every replica reads (ReadIndex) every acknowledged key with its value; all three states are equal. */
  const checkNothingLost = async (what: string) => {
    const dumps: Map<string, string>[] = [];
    for (const r of reps) {
      const d = await waitFor(() => call<unknown, DumpResponse>(r.kv, 'dump', {}, 3_000).catch(() => undefined), {
        timeoutMs: 15_000,
        intervalMs: 50,
        what: `a linearizable dump of ${r.id} (${what})`,
      });
      dumps.push(new Map(d.entries));
    }
    const lost: string[] = [];
    dumps.forEach((m, i) => {
      for (const [k, v] of acked) if (m.get(k) !== v) lost.push(`${reps[i]!.id}:${k}`);
    });
    expect(lost, `acknowledged writes missing after ${what}\n${report()}`).toEqual([]);
    for (const m of dumps.slice(1))
      expect([...m].sort(), `replica states differ after ${what}\n${report()}`).toEqual([...dumps[0]!].sort());
    return dumps[0]!;
  };

  beforeAll(async () => {
    if (gate.failure) return;
    lab = NetnsLab.create(['n1', 'n2', 'n3']);
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'meshlb-raft-netns-'));
    const peers = lab.names.map((n) => `${n}=${lab!.member(n).ip}:${PORT}`).join(',');
    for (const id of lab.names) {
      const ip = lab.member(id).ip;
      const proc = lab.spawn(
        id,
        `kv ${id}`,
        process.execPath,
        ['--import', 'tsx', '--input-type=module', '-e', SERVER],
        {
          ...process.env,
          MESHLB_LOG_LEVEL: process.env.MESHLB_LOG_LEVEL ?? 'warn',
          KV_ID: id,
          KV_HOST: ip,
          KV_PORT: String(PORT),
          KV_PEERS: peers,
          KV_DIR: path.join(tmp, id),
        },
      );
      reps.push({
        id,
        address: `${ip}:${PORT}`,
        proc,
        status: new RaftServiceClient(`${ip}:${PORT}`, grpc.credentials.createInsecure(), chanOpts),
        kv: new RaftKvClient(`${ip}:${PORT}`, grpc.credentials.createInsecure(), chanOpts),
      });
    }
    for (const r of reps) {
      await waitFor(
        () => {
          if (!r.proc.running()) throw new Error(`${r.id} exited early:\n${r.proc.output()}`);
          return r.proc.output().includes('READY');
        },
        { timeoutMs: 30_000, intervalMs: 20, what: `${r.id} READY` },
      );
    }
    note(`replicas up on ${reps.map((r) => `${r.id}=${r.address}`).join(' ')} in ${lab.id}`);
  }, 60_000);

  afterAll(async () => {
    writing = false;
    await Promise.race([Promise.all(writers), new Promise((r) => setTimeout(r, 3_000))]);
    for (const r of reps) {
      r.status.close();
      r.kv.close();
    }
    await lab?.close();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('(a) isolated leader: majority elects and commits, old leader commits nothing, heal converges, no acked write lost', async () => {
    if (gate.failure) throw new Error(gate.failure);
    const first = await waitFor(agreed, { timeoutMs: 15_000, what: 'a first agreed leader' }).catch((e: Error) => {
      throw new Error(`${e.message}\n${report()}`);
    });
    const old = first.leader;
    leaderHint = old;
    startWriters(4);
    const base = acked.size;
    await waitFor(() => acked.size >= base + 40, { timeoutMs: 10_000, what: '40 acknowledged writes before the cut' });
    note(`leader ${old.id} term ${first.term}; ${acked.size} acked; isolating ${old.id}`);

    lab!.isolate(old.id);
    const t0 = performance.now();
    // A write sent to the isolated leader while it still believes it leads: it cannot commit.
    const isoKey = `isolated-${SEED}`;
    const isoWrite = call<unknown, PutResponse>(old.kv, 'put', { key: isoKey, value: 'must-not-commit' }, 2_500).then(
      () => 'acknowledged',
      (e: grpc.ServiceError) => `rejected ${grpc.status[e.code]}: ${e.details}`,
    );
    leaderHint = undefined;
    const others = reps.filter((r) => r !== old);
    const next = await waitFor(
      async () => {
        const st = await Promise.all(others.map((r) => getStatus(r, 200)));
        return st.find((s) => s && s.role === RaftRole.RAFT_ROLE_LEADER && s.term > first.term);
      },
      { timeoutMs: 5_000, intervalMs: 10, what: 'a new leader on the majority side' },
    ).catch((e: Error) => {
      throw new Error(`${e.message}\n${report()}`);
    });
    const failoverMs = performance.now() - t0;
    leaderHint = byId(next.nodeId);
    note(`new leader ${next.nodeId} term ${next.term} after ${failoverMs.toFixed(0)} ms`);
    expect(next.nodeId).not.toBe(old.id);
    expect(failoverMs, report()).toBeLessThan(3_000);

    // The majority keeps accepting writes.
    const atFailover = acked.size;
    await waitFor(() => acked.size >= atFailover + 40, {
      timeoutMs: 10_000,
      what: '40 writes acknowledged by the majority',
    }).catch(async (e: Error) => {
      const st = await statuses();
      throw new Error(
        `${e.message}\nacked ${acked.size} (at failover ${atFailover}); writerErrors ${JSON.stringify(writerErrors.slice(-12))}\nstatus ${JSON.stringify(st)}\n${report()}`,
      );
    });

    // The isolated leader: check-quorum makes it step down; its write was never acknowledged.
    const oldSt = await waitFor(
      async () => {
        const s = await getStatus(old, 200);
        return s && s.role !== RaftRole.RAFT_ROLE_LEADER ? s : undefined;
      },
      { timeoutMs: 3_000, what: `isolated ${old.id} to step down (check-quorum)` },
    );
    note(`isolated ${old.id} is ${RaftRole[oldSt.role]} term ${oldSt.term}, commit ${oldSt.commit}`);
    const isoOutcome = await isoWrite;
    note(`write sent to the isolated leader: ${isoOutcome}`);
    expect(isoOutcome, report()).not.toBe('acknowledged');
    const late = await call<unknown, PutResponse>(
      old.kv,
      'put',
      { key: `${isoKey}-late`, value: 'must-not-commit' },
      1_500,
    ).then(
      () => 'acknowledged',
      (e: grpc.ServiceError) => `rejected ${grpc.status[e.code]}`,
    );
    note(`write sent to the stepped-down isolated replica: ${late}`);
    expect(late, report()).not.toBe('acknowledged');

    // Heal: one leader all agree on, the old one a follower in the new term, everyone caught up.
    lab!.heal();
    note('healed');
    const healed = await waitFor(
      async () => {
        const a = await agreed();
        return a && a.term >= next.term && a.leader !== old ? a : undefined;
      },
      { timeoutMs: 10_000, intervalMs: 20, what: 'all three agreeing on a leader after heal' },
    ).catch((e: Error) => {
      throw new Error(`${e.message}\n${report()}`);
    });
    leaderHint = healed.leader;
    await stopWriters();
    const done = await waitFor(
      async () => {
        const a = await agreed();
        return a && a.st.every((s) => s.applied === a.st[0]!.commit && s.commit === a.st[0]!.commit) ? a : undefined;
      },
      { timeoutMs: 10_000, intervalMs: 20, what: 'every replica applied the same commit index' },
    );
    note(
      `converged: leader ${done.leader.id} term ${done.term}, applied ${done.st.map((s) => `${s.nodeId}=${s.applied}`).join(' ')}; ${acked.size} acked`,
    );
    expect(done.st.find((s) => s.nodeId === old.id)!.role).toBe(RaftRole.RAFT_ROLE_FOLLOWER);
    // Pre-vote: the isolated replica campaigned without raising its term, so its return
    // did not force an election either.
    expect(done.term, `the old leader's return changed the term\n${report()}`).toBe(next.term);
    const state = await checkNothingLost('isolating the leader');
    // Appended only to the isolated leader's log in its old term: overwritten, never committed.
    expect(state.has(isoKey), `the isolated leader's write was committed\n${report()}`).toBe(false);
    // (The late write is another matter: a replica with no known leader keeps a proposal
    // until its own deadline and forwards it once it learns one, so after heal it may
    // commit: an unacknowledged write has an unknown outcome. Only its ack was checked.)
    note(`late write ${state.has(`${isoKey}-late`) ? 'committed after heal (unknown outcome)' : 'never committed'}`);
    console.log(trace.splice(0).join('\n'));
  }, 45_000);

  it('(b) one cut link leader<->follower: writes continue, no term bump or disruption, heal catches up, no acked write lost', async () => {
    if (gate.failure) throw new Error(gate.failure);
    const cur = await waitFor(agreed, { timeoutMs: 10_000, what: 'an agreed leader' });
    const leader = cur.leader;
    const followers = reps.filter((r) => r !== leader);
    const cutOff = followers[Math.floor(rnd() * followers.length)]!;
    const other = followers.find((r) => r !== cutOff)!;
    leaderHint = leader;
    startWriters(4);
    const base = acked.size;
    await waitFor(() => acked.size >= base + 20, { timeoutMs: 10_000, what: '20 acknowledged writes before the cut' });
    note(`leader ${leader.id} term ${cur.term}; cutting ${leader.id}<->${cutOff.id}, ${other.id} still sees both`);

    lab!.partition(leader.id, cutOff.id);
    const atCut = acked.size;
    // Watch until the cut-off follower has lost the leader (it campaigns), stayed so for
    // two full maximum election timeouts (2 x 600 ms), and 100 more writes were acknowledged.
    let leaderlessSince = 0;
    const violations: string[] = [];
    await waitFor(
      async () => {
        const [ls, os_, cs] = await Promise.all([
          getStatus(leader, 200),
          getStatus(other, 200),
          getStatus(cutOff, 200),
        ]);
        if (ls && (ls.role !== RaftRole.RAFT_ROLE_LEADER || ls.term !== cur.term))
          violations.push(`leader ${leader.id}: ${RaftRole[ls.role]} term ${ls.term}`);
        if (os_ && (os_.leaderId !== leader.id || os_.term !== cur.term))
          violations.push(`${other.id}: leader '${os_.leaderId}' term ${os_.term}`);
        if (cs && cs.term !== cur.term) violations.push(`${cutOff.id}: term ${cs.term} (was ${cur.term})`);
        if (violations.length)
          throw new Error(`disruption during the one-link cut: ${violations.slice(0, 5).join('; ')}\n${report()}`);
        if (cs && !leaderlessSince && (cs.leaderId === '' || cs.role !== RaftRole.RAFT_ROLE_FOLLOWER)) {
          leaderlessSince = performance.now();
          note(`${cutOff.id} lost the leader: ${RaftRole[cs.role]} term ${cs.term}`);
        }
        return leaderlessSince > 0 && performance.now() - leaderlessSince > 1_200 && acked.size >= atCut + 100;
      },
      {
        timeoutMs: 15_000,
        intervalMs: 25,
        what: `the cut-off follower ${cutOff.id} campaigning in vain while 100 writes commit`,
      },
    ).catch((e: Error) => {
      throw new Error(`${e.message}\n${report()}`);
    });
    note(`${acked.size - atCut} writes acknowledged during the cut; leader ${leader.id} kept term ${cur.term}`);

    lab!.heal();
    const healT0 = performance.now();
    // The cut-off follower catches up with the same leader, same term (no disruption on rejoin either).
    const caught = await waitFor(
      async () => {
        const [ls, cs] = await Promise.all([getStatus(leader, 200), getStatus(cutOff, 200)]);
        if (!ls || !cs) return undefined;
        return cs.leaderId === leader.id && cs.applied >= atCut && cs.applied + 5 >= ls.commit ? { ls, cs } : undefined;
      },
      { timeoutMs: 10_000, intervalMs: 20, what: `${cutOff.id} following ${leader.id} and caught up after heal` },
    ).catch((e: Error) => {
      throw new Error(`${e.message}\n${report()}`);
    });
    note(
      `${cutOff.id} caught up in ${(performance.now() - healT0).toFixed(0)} ms: applied ${caught.cs.applied}, leader commit ${caught.ls.commit}`,
    );
    expect(caught.ls.term, report()).toBe(cur.term);
    expect(caught.cs.term, report()).toBe(cur.term);
    await stopWriters();
    await waitFor(
      async () => {
        const a = await agreed();
        return a && a.st.every((s) => s.applied === a.st[0]!.commit && s.commit === a.st[0]!.commit) ? a : undefined;
      },
      { timeoutMs: 10_000, intervalMs: 20, what: 'every replica applied the same commit index' },
    );
    await checkNothingLost('the one-link cut');
    console.log(trace.splice(0).join('\n'));
  }, 45_000);

  it('leaves no process, namespace or link behind', async () => {
    if (gate.failure) throw new Error(gate.failure);
    await stopWriters();
    const pids = reps.map((r) => r.proc.child.pid!);
    await lab!.close();
    for (const pid of pids) expect(() => process.kill(pid, 0), `pid ${pid} still alive`).toThrow();
    expect(lab!.leftovers()).toEqual([]);
  });
});
