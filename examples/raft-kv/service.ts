// The demo KV's client-facing gRPC service. Demo-only, so it is not in the
// product's protos: a hand-written service definition with JSON bodies.
import * as grpc from '@grpc/grpc-js';

const json = {
  serialize: (v: unknown) => Buffer.from(JSON.stringify(v)),
  deserialize: (b: Buffer) => JSON.parse(b.toString('utf8')) as unknown,
};

function unary(name: string) {
  return {
    path: `/meshlb.demo.RaftKv/${name}`,
    requestStream: false,
    responseStream: false,
    requestSerialize: json.serialize,
    requestDeserialize: json.deserialize,
    responseSerialize: json.serialize,
    responseDeserialize: json.deserialize,
  };
}

export const RaftKvService = {
  put: unary('Put'),
  dump: unary('Dump'),
  bench: unary('Bench'),
} satisfies grpc.ServiceDefinition;

export interface PutRequest {
  key: string;
  value: string;
}
export interface PutResponse {
  index: number;
}
/** Dump: every key after a linearizable read barrier. */
export interface DumpResponse {
  entries: [string, string][];
}
/** Bench: `concurrency` local proposers, `count` proposals in total, stop at `maxMs`; latencies in microseconds. */
export interface BenchRequest {
  concurrency: number;
  count: number;
  valueBytes: number;
  maxMs: number;
}
export interface BenchResponse {
  latenciesUs: number[];
  elapsedMs: number;
  errors: number;
}

export const RaftKvClient = grpc.makeGenericClientConstructor(RaftKvService, 'RaftKv');

export function call<Req, Res>(
  client: grpc.Client,
  method: 'put' | 'dump' | 'bench',
  req: Req,
  deadlineMs: number,
): Promise<Res> {
  return new Promise((resolve, reject) => {
    const fn = (
      client as unknown as Record<
        string,
        (r: Req, m: grpc.Metadata, o: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r: Res) => void) => void
      >
    )[method]!;
    fn.call(client, req, new grpc.Metadata(), { deadline: Date.now() + deadlineMs }, (err, res) =>
      err ? reject(err) : resolve(res),
    );
  });
}
