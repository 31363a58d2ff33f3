// A 3-replica KV cluster for runtime tests: real lmdb in temp dirs, and either
// real gRPC on 127.0.0.1 (port 0, then the bound port) or the in-memory network.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import {
  GrpcTransport,
  MemoryNetwork,
  RaftReplica,
  registerRaftService,
  type NodeId,
  type Transport,
} from '../../../src/raft/index.js';
import type { RaftLimits } from '../../../src/raft/runtime/defaults.js';
import { KvStateMachine } from '../../../examples/raft-kv/state.js';
import { waitFor } from '../../helpers/wait.js';

export interface Node {
  id: NodeId;
  dir: string;
  address: string;
  server?: grpc.Server;
  replica?: RaftReplica;
  transport?: Transport;
  kv: KvStateMachine;
}

export class TestCluster {
  readonly nodes = new Map<NodeId, Node>();
  readonly root = fs.mkdtempSync(path.join(os.tmpdir(), 'meshlb-raft-rt-'));
  readonly net = new MemoryNetwork();

  constructor(
    readonly mode: 'grpc' | 'memory',
    readonly ids: NodeId[] = ['n1', 'n2', 'n3'],
    readonly limits: Partial<RaftLimits> = {},
    /** Each (re)started replica's state machine; a plain KvStateMachine by default. */
    readonly newStateMachine: () => KvStateMachine = () => new KvStateMachine(),
  ) {}

  async start(): Promise<void> {
    for (const id of this.ids) {
      const node: Node = { id, dir: path.join(this.root, id), address: '', kv: this.newStateMachine() };
      if (this.mode === 'grpc') node.address = `127.0.0.1:${await this.bind(node, 0)}`;
      else node.address = `mem:${id}`;
      this.nodes.set(id, node);
    }
    for (const id of this.ids) this.startReplica(id);
  }

  private bind(node: Node, port: number): Promise<number> {
    const server = new grpc.Server();
    node.server = server;
    return new Promise((resolve, reject) =>
      server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (err, p) =>
        err ? reject(err) : resolve(p),
      ),
    );
  }

  peers(): Record<NodeId, string> {
    return Object.fromEntries(this.ids.map((id) => [id, this.nodes.get(id)!.address]));
  }

  /** A new member that joins the running group (empty log, learns the configuration). */
  async addJoiner(id: NodeId): Promise<Node> {
    const node: Node = { id, dir: path.join(this.root, id), address: '', kv: this.newStateMachine() };
    node.address = this.mode === 'grpc' ? `127.0.0.1:${await this.bind(node, 0)}` : `mem:${id}`;
    this.nodes.set(id, node);
    this.ids.push(id);
    this.startReplica(id, true);
    return node;
  }

  startReplica(id: NodeId, join = false): RaftReplica {
    const node = this.nodes.get(id)!;
    node.kv = this.newStateMachine();
    // A joiner knows only itself: the members' addresses come from the log.
    const peers = join ? { [id]: node.address } : this.peers();
    const transport =
      this.mode === 'grpc' ? new GrpcTransport({ groupId: 'g1', self: id, peers }) : this.net.transport(id);
    const replica = new RaftReplica({
      groupId: 'g1',
      id,
      peers,
      dataDir: node.dir,
      stateMachine: node.kv,
      transport,
      limits: this.limits,
      join,
    });
    if (node.server) registerRaftService(node.server, replica);
    node.replica = replica;
    node.transport = transport;
    return replica;
  }

  /** Stop a replica and (grpc) its server, as a crash would take both. */
  async stop(id: NodeId): Promise<void> {
    const node = this.nodes.get(id)!;
    await node.replica?.stop();
    node.replica = undefined;
    node.server?.forceShutdown();
    node.server = undefined;
  }

  async restart(id: NodeId): Promise<RaftReplica> {
    const node = this.nodes.get(id)!;
    if (this.mode === 'grpc') await this.bind(node, Number(node.address.split(':')[1]));
    return this.startReplica(id);
  }

  /**
   * Forget every message the running replicas still hold queued for `id` (a
   * down peer's queue keeps filling until it overflows), as a long outage
   * would: what `id` learns next is only what its peers send from now on.
   */
  dropQueuedTo(id: NodeId): void {
    const address = this.nodes.get(id)!.address;
    for (const n of this.running()) {
      if (n.id === id) continue;
      n.transport!.removePeer(id);
      n.transport!.setPeer(id, address);
    }
  }

  replica(id: NodeId): RaftReplica {
    const r = this.nodes.get(id)?.replica;
    if (!r) throw new Error(`replica ${id} is not running`);
    return r;
  }

  running(): Node[] {
    return [...this.nodes.values()].filter((n) => n.replica);
  }

  /** The leader all running replicas agree on. */
  async leader(timeoutMs = 5_000): Promise<NodeId> {
    return waitFor(
      () => {
        const ls = new Set(this.running().map((n) => n.replica!.status().leader));
        const [l] = [...ls];
        return ls.size === 1 && l && this.nodes.get(l)?.replica?.isLeader() ? l : undefined;
      },
      { timeoutMs, what: 'one agreed leader' },
    );
  }

  async close(): Promise<void> {
    for (const id of this.ids) await this.stop(id);
    fs.rmSync(this.root, { recursive: true, force: true });
  }
}
