// The guard: one grpc-js server interceptor that decides, per method, who may
// call it, before the service sees the call. The services themselves know
// nothing of tokens or certificates.
//
//   replicas       LinkService.Open from a replica of one of this cell's
//                  children, RaftService from a replica of this cell: by the
//                  peer's certificate (it must chain to the mesh CA and name
//                  the replica, identity.ts), never by token. A link hello
//                  must name the cell the certificate names.
//   forwarded      a TaskService call a follower of this cell relayed
//                  (meshlb-forwarded) from a replica of this cell: the
//                  follower's guard checked the caller already.
//   tokens         everything else by bearer token and role (METHODS below);
//                  submitters only for their tenants: each spec's tenant on
//                  submit, the task's tenant on Get, Watch, WatchMany (each
//                  id added: one of another tenant ends the stream) and Cancel (admin
//                  roles read and cancel any tenant's tasks).
//   open           health and reflection: probes and grpcurl need them.
//
// With TLS but no `auth`, token rules are not enforced (anyone reaching the
// port may submit, as without security) but replica rules are. A method of a
// served service missing from METHODS is refused: a new method must be placed.
import * as grpc from '@grpc/grpc-js';
import type { Logger } from '../util/log.js';
import { clip, LIMITS } from '../util/limits.js';
import { RETRY_AFTER_TRAILER } from '../util/errors.js';
import { describeIdentity, identitiesOf, replicaOf, type ReplicaIdentity } from './identity.js';
import { ANY_TENANT, describePrincipal, mayUseTenant, type Principal, type Role } from './principal.js';
import { AUTHORIZATION } from './caller.js';
import { AuthError, type Authenticator } from './tokens.js';
import type { TenantQuotas } from './quotas.js';

type Check = 'spec' | 'batch' | 'stream' | 'task' | 'tasks' | 'hello';

interface Rule {
  /** Replicas of which cells may call (by certificate). */
  readonly peer?: 'self' | 'children';
  /** Roles that may call (by token). */
  readonly roles?: readonly Role[];
  /** Roles not limited to their tenants here. */
  readonly anyTenant?: readonly Role[];
  readonly check?: Check;
}

const READ: Role[] = ['admin-read', 'admin-write'];
const WRITE: Role[] = ['admin-write'];

/** Every method a replica serves, but health and reflection. */
export const METHODS: Readonly<Record<string, Rule>> = {
  '/meshlb.v1.TaskService/Submit': { roles: ['submitter'], check: 'spec' },
  '/meshlb.v1.TaskService/SubmitBatch': { roles: ['submitter'], check: 'batch' },
  '/meshlb.v1.TaskService/SubmitStream': { roles: ['submitter'], check: 'stream' },
  '/meshlb.v1.TaskService/Get': { roles: ['submitter', ...READ], anyTenant: READ, check: 'task' },
  '/meshlb.v1.TaskService/Watch': { roles: ['submitter', ...READ], anyTenant: READ, check: 'task' },
  '/meshlb.v1.TaskService/WatchMany': { roles: ['submitter', ...READ], anyTenant: READ, check: 'tasks' },
  '/meshlb.v1.TaskService/Cancel': { roles: ['submitter', ...WRITE], anyTenant: WRITE, check: 'task' },
  '/meshlb.v1.AgentService/Connect': { roles: ['agent'] },
  '/meshlb.v1.AdminService/GetTopology': { roles: READ },
  '/meshlb.v1.AdminService/GetCell': { roles: READ },
  '/meshlb.v1.AdminService/ListAgents': { roles: READ },
  '/meshlb.v1.AdminService/DrainAgent': { roles: WRITE },
  '/meshlb.v1.AdminService/TransferLeader': { roles: WRITE },
  '/meshlb.v1.AdminService/AddReplica': { roles: WRITE },
  '/meshlb.v1.AdminService/RemoveReplica': { roles: WRITE },
  '/meshlb.v1.AdminService/GetMeshStatus': { roles: READ },
  '/meshlb.v1.AdminService/ListTasks': { roles: READ },
  '/meshlb.v1.AdminService/GetTask': { roles: READ },
  '/meshlb.v1.AdminService/ExplainTask': { roles: READ },
  '/meshlb.v1.AdminService/ListDeadLetters': { roles: READ },
  '/meshlb.v1.AdminService/CordonAgent': { roles: WRITE },
  '/meshlb.v1.AdminService/UncordonAgent': { roles: WRITE },
  '/meshlb.v1.AdminService/DrainCell': { roles: WRITE },
  '/meshlb.v1.AdminService/UndrainCell': { roles: WRITE },
  '/meshlb.v1.AdminService/CancelTask': { roles: WRITE },
  '/meshlb.v1.AdminService/RetryTask': { roles: WRITE },
  '/meshlb.v1.AdminService/ReplayDeadLetters': { roles: WRITE },
  '/meshlb.v1.AdminService/SetPolicy': { roles: WRITE },
  '/meshlb.v1.AdminService/SetConcurrencyLimit': { roles: WRITE },
  '/meshlb.v1.AdminService/SetTenantWeight': { roles: WRITE },
  '/meshlb.v1.AdminService/SetTenantShare': { roles: WRITE },
  '/meshlb.v1.AdminService/SetKeyShare': { roles: WRITE },
  '/meshlb.v1.AdminService/GetFlow': { roles: READ },
  '/meshlb.v1.AdminService/SetVersionRamp': { roles: WRITE },
  '/meshlb.v1.AdminService/GetVersionRamp': { roles: READ },
  '/meshlb.v1.AdminService/GetScaleRecommendations': { roles: READ },
  '/meshlb.v1.LinkService/Open': { peer: 'children', check: 'hello' },
  '/meshlb.v1.RaftService/Stream': { peer: 'self' },
  '/meshlb.v1.RaftService/InstallSnapshot': { peer: 'self' },
  '/meshlb.v1.RaftService/Status': { peer: 'self', roles: READ },
};

const OPEN_PREFIXES = [
  '/grpc.health.v1.Health/',
  '/grpc.reflection.v1.ServerReflection/',
  '/grpc.reflection.v1alpha.ServerReflection/',
];
const FORWARDED_HEADER = 'meshlb-forwarded';

export interface GuardOptions {
  readonly meshId: string;
  /** This replica's cell and its children's paths. */
  readonly cell: string;
  readonly children: readonly string[];
  /** Token checks; absent: TLS only, token rules not enforced. */
  readonly auth?: Authenticator | undefined;
  /** The tenant of a task this replica's cell holds (after a read barrier), undefined if unknown. */
  readonly taskTenant: (taskId: string) => Promise<string | undefined>;
  /** Replica rules are enforced only with TLS (no certificate can be checked without it). */
  readonly tls: boolean;
  /** Per-tenant limits on submits, checked while this replica leads (quotas.ts). */
  readonly quotas?: TenantQuotas | undefined;
  readonly leading?: () => boolean;
  readonly log: Logger;
}

interface Refusal {
  readonly code: grpc.status;
  readonly details: string;
  /** A retry hint (RESOURCE_EXHAUSTED), sent as the meshlb-retry-after-ms trailer. */
  readonly retryAfterMs?: number;
}

/** The interceptor to give the replica's grpc.Server (ServerOptions.interceptors). */
export function guardInterceptor(o: GuardOptions): grpc.ServerInterceptor {
  return (method, call) => {
    const path = method.path;
    if (OPEN_PREFIXES.some((p) => path.startsWith(p))) return new grpc.ServerInterceptingCall(call);
    const rule = METHODS[path];
    let principal: Principal | undefined;
    let peer: ReplicaIdentity | undefined;
    let helloSeen = false;
    const refuse = (r: Refusal): void => {
      o.log.warn(
        {
          method: path,
          code: grpc.status[r.code],
          principal: principal?.name ?? peerName(peer),
          peer: call.getPeer(),
          err: r.details,
        },
        'call refused',
      );
      const trailers = new grpc.Metadata();
      if (r.retryAfterMs !== undefined) trailers.set(RETRY_AFTER_TRAILER, String(r.retryAfterMs));
      call.sendStatus({ code: r.code, details: r.details, metadata: trailers });
    };
    const listener = new grpc.ServerListenerBuilder()
      .withOnReceiveMetadata((md, next) => {
        if (!rule) return refuse({ code: grpc.status.PERMISSION_DENIED, details: `${path} is not open to callers` });
        const cert = call.getAuthContext().sslPeerCertificate;
        const cells = rule.peer === 'children' ? o.children : [o.cell];
        peer = replicaOf(cert, o.meshId, cells);
        if (rule.peer && (peer || !o.tls)) return next(md);
        const forwarded = md.get(FORWARDED_HEADER).some((v) => String(v) === '1');
        if (forwarded && path.startsWith('/meshlb.v1.TaskService/') && replicaOf(cert, o.meshId, [o.cell]))
          return next(md);
        if (rule.peer && !(rule.roles && o.auth)) {
          return refuse({ code: grpc.status.UNAUTHENTICATED, details: notReplica(path, cells, o.meshId, cert) });
        }
        if (!o.auth) return next(md);
        try {
          const value = md.get(AUTHORIZATION)[0];
          principal = o.auth.authenticate(typeof value === 'string' ? value : undefined);
        } catch (err) {
          if (!(err instanceof AuthError)) throw err;
          return refuse({ code: grpc.status.UNAUTHENTICATED, details: `${path}: ${err.message}` });
        }
        const roles = rule.roles ?? [];
        if (!roles.some((r) => principal!.roles.has(r))) {
          return refuse({
            code: grpc.status.PERMISSION_DENIED,
            details: `${describePrincipal(principal)} may not call ${path}: it needs the role ${roles.join(' or ')}`,
          });
        }
        o.log.debug({ method: path, principal: principal.name, peer: call.getPeer() }, 'call authorized');
        next(md);
      })
      .withOnReceiveMessage((msg: unknown, next) => {
        const verdict = checkMessage(rule?.check, msg, principal, rule, peer, helloSeen, o);
        helloSeen = true;
        if (verdict === undefined) return next(msg);
        if ('then' in verdict) {
          verdict.then(
            (r) => (r ? refuse(r) : next(msg)),
            () => next(msg), // a lookup that failed (no leader): the service answers for itself
          );
          return;
        }
        refuse(verdict);
      })
      .build();
    return new grpc.ServerInterceptingCall(
      call,
      new grpc.ResponderBuilder().withStart((next) => next(listener)).build(),
    );
  };
}

function peerName(peer: ReplicaIdentity | undefined): string {
  return peer ? `replica ${peer.cell}#${peer.replica}` : 'anonymous';
}

function notReplica(
  path: string,
  cells: readonly string[],
  meshId: string,
  cert: Parameters<typeof identitiesOf>[0],
): string {
  const whose =
    cells.length === 1 ? `cell ${cells[0]}` : cells.length ? `a child cell (${cells.join(', ')})` : 'no cell';
  const has = identitiesOf(cert);
  const why = !cert
    ? 'no client certificate signed by the mesh CA was presented'
    : `its certificate names ${has.length ? has.map(describeIdentity).join(', ') : 'no meshlb replica'}`;
  return `${path} takes only a replica of ${whose} in mesh ${meshId}, authenticated by its certificate; ${why}`;
}

interface SpecLike {
  tenant: string;
}

/** Submits per tenant against the quotas, where this replica decides (it leads). All or none. */
function quotaRefusal(specs: readonly (SpecLike | undefined)[], o: GuardOptions): Refusal | undefined {
  if (!o.quotas || !(o.leading?.() ?? true)) return undefined;
  const per = new Map<string, number>();
  for (const s of specs) if (s && typeof s.tenant === 'string') per.set(s.tenant, (per.get(s.tenant) ?? 0) + 1);
  for (const [tenant, n] of per) {
    const r = o.quotas.admit(tenant, n);
    if (r) return { code: grpc.status.RESOURCE_EXHAUSTED, details: r.message, retryAfterMs: r.retryAfterMs };
  }
  return undefined;
}

/** A spec's tenant against the principal's: a spec naming none gets the principal's only tenant. */
function tenantRefusal(p: Principal, spec: SpecLike | undefined, what: string): Refusal | undefined {
  if (!spec || typeof spec.tenant !== 'string') return undefined; // malformed: the service answers INVALID_ARGUMENT
  const own = [...p.tenants];
  if (spec.tenant === '' && own.length === 1 && own[0] !== ANY_TENANT) spec.tenant = own[0]!;
  if (mayUseTenant(p, spec.tenant)) return undefined;
  return {
    code: grpc.status.PERMISSION_DENIED,
    details: `${what} is for tenant ${clip(spec.tenant)}, and ${describePrincipal(p)} may not submit for it`,
  };
}

function checkMessage(
  check: Check | undefined,
  msg: unknown,
  principal: Principal | undefined,
  rule: Rule | undefined,
  peer: ReplicaIdentity | undefined,
  helloSeen: boolean,
  o: GuardOptions,
): Refusal | undefined | Promise<Refusal | undefined> {
  if (typeof msg !== 'object' || msg === null || '$invalid' in msg) return undefined;
  if (check === 'hello') {
    const m = (msg as { msg?: { $case: string; value: { cell?: string } } }).msg;
    if (helloSeen || !peer || m?.$case !== 'hello' || m.value.cell === peer.cell) return undefined;
    return {
      code: grpc.status.PERMISSION_DENIED,
      details: `link hello names cell ${clip(m.value.cell ?? '')}, but the peer's certificate is for ${describeIdentity(peer)}`,
    };
  }
  switch (check) {
    case 'spec':
    case 'stream':
    case 'batch': {
      const specs =
        check === 'batch' ? ((msg as { tasks?: SpecLike[] }).tasks ?? []) : [(msg as { task?: SpecLike }).task];
      if (principal) {
        for (let i = 0; i < specs.length; i++) {
          const r = tenantRefusal(principal, specs[i], check === 'batch' ? `tasks[${i}]` : 'the task');
          if (r) return r;
        }
      }
      return quotaRefusal(specs, o);
    }
    case 'task':
    case 'tasks': {
      if (!principal) return undefined;
      if (rule?.anyTenant?.some((r) => principal.roles.has(r))) return undefined;
      const ids = check === 'task' ? [(msg as { taskId?: unknown }).taskId] : (msg as { taskIds?: unknown[] }).taskIds;
      const valid = (ids ?? []).filter(
        (id): id is string => typeof id === 'string' && id !== '' && id.length <= LIMITS.taskId,
      );
      if (valid.length === 0) return undefined;
      return Promise.all(valid.map((id) => o.taskTenant(id))).then((tenants) => {
        const i = tenants.findIndex((t) => t !== undefined && !mayUseTenant(principal, t));
        return i < 0
          ? undefined
          : {
              code: grpc.status.PERMISSION_DENIED,
              details: `task ${clip(valid[i]!)} belongs to another tenant; ${describePrincipal(principal)} may not see or cancel it`,
            };
      });
    }
    default:
      return undefined;
  }
}
