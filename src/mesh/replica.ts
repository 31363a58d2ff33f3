// One running replica: a Cell, its services on one gRPC port (TaskService,
// AgentService on node cells, LinkService on cells with children,
// AdminService, health, reflection), and its link to the parent.
import type { Server, ServerCredentials, ServerDuplexStream, ServerInterceptor } from '@grpc/grpc-js';
import { AgentServiceService, type ConnectRequest, type ConnectResponse } from '../gen/meshlb/v1/agent.js';
import type { OpenRequest, OpenResponse } from '../gen/meshlb/v1/link.js';
import { AdminServiceService } from '../gen/meshlb/v1/admin.js';
import { startReplicaServer, type ReplicaServer, type ServiceEntry } from '../admin/grpc-server.js';
import { Admin } from '../admin/admin-service.js';
import type { Topology } from '../topology/types.js';
import { AgentSessions } from './agent-sessions.js';
import { Cell } from './cell.js';
import { ChildLinks } from './child-links.js';
import { enableNoDelay, tolerantService } from './grpc-util.js';
import { meshOf } from './mesh-identity.js';
import { LINK_SERVICE, linkDialer, linkTransport, type LinkDialer, type LinkTransport } from './link-dialer.js';
import type { Transport } from '../util/transport.js';
import { ParentLink } from './parent-link.js';
import { encodeConnectResponse } from './wire-codec.js';
import { raftCell, type RaftCell } from './raft-cell.js';
import { TASK_SERVICE, TaskService } from './task-service.js';
import { logger } from '../util/log.js';
import type { CellOptions } from './types.js';
import type { ReplicaSecurity } from '../security/replica-security.js';

export interface ReplicaOptions extends CellOptions {
  readonly topology: Topology;
  readonly cell: string;
  readonly replica?: number;
  /** Bind host; default: the topology address's host. */
  readonly host?: string;
  /** Bind port; default: the topology address's port (0 = any). */
  readonly port?: number;
  /**
   * This replica's own directory. Given, the cell's ledger is replicated by
   * Raft over the cell's replicas (a one-replica cell is a one-voter group)
   * and kept on disk there; absent, the replica keeps its ledger in memory
   * and leads alone (meshlb dev, most tests).
   */
  readonly dataDir?: string;
  /** Joining a running Raft group (`meshlb serve --join`, then AdminService AddReplica); needs dataDir. */
  readonly join?: boolean;
  /**
   * TLS for the server and for channels to other replicas, and the guard
   * (src/security/replica-security.ts; `meshlb serve` builds it from the
   * topology). Absent: plaintext and open. The replica closes it.
   */
  readonly security?: ReplicaSecurity;
  /**
   * How the link to the parent is dialled (link-dialer.ts): grpc-js, or the
   * lean http2 client. Default: MESHLB_LINK_TRANSPORT, else DEFAULT_LINK_TRANSPORT.
   */
  readonly linkTransport?: LinkTransport;
  /** Who serves the hot streams (link, agent) on this replica's port: default MESHLB_SERVER_TRANSPORT, else http2. */
  readonly serverTransport?: Transport;
}

export class Replica {
  readonly cell: Cell;
  readonly tasks: TaskService;
  private readonly raft: RaftCell | undefined;
  private server: ReplicaServer | undefined;
  /** AdminService, and the same answers for the live page (src/admin/page-server.ts). */
  readonly admin: Admin;
  private closed = false;

  constructor(readonly opts: ReplicaOptions) {
    const spec = opts.topology.byPath.get(opts.cell);
    if (!spec) throw new Error(`cell ${opts.cell} is not in topology ${opts.topology.name}`);
    const replica = opts.replica ?? 1;
    const mesh = meshOf(opts.topology);
    this.raft = opts.dataDir
      ? raftCell({
          spec,
          replica,
          dataDir: opts.dataDir,
          meshId: mesh.id,
          log: opts.log ?? logger({ component: 'raft', cell: spec.path, replica }),
          ...(opts.random ? { random: opts.random } : {}),
          ...(opts.join ? { join: true } : {}),
          ...(opts.security ? { credentials: opts.security.channelCredentials(spec.path) } : {}),
        })
      : undefined;
    const cell = new Cell(opts.topology, spec, replica, {
      ...opts,
      ...(this.raft ? { replicatedLog: this.raft.factory } : {}),
    });
    this.cell = cell;
    this.admin = new Admin(cell, {
      selfAddress: () => this.server?.address ?? '',
      parentAddresses: opts.parentAddresses ?? (() => parentSpecAddresses(opts.topology, spec.parent)),
      // Forwarded admin calls and the mesh status walk reach other cells' replicas: TLS like the links.
      ...(opts.security ? { credentials: (c: string) => opts.security!.channelCredentials(c) } : {}),
    });
    const sec = opts.security;
    wireCell(
      cell,
      opts.parentAddresses ?? (() => parentSpecAddresses(opts.topology, spec.parent)),
      spec.parent
        ? linkDialer(linkTransport(opts.linkTransport ?? process.env.MESHLB_LINK_TRANSPORT), spec.parent, sec)
        : undefined,
    );
    this.tasks = new TaskService(cell, sec ? { credentials: sec.channelCredentials(spec.path) } : {});
  }

  /** Who serves the hot streams on this replica's port (http2 only if the hook applied), and the calls served lean so far. */
  get serverTransport(): { transport: Transport; leanCalls: number } {
    if (!this.server) throw new Error('replica not started');
    return { transport: this.server.transport, leanCalls: this.server.leanCalls() };
  }

  get address(): string {
    if (!this.server) throw new Error('replica not started');
    return this.server.address;
  }

  async start(): Promise<this> {
    const cell = this.cell;
    const services: ServiceEntry[] = [
      { definition: tolerantService(TASK_SERVICE), implementation: this.tasks.implementation() },
      { definition: tolerantService(AdminServiceService), implementation: this.admin.implementation() },
    ];
    if (cell.agents) {
      const agents = cell.agents;
      services.push({
        // Assignments go as the bytes the node got them in (wire-codec.ts).
        definition: tolerantService({
          connect: { ...AgentServiceService.connect, responseSerialize: encodeConnectResponse },
        }),
        implementation: {
          connect: (call: ServerDuplexStream<ConnectRequest, ConnectResponse>) => agents.connect(call),
        },
      });
    }
    if (cell.children) {
      const children = cell.children;
      services.push({
        definition: tolerantService(LINK_SERVICE),
        implementation: { open: (call: ServerDuplexStream<OpenRequest, OpenResponse>) => children.open(call) },
      });
    }
    const self = cell.spec.replicas.find((r) => r.replica === (this.opts.replica ?? 1));
    const [h, p] = splitHostPort(self?.address ?? '127.0.0.1:0');
    this.server = await startReplicaServer({
      host: this.opts.host ?? h,
      port: this.opts.port ?? p,
      maxMessageBytes: cell.settings.maxMessageBytes,
      services,
      log: cell.log,
      ...(this.opts.serverTransport ? { transport: this.opts.serverTransport } : {}),
      ...(this.raft ? { register: (server: Server) => this.raft!.register(server) } : {}),
      ...(this.opts.security ? this.guarded(this.opts.security) : {}),
    });
    enableNoDelay(this.server.server);
    if (cell.parent) cell.parent.selfAddress = this.server.address;
    // Leading (at once for a one-replica cell, on election for a Raft group) starts the parent link.
    cell.start();
    return this;
  }

  /** TLS and the guard for the server: a task's tenant is looked up locally, after a read barrier if unknown. */
  private guarded(sec: ReplicaSecurity): { credentials: ServerCredentials; interceptors: ServerInterceptor[] } {
    const { home, ledgerLog, spec } = this.cell;
    const taskTenant = async (id: string): Promise<string | undefined> => {
      const known = home.ledger.get(id);
      if (known) return known.spec.tenant;
      await ledgerLog.readIndex();
      return home.ledger.get(id)?.spec.tenant;
    };
    return {
      credentials: sec.serverCredentials(),
      interceptors: sec.interceptors({
        cell: spec.path,
        children: spec.children,
        taskTenant,
        leading: () => this.cell.leading,
        ledger: home.ledger,
      }),
    };
  }

  /** Stop taking work, close links and streams, stop the server. */
  async close(graceMs = 1000): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const cell = this.cell;
    cell.draining = true;
    cell.parent?.close();
    this.tasks.closeAll();
    cell.agents?.closeAll();
    cell.children?.closeAll();
    cell.close();
    await this.server?.close(graceMs);
    this.admin.close();
    await cell.ledgerLog.close();
    this.opts.security?.close();
  }
}

/**
 * Attach what a cell of its shape has: agent sessions (a node), links to its
 * children, the link to its parent (dialled with `dial`: gRPC unless a
 * simulator passes its own).
 */
export function wireCell(cell: Cell, parentAddresses: () => readonly string[], dial?: LinkDialer): void {
  const { spec, topology } = cell;
  const mesh = meshOf(topology);
  cell.attach({
    agents: spec.tier === 'node' ? new AgentSessions(cell, mesh) : undefined,
    children: spec.children.length > 0 ? new ChildLinks(cell, spec.children, mesh) : undefined,
    parent: spec.parent ? new ParentLink(cell, cell.summaries, parentAddresses, mesh, dial) : undefined,
  });
}

function parentSpecAddresses(topology: Topology, parent: string): string[] {
  return topology.byPath.get(parent)?.replicas.map((r) => r.address) ?? [];
}

function splitHostPort(address: string): [string, number] {
  const i = address.lastIndexOf(':');
  if (i < 0) return [address, 0];
  return [address.slice(0, i).replace(/^\[|\]$/g, ''), Number(address.slice(i + 1)) || 0];
}
