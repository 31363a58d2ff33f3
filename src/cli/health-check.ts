// A grpc.health.v1 Check client: `meshlb health`, compose healthchecks and
// `meshlb sim` waiting for replicas. Never throws: failures come back as a
// status string (UNREACHABLE, NOT_FOUND, ...).
import * as grpc from '@grpc/grpc-js';
import { service as healthService } from 'grpc-health-check';
import { callerCredentials, type CallerSecurity } from '../security/caller.js';

const HealthClient = grpc.makeGenericClientConstructor(healthService as grpc.ServiceDefinition, 'Health');

export async function checkHealth(
  address: string,
  service = '',
  timeoutMs = 2000,
  security: CallerSecurity = {},
): Promise<string> {
  // A private subchannel: a shared one would still be in reconnect backoff from
  // the previous failed probe, and a probe must see the server as it is now.
  const client = new HealthClient(address, callerCredentials(security) ?? grpc.credentials.createInsecure(), {
    'grpc.use_local_subchannel_pool': 1,
  }) as unknown as grpc.Client & {
    check(
      req: { service: string },
      opts: grpc.CallOptions,
      cb: (err: grpc.ServiceError | null, res?: { status: string }) => void,
    ): void;
  };
  try {
    return await new Promise<string>((resolve) =>
      client.check({ service }, { deadline: Date.now() + timeoutMs }, (err, res) => {
        if (err)
          resolve(
            err.code === grpc.status.NOT_FOUND
              ? 'NOT_FOUND'
              : err.code === grpc.status.UNAVAILABLE || err.code === grpc.status.DEADLINE_EXCEEDED
                ? 'UNREACHABLE'
                : `ERROR ${grpc.status[err.code]}`,
          );
        else resolve(res?.status ?? 'UNKNOWN');
      }),
    );
  } finally {
    client.close();
  }
}
