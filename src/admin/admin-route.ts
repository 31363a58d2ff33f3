// Where an AdminService call that names a cell is answered: by that cell's
// leader. The replica asked answers itself when it leads the cell named;
// otherwise it repeats the call there over gRPC, one hop:
// - its own cell: at the Raft leader it knows;
// - another cell: at the live leader address GetMeshStatus found for it
//   (mesh-status.ts; the answering replica's view, a second old at most).
//
// Invariants:
// - a forwarded call carries `meshlb-forwarded: 1` (as TaskService's do) and
//   is never forwarded again: a replica that does not lead answers it with
//   the FAILED_PRECONDITION leader hint, a replica of another cell refuses
//   it, so a call crosses at most one hop and never loops;
// - at most MAX_CLIENTS channels are kept, each closed after CLIENT_IDLE_MS
//   unused (timers unref'd: an idle pool never holds the process open);
// - a call made while answering a caller carries the caller's
//   `authorization` header (asCaller), so with tokens on (docs/security.md)
//   the guard of every replica it reaches checks the caller itself: a
//   forward never lends a replica's rights to anyone.
import { AsyncLocalStorage } from 'node:async_hooks';
import { Client, credentials, Metadata, status, type ChannelCredentials, type ServiceError } from '@grpc/grpc-js';
import { AdminServiceService } from '../gen/meshlb/v1/admin.js';
import type { Cell } from '../mesh/cell.js';
import { notLeadingError } from '../mesh/port.js';
import { FORWARDED_HEADER } from '../mesh/task-forward.js';
import {
  checkLength,
  LEADER_ADDRESS_TRAILER,
  LEADER_TRAILER,
  MeshError,
  notFound,
  RETRY_AFTER_TRAILER,
  unavailable,
} from '../util/errors.js';
import { clip, LIMITS } from '../util/limits.js';

export type AdminMethod = keyof typeof AdminServiceService;
type Def<M extends AdminMethod> = (typeof AdminServiceService)[M];
export type RequestOf<M extends AdminMethod> = Parameters<Def<M>['requestSerialize']>[0];
export type ResponseOf<M extends AdminMethod> = ReturnType<Def<M>['responseDeserialize']>;

const MAX_CLIENTS = 32;
const CLIENT_IDLE_MS = 30_000;
/** A call with no deadline of its own still ends. */
export const DEFAULT_ADMIN_DEADLINE_MS = 5_000;
/** How long a call waits for its cell's leader to be known (an election) before UNAVAILABLE. */
const ELECTION_WAIT_MS = 2_000;
const TRAILERS = [LEADER_TRAILER, LEADER_ADDRESS_TRAILER, RETRY_AFTER_TRAILER];

/** The `authorization` header of the call being answered, for the calls it makes (see the header). */
const caller = new AsyncLocalStorage<string>();

/**
 * Run `fn` answering a caller whose `authorization` header is `authorization` ('' for none). With none,
 * `fn` runs as it is: there is nothing to pass on, and a first AsyncLocalStorage.run turns on Node's
 * promise and async hooks for the whole process, for good (every promise, timer and immediate then
 * pays for them: about 5% of a node cell's CPU per task, docs/policies.md "Session 16"), so a mesh
 * without tokens never pays it.
 */
export function asCaller<T>(authorization: string, fn: () => T): T {
  return authorization === '' ? fn() : caller.run(authorization, fn);
}

/** Where a call is answered: here, or at `address` (the leader of `cell`). */
export type Route = { readonly local: true } | { readonly local: false; readonly address: string };

export interface RouterOptions {
  /** TLS for channels to other replicas (by the cell they serve); plaintext when absent. */
  readonly credentials?: (cell: string) => ChannelCredentials | undefined;
  /** The live address of another cell's leader, or undefined (mesh-status.ts). */
  readonly locate: (cell: string) => Promise<string | undefined>;
}

/** The cell a request names ('' = the replica's own), checked against its limit and the topology. */
export function targetCell(cell: Cell, named: string): string {
  checkLength('cell', named, LIMITS.cellPath);
  const target = named.trim() || cell.path;
  if (!cell.topology.byPath.has(target)) {
    throw notFound(`cell ${clip(target)} is not in topology ${cell.topology.name}`);
  }
  return target;
}

export class AdminRouter {
  private readonly clients = new Map<string, { client: Client; timer: NodeJS.Timeout }>();

  constructor(
    private readonly cell: Cell,
    private readonly opts: RouterOptions,
  ) {}

  /** Where a call for `target` is answered; `forwarded` calls are answered here or refused. */
  async route(target: string, forwarded: boolean): Promise<Route> {
    const cell = this.cell;
    if (target === cell.path) {
      if (cell.leading) return { local: true };
      let hint = cell.leaderHint();
      // Another replica to forward to (this one may lead in Raft before its ledger caught up: not yet).
      const known = (): boolean => hint.leaderAddress !== '' && hint.leader !== cell.replicaId;
      // During an election nobody is known to lead: wait a little for one, as a client would retry.
      for (const until = Date.now() + ELECTION_WAIT_MS; !forwarded && !known() && Date.now() < until;) {
        await new Promise((r) => setTimeout(r, 50));
        if (cell.leading) return { local: true };
        hint = cell.leaderHint();
      }
      if (forwarded || !known()) throw notLeadingError(cell.path, hint);
      return { local: false, address: hint.leaderAddress };
    }
    if (forwarded) {
      throw new MeshError(
        status.FAILED_PRECONDITION,
        `a call forwarded to ${cell.replicaId} names cell ${clip(target)}, which it does not serve (not forwarded twice)`,
      );
    }
    const address = await this.opts.locate(target);
    if (!address) throw unavailable(`no live leader of cell ${target} was found; GetMeshStatus shows what answers`);
    return { local: false, address };
  }

  /** `method` at `address`, marked forwarded, within `deadlineMs`; a refusal there comes back as it was. */
  call<M extends AdminMethod>(
    address: string,
    targetCellPath: string,
    method: M,
    req: RequestOf<M>,
    deadlineMs: number,
    forwarded = true,
  ): Promise<ResponseOf<M>> {
    const def = AdminServiceService[method];
    const client = this.client(address, targetCellPath);
    const md = new Metadata();
    if (forwarded) md.set(FORWARDED_HEADER, '1');
    const auth = caller.getStore();
    if (auth) md.set('authorization', auth);
    return new Promise((resolve, reject) => {
      client.makeUnaryRequest(
        def.path,
        def.requestSerialize as (r: RequestOf<M>) => Buffer,
        def.responseDeserialize as (b: Buffer) => ResponseOf<M>,
        req,
        md,
        { deadline: Date.now() + Math.max(1, deadlineMs) },
        (err: ServiceError | null, res?: ResponseOf<M>) => {
          if (err) reject(relayed(err, address));
          else resolve(res!);
        },
      );
    });
  }

  close(): void {
    for (const { client, timer } of this.clients.values()) {
      clearTimeout(timer);
      client.close();
    }
    this.clients.clear();
  }

  private client(address: string, cellPath: string): Client {
    const key = `${cellPath}\n${address}`;
    const had = this.clients.get(key);
    if (had) {
      had.timer.refresh();
      return had.client;
    }
    if (this.clients.size >= MAX_CLIENTS) {
      const [oldKey, oldest] = this.clients.entries().next().value as [
        string,
        { client: Client; timer: NodeJS.Timeout },
      ];
      clearTimeout(oldest.timer);
      oldest.client.close();
      this.clients.delete(oldKey);
    }
    const creds = this.opts.credentials?.(cellPath) ?? credentials.createInsecure();
    const client = new Client(address, creds, {
      'grpc.max_receive_message_length': this.cell.settings.maxMessageBytes,
    });
    const timer = setTimeout(() => {
      this.clients.delete(key);
      client.close();
    }, CLIENT_IDLE_MS);
    timer.unref();
    this.clients.set(key, { client, timer });
    return client;
  }
}

/** A refusal from the replica a call was forwarded to, as ours: same status, message and hints. */
function relayed(err: ServiceError, address: string): MeshError {
  const hints: Record<string, string> = {};
  for (const t of TRAILERS) {
    const v = err.metadata?.get(t)[0];
    if (v !== undefined) hints[t] = String(v);
  }
  const details = err.details || err.message;
  if (err.code === status.UNAVAILABLE || err.code === status.DEADLINE_EXCEEDED) {
    return new MeshError(err.code, `forwarded to ${address}: ${details}`, hints);
  }
  return new MeshError(err.code, details, hints);
}

/** The caller's deadline as milliseconds left (DEFAULT_ADMIN_DEADLINE_MS when it set none), at most 60 s. */
export function msLeft(deadline: Date | number | undefined): number {
  const at = deadline instanceof Date ? deadline.getTime() : deadline;
  if (at === undefined || !Number.isFinite(at)) return DEFAULT_ADMIN_DEADLINE_MS;
  return Math.max(1, Math.min(60_000, at - Date.now()));
}
