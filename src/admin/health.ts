// grpc.health.v1 for a replica: the overall status ("") and one per service it
// serves, so `grpcurl -plaintext HOST:PORT grpc.health.v1.Health/Check` and
// Kubernetes' native `grpc:` probes work. A service the replica does not
// serve is unknown: Check answers NOT_FOUND, Watch SERVICE_UNKNOWN.
//
// Served here rather than by grpc-health-check's HealthImplementation (whose
// service definition we keep) because that one echoes the whole service name
// into the NOT_FOUND message — a 1 MB name made a trailer no client receives,
// so Check hung — and keeps a watcher for any name a caller makes up. Here
// names are bounded (LIMITS.healthService), echoed clipped, and health Watch
// streams are bounded per replica (LIMITS.healthWatchers). What reflection
// says about this service comes from ./reflection.ts.
import * as grpc from '@grpc/grpc-js';
import { service as healthService } from 'grpc-health-check';
import { isUndecodable, tolerantService } from '../mesh/grpc-util.js';
import { checkLength, invalidArgument, resourceExhausted, toServiceError } from '../util/errors.js';
import { clip, LIMITS } from '../util/limits.js';

export type ServingStatus = 'SERVING' | 'NOT_SERVING';
type WatchStatus = ServingStatus | 'SERVICE_UNKNOWN';

interface HealthRequest {
  service: string;
}
interface HealthResponse {
  status: WatchStatus;
}

/** The request's service name, within its limit; throws INVALID_ARGUMENT. */
function serviceOf(req: unknown): string {
  if (isUndecodable(req)) throw invalidArgument(`undecodable request: ${req.$invalid}`);
  const service = String((req as HealthRequest).service ?? '');
  checkLength('service', service, LIMITS.healthService);
  return service;
}

/** The per-service and overall health of one replica. */
export class ReplicaHealth {
  private readonly statuses = new Map<string, ServingStatus>();
  private readonly watchers = new Map<string, Set<(s: WatchStatus) => void>>();
  private watching = 0;

  /** `service` is a fully qualified name ("meshlb.v1.TaskService"), or "" for the whole replica. */
  setServing(service: string, serving: boolean): void {
    const s: ServingStatus = serving ? 'SERVING' : 'NOT_SERVING';
    this.statuses.set(service, s);
    for (const w of this.watchers.get(service) ?? []) w(s);
  }

  /** Every service at once (used on shutdown). */
  setAll(serving: boolean): void {
    for (const service of this.statuses.keys()) this.setServing(service, serving);
  }

  status(service: string): ServingStatus | undefined {
    return this.statuses.get(service);
  }

  /** The names with a status: "" and every service served. */
  services(): string[] {
    return [...this.statuses.keys()];
  }

  addToServer(server: grpc.Server): void {
    server.addService(tolerantService(healthService as grpc.ServiceDefinition), {
      check: (call: grpc.ServerUnaryCall<unknown, HealthResponse>, cb: grpc.sendUnaryData<HealthResponse>) => {
        try {
          const service = serviceOf(call.request);
          const s = this.statuses.get(service);
          if (s) cb(null, { status: s });
          else cb({ code: grpc.status.NOT_FOUND, details: `health status unknown for service ${clip(service)}` });
        } catch (err) {
          cb(toServiceError(err), null);
        }
      },
      watch: (call: grpc.ServerWritableStream<unknown, HealthResponse>) => this.watch(call),
      list: (_call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => {
        const statuses: Record<string, HealthResponse> = {};
        for (const [service, status] of this.statuses) statuses[service] = { status };
        cb(null, { statuses });
      },
    });
  }

  /** The status now and at every change; SERVICE_UNKNOWN (the call stays open) for a name not served. */
  private watch(call: grpc.ServerWritableStream<unknown, HealthResponse>): void {
    let service: string;
    try {
      service = serviceOf(call.request);
      if (this.watching >= LIMITS.healthWatchers) {
        throw resourceExhausted(`${this.watching} health watchers on this replica, the limit`, 1000);
      }
    } catch (err) {
      call.emit('error', toServiceError(err));
      return;
    }
    const write = (status: WatchStatus): void => {
      call.write({ status });
    };
    let set = this.watchers.get(service);
    if (!set) this.watchers.set(service, (set = new Set()));
    set.add(write);
    this.watching++;
    const drop = (): void => {
      const s = this.watchers.get(service);
      if (!s?.delete(write)) return;
      this.watching--;
      if (s.size === 0) this.watchers.delete(service);
    };
    call.on('cancelled', drop);
    call.on('close', drop);
    call.on('error', drop);
    write(this.statuses.get(service) ?? 'SERVICE_UNKNOWN');
  }
}

/** "meshlb.v1.TaskService" from a service definition's method paths ("/meshlb.v1.TaskService/Submit"). */
export function serviceNameOf(definition: grpc.ServiceDefinition): string {
  const first = Object.values(definition)[0];
  if (!first) throw new Error('service definition without methods');
  const m = /^\/([^/]+)\//.exec(first.path);
  if (!m) throw new Error(`unexpected method path ${first.path}`);
  return m[1]!;
}
