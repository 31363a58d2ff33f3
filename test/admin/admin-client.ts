// The generated AdminService client, one promise per call, requests filled
// from partial objects (as grpcurl fills omitted fields with defaults).
import { credentials, status, type ChannelCredentials, type ServiceError } from '@grpc/grpc-js';
import { AdminServiceClient, AdminServiceService } from '../../src/gen/meshlb/v1/admin.js';

type Service = typeof AdminServiceService;
export type Method = keyof Service;
type Req<M extends Method> = Parameters<Service[M]['requestSerialize']>[0];
type Res<M extends Method> = ReturnType<Service[M]['responseDeserialize']>;

export interface Admin {
  call<M extends Method>(method: M, req?: Partial<Req<M>>, timeoutMs?: number): Promise<Res<M>>;
  /** The status a call is refused with (fails the test if it succeeds). */
  refused<M extends Method>(
    method: M,
    req?: Partial<Req<M>>,
  ): Promise<{ code: status; details: string; err: ServiceError }>;
  close(): void;
}

export function adminAt(address: string, creds: ChannelCredentials = credentials.createInsecure()): Admin {
  const client = new AdminServiceClient(address, creds);
  const call = <M extends Method>(method: M, req: Partial<Req<M>> = {}, timeoutMs = 10_000): Promise<Res<M>> => {
    const def = AdminServiceService[method];
    // Every field the caller leaves out at its default (as grpcurl sends it).
    const full = { ...def.requestDeserialize(Buffer.alloc(0)), ...req } as Req<M>;
    return new Promise((resolve, reject) => {
      client.makeUnaryRequest(
        def.path,
        def.requestSerialize as (r: Req<M>) => Buffer,
        def.responseDeserialize as (b: Buffer) => Res<M>,
        full,
        { deadline: Date.now() + timeoutMs },
        (err: ServiceError | null, res?: Res<M>) => (err ? reject(err) : resolve(res!)),
      );
    });
  };
  return {
    call,
    async refused(method, req) {
      const err = await call(method, req).then(
        () => undefined,
        (e: unknown) => e as ServiceError,
      );
      if (!err) throw new Error(`${method} was expected to be refused`);
      return { code: err.code, details: err.details, err };
    },
    close: () => client.close(),
  };
}
