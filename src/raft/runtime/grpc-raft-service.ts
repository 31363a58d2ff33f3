// The server side of Raft over gRPC (grpc-transport.ts is the client side):
// one RaftService per grpc.Server, routing each stream and snapshot to the
// replica of its group on that server, refusing another cluster's
// (FAILED_PRECONDITION) and undecodable requests (INVALID_ARGUMENT).
import * as grpc from '@grpc/grpc-js';
import {
  RaftServiceService,
  type RaftServiceInstallSnapshotRequest,
  type RaftServiceServer,
  type RaftServiceStreamRequest,
  type RaftMessage,
} from '../../gen/meshlb/v1/raft.js';
import type { Message, NodeId } from '../core/types.js';
import { silentLogger, type RaftLogger } from '../logger.js';
import type { RaftEndpoint } from './transport.js';
import { messageFromWire, ROLE_TO_WIRE } from './wire.js';

// ---- server side: one RaftService per grpc.Server, routing to many replicas ----

interface Route {
  readonly ep: RaftEndpoint;
  readonly clusterId: string;
}
interface Router {
  readonly replicas: Map<string, Route>; // `${group}\0${node}`
}
const routers = new WeakMap<grpc.Server, Router>();
const key = (group: string, node: NodeId) => `${group}\0${node}`;

/** Caller input in an error or a log line: quoted, at most 200 characters of it. */
const clip = (s: string): string => JSON.stringify(s.length > 200 ? `${s.slice(0, 200)}…` : s);

/** A request that failed to decode (say a uint64 past 2^53, which the generated decoder refuses). */
interface Undecodable {
  readonly $undecodable: string;
}
const isUndecodable = (m: unknown): m is Undecodable => typeof m === 'object' && m !== null && '$undecodable' in m;

/**
 * The service with tolerant request decoding: bytes that do not decode reach
 * the handler as an Undecodable, answered INVALID_ARGUMENT, instead of grpc-js's
 * INTERNAL "Error deserializing request" (which says the server is at fault).
 */
function tolerant(def: grpc.ServiceDefinition): grpc.ServiceDefinition {
  const out: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  for (const [name, m] of Object.entries(def)) {
    out[name] = {
      ...m,
      requestDeserialize: (buf: Buffer) => {
        try {
          return m.requestDeserialize(buf);
        } catch (err) {
          return { $undecodable: err instanceof Error ? err.message : String(err) } satisfies Undecodable;
        }
      },
    };
  }
  return out;
}

const undecodable = (m: Undecodable): Partial<grpc.StatusObject> => ({
  code: grpc.status.INVALID_ARGUMENT,
  details: `undecodable raft request: ${clip(m.$undecodable)}`,
});

/** Why a sender of cluster `theirs` may not reach `route`, or '' (empty ids are not checked). */
function clusterRefusal(what: string, theirs: string, route: Route): string {
  if (!theirs || !route.clusterId || theirs === route.clusterId) return '';
  return `${what} refused: it is for cluster ${clip(theirs)}, but replica ${clip(route.ep.id)} here is in cluster ${clip(route.clusterId)}`;
}

/**
 * Attach a replica to an existing grpc.Server (the service is added once per
 * server; later calls only add routes), so all cells of a process can share
 * one port. Returns a function that detaches the replica. `opts.log` (silent
 * when absent) is the service's, so only the first registration on a server sets it.
 */
export function registerRaftService(
  server: grpc.Server,
  endpoint: RaftEndpoint,
  opts: { readonly log?: RaftLogger; readonly clusterId?: string } = {},
): () => void {
  let router = routers.get(server);
  if (!router) {
    const r: Router = { replicas: new Map() };
    router = r;
    routers.set(server, r);
    server.addService(tolerant(RaftServiceService), raftServiceImpl(r, opts.log ?? silentLogger));
  }
  const k = key(endpoint.groupId, endpoint.id);
  const route: Route = { ep: endpoint, clusterId: opts.clusterId ?? '' };
  router.replicas.set(k, route);
  const rt = router;
  return () => {
    if (rt.replicas.get(k) === route) rt.replicas.delete(k);
  };
}

function raftServiceImpl(router: Router, log: RaftLogger): RaftServiceServer {
  return {
    stream(call) {
      call.sendMetadata(new grpc.Metadata());
      let refused = false;
      call.on('data', (req: RaftServiceStreamRequest | Undecodable) => {
        if (refused) return;
        if (isUndecodable(req)) {
          refused = true;
          log.warn({ err: clip(req.$undecodable) }, 'raft stream refused: undecodable request');
          call.emit('error', undecodable(req));
          return;
        }
        const byNode = new Map<NodeId, Message[]>();
        for (const w of req.messages) {
          let m: Message;
          try {
            m = messageFromWire(w);
          } catch (err) {
            log.warn({ err: String(err), from: req.from }, 'dropping malformed raft message');
            continue;
          }
          const list = byNode.get(m.to);
          if (list) list.push(m);
          else byNode.set(m.to, [m]);
        }
        // Another cluster's sender gets nothing delivered, and its stream ends.
        for (const to of byNode.keys()) {
          const route = router.replicas.get(key(req.groupId, to));
          const why = route ? clusterRefusal(`raft stream from ${clip(req.from)}`, req.clusterId, route) : '';
          if (!why) continue;
          refused = true;
          log.warn(
            { from: clip(req.from), group: clip(req.groupId), err: why },
            'raft stream refused: another cluster',
          );
          call.emit('error', { code: grpc.status.FAILED_PRECONDITION, details: why });
          return;
        }
        for (const [to, msgs] of byNode) {
          const ep = router.replicas.get(key(req.groupId, to))?.ep;
          if (ep && req.fromAddress) ep.learnAddress?.(req.from, req.fromAddress);
          if (ep) ep.deliver(msgs);
          else call.write({ error: `unknown raft replica ${clip(to)} in group ${clip(req.groupId)}` });
        }
      });
      call.on('end', () => call.end());
      call.on('error', () => undefined); // the peer went away; it will redial
    },
    installSnapshot(call, callback) {
      let header: { groupId: string; message: RaftMessage; totalBytes: number; clusterId: string } | undefined;
      const chunks: Buffer[] = [];
      let size = 0;
      let failed = '';
      let invalid: Undecodable | undefined;
      call.on('data', (req: RaftServiceInstallSnapshotRequest | Undecodable) => {
        if (isUndecodable(req)) invalid ??= req;
        else if (req.part?.$case === 'header' && req.part.value.message) {
          header = {
            groupId: req.part.value.groupId,
            message: req.part.value.message,
            totalBytes: req.part.value.totalBytes,
            clusterId: req.part.value.clusterId,
          };
        } else if (req.part?.$case === 'chunk') {
          size += req.part.value.length;
          if (!header || size > header.totalBytes) failed = 'chunk without header or beyond total size';
          else chunks.push(req.part.value);
        }
      });
      call.on('end', () => {
        if (invalid) return callback(undecodable(invalid));
        if (!failed && (!header || size !== header.totalBytes)) failed = 'incomplete snapshot';
        const route = header && router.replicas.get(key(header.groupId, header.message.to));
        const why = header && route ? clusterRefusal('snapshot', header.clusterId, route) : '';
        if (why) {
          log.warn({ group: clip(header?.groupId ?? ''), err: why }, 'raft snapshot refused: another cluster');
          return callback({ code: grpc.status.FAILED_PRECONDITION, details: why });
        }
        const ep = route?.ep;
        if (!failed && !ep) failed = 'unknown raft replica';
        if (failed || !header || !ep) return callback(null, { accepted: false, error: failed });
        try {
          ep.deliver([messageFromWire(header.message, Buffer.concat(chunks))]);
          callback(null, { accepted: true, error: '' });
        } catch (err) {
          callback(null, { accepted: false, error: String(err) });
        }
      });
      call.on('error', () => undefined);
    },
    status(call, callback) {
      const req: unknown = call.request;
      if (isUndecodable(req)) return callback(undecodable(req));
      const prefix = `${call.request.groupId}\0`;
      const ep = [...router.replicas.entries()].find(([k]) => k.startsWith(prefix))?.[1].ep;
      // The group id is quoted clipped: a trailer past the peer's header-list limit never arrives.
      if (!ep)
        return callback({ code: grpc.status.NOT_FOUND, details: `no raft group ${clip(call.request.groupId)} here` });
      const s = ep.status();
      callback(null, {
        nodeId: s.id,
        role: ROLE_TO_WIRE[s.role],
        term: s.term,
        leaderId: s.leader,
        leaderAddress: s.leaderAddress,
        commit: s.commit,
        applied: s.applied,
        lastIndex: s.lastIndex,
      });
    },
  };
}
