// grpc.health.v1 for a replica: the overall status ("") and one per service,
// so `grpcurl -plaintext HOST:PORT grpc.health.v1.Health/Check` and Kubernetes'
// native `grpc:` probes work. Serving uses grpc-health-check's implementation
// (Check, Watch, List); what reflection says about it comes from
// ./reflection.ts, which fixes the descriptor of List's map field.
import type * as grpc from '@grpc/grpc-js';
import { HealthImplementation } from 'grpc-health-check';

export type ServingStatus = 'SERVING' | 'NOT_SERVING';

/** The per-service and overall health of one replica. */
export class ReplicaHealth {
  private readonly impl = new HealthImplementation({});
  private readonly statuses = new Map<string, ServingStatus>();

  /** `service` is a fully qualified name ("meshlb.v1.TaskService"), or "" for the whole replica. */
  setServing(service: string, serving: boolean): void {
    const s: ServingStatus = serving ? 'SERVING' : 'NOT_SERVING';
    this.statuses.set(service, s);
    this.impl.setStatus(service, s);
  }

  /** Every service at once (used on shutdown). */
  setAll(serving: boolean): void {
    for (const service of this.statuses.keys()) this.setServing(service, serving);
  }

  status(service: string): ServingStatus | undefined {
    return this.statuses.get(service);
  }

  addToServer(server: grpc.Server): void {
    this.impl.addToServer(server);
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
