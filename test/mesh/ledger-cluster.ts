// Three (or more) RaftLedgerLogs for tests: real lmdb in a temp dir, and either
// the in-memory network or real gRPC on 127.0.0.1 (bound to port 0 first, so
// every address is a free port). Election timers are seeded per replica.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import {
  GrpcTransport,
  MemoryNetwork,
  registerRaftService,
  type NodeId,
  type RaftLimits,
  type RaftLogger,
} from '../../src/raft/index.js';
import { Ledger } from '../../src/mesh/ledger.js';
import { RaftLedgerLog, type LedgerApplied } from '../../src/mesh/raft-ledger-log.js';
import { seededRandom } from '../../src/util/rng.js';
import { waitFor } from '../helpers/wait.js';

/** Keeps what a replica warns about, for failure messages and assertions. */
function problemLog(into: string[]): RaftLogger {
  const keep = (level: string) => (obj: object, msg?: string) =>
    void into.push(
      `${level} ${msg ?? ''} ${JSON.stringify(obj, (_k, v: unknown) => (v instanceof Error ? `${v.name}: ${v.message}` : v))}`,
    );
  return { debug: () => undefined, info: () => undefined, warn: keep('warn'), error: keep('error') };
}

export interface ClusterOptions {
  readonly mode?: 'memory' | 'grpc';
  readonly ids?: readonly NodeId[];
  readonly limits?: Partial<RaftLimits>;
  readonly seed: number;
  readonly retention?: number;
}

interface Member {
  readonly id: NodeId;
  readonly dir: string;
  address: string;
  server?: grpc.Server;
  log?: RaftLedgerLog;
  /** Everything applied since this member last started, in order. */
  applied: LedgerApplied[];
  /** Warnings and errors the replica logged (the runtime is silent otherwise). */
  problems: string[];
  starts: number;
}

export class LedgerCluster {
  readonly root = fs.mkdtempSync(path.join(os.tmpdir(), 'meshlb-ledger-raft-'));
  readonly net = new MemoryNetwork();
  readonly members = new Map<NodeId, Member>();
  private readonly mode: 'memory' | 'grpc';
  readonly ids: NodeId[];

  constructor(private readonly opts: ClusterOptions) {
    this.mode = opts.mode ?? 'memory';
    this.ids = [...(opts.ids ?? ['n1', 'n2', 'n3'])];
  }

  async start(): Promise<void> {
    for (const id of this.ids) await this.addMember(id);
    for (const id of this.ids) this.startReplica(id);
  }

  /** A member with its own data dir and address; not started. */
  async addMember(id: NodeId): Promise<void> {
    const m: Member = { id, dir: path.join(this.root, id), address: `mem:${id}`, applied: [], problems: [], starts: 0 };
    this.members.set(id, m);
    if (this.mode === 'grpc') m.address = `127.0.0.1:${await this.bind(m, 0)}`;
  }

  /** A new member that joins the running group with an empty log (add it with addVoter on the leader). */
  async join(id: NodeId): Promise<RaftLedgerLog> {
    await this.addMember(id);
    this.ids.push(id);
    return this.startReplica(id, true);
  }

  peers(): Record<NodeId, string> {
    return Object.fromEntries(this.ids.map((id) => [id, this.member(id).address]));
  }

  /** Start (or restart) a replica on its data dir with a fresh, empty Ledger. */
  startReplica(id: NodeId, join = false): RaftLedgerLog {
    const m = this.member(id);
    // A joiner knows only itself: the members' addresses come from the log.
    const peers = join ? { [id]: m.address } : this.peers();
    const transport =
      this.mode === 'grpc' ? new GrpcTransport({ groupId: 'cell', self: id, peers }) : this.net.transport(id);
    m.applied = [];
    const log = new RaftLedgerLog({
      ledger: new Ledger({ retention: this.opts.retention ?? 10_000, defaultMaxAttempts: 3 }),
      raft: {
        groupId: 'cell',
        id,
        peers,
        join,
        dataDir: m.dir,
        transport,
        limits: this.opts.limits,
        random: seededRandom(this.opts.seed * 31 + this.ids.indexOf(id) * 7 + m.starts++),
        log: problemLog(m.problems),
      },
    });
    // The constructor may already have restored a snapshot: record that too.
    if (log.ledger.size > 0 || log.replica.status().applied > 0) m.applied.push({ kind: 'restored' });
    log.onApplied((ev) => m.applied.push(ev));
    if (m.server) registerRaftService(m.server, log.replica);
    m.log = log;
    return log;
  }

  /** Stop a replica and (grpc) its server, as a crash takes both; its data dir stays. */
  async stop(id: NodeId): Promise<void> {
    const m = this.member(id);
    await m.log?.close();
    m.log = undefined;
    m.server?.forceShutdown();
    m.server = undefined;
  }

  async restart(id: NodeId): Promise<RaftLedgerLog> {
    const m = this.member(id);
    if (this.mode === 'grpc') await this.bind(m, Number(m.address.split(':')[1]));
    return this.startReplica(id);
  }

  log(id: NodeId): RaftLedgerLog {
    const l = this.member(id).log;
    if (!l) throw new Error(`replica ${id} is not running`);
    return l;
  }

  running(): RaftLedgerLog[] {
    return [...this.members.values()].flatMap((m) => (m.log ? [m.log] : []));
  }

  /** The leader every running replica agrees on (a generous bound: this machine's load can reach 10 on 2 cores). */
  leader(timeoutMs = 15_000): Promise<NodeId> {
    return waitFor(
      () => {
        const seen = new Set(this.running().map((l) => l.leader()?.id ?? ''));
        const [id] = [...seen];
        return seen.size === 1 && id && this.member(id).log?.isLeader() ? id : undefined;
      },
      { timeoutMs, what: 'one agreed leader' },
    );
  }

  /** Every running replica has applied the same index and holds the same ledger. */
  async converged(timeoutMs = 10_000): Promise<void> {
    const same = () => {
      const logs = this.running();
      if (new Set(logs.map((l) => l.status().applied)).size !== 1) return false;
      return new Set(logs.map((l) => Buffer.from(l.ledger.snapshot()).toString('base64'))).size === 1;
    };
    try {
      await waitFor(same, { timeoutMs, what: 'every replica to hold the same ledger' });
    } catch (err) {
      const seen = this.running().map((l) => ({
        ...l.status(),
        ledgerBytes: l.ledger.snapshot().length,
        problems: this.member(l.replica.id).problems,
      }));
      throw new Error(`${String(err)}; replicas: ${JSON.stringify(seen)}`, { cause: err });
    }
  }

  async close(): Promise<void> {
    for (const id of this.members.keys()) await this.stop(id);
    fs.rmSync(this.root, { recursive: true, force: true });
  }

  member(id: NodeId): Member {
    const m = this.members.get(id);
    if (!m) throw new Error(`no member ${id}`);
    return m;
  }

  private bind(m: Member, port: number): Promise<number> {
    const server = new grpc.Server();
    m.server = server;
    return new Promise((resolve, reject) =>
      server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (err, p) =>
        err ? reject(err) : resolve(p),
      ),
    );
  }
}
