// One replica of the demo KV as its own OS process:
//   node --import tsx examples/raft-kv/server.ts --id n1 --port 7001 --dir /tmp/x/n1 \
//        --peers n1=127.0.0.1:7001,n2=127.0.0.1:7002,n3=127.0.0.1:7003
// Serves RaftService (peer traffic + Status) and the demo RaftKv service on one
// port; prints "READY <port>" once serving. SIGTERM stops it cleanly.
import { parseArgs } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { GrpcTransport, RaftReplica, registerRaftService } from '../../src/raft/index.js';
import { toServiceError } from '../../src/util/errors.js';
import { logger } from '../../src/util/log.js';
import { toMeshError } from '../../src/util/raft-status.js';
import { KvStateMachine, putCommand } from './state.js';
import { RaftKvService, type BenchRequest, type BenchResponse, type PutRequest } from './service.js';

const GROUP = 'demo';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { id: { type: 'string' }, port: { type: 'string' }, dir: { type: 'string' }, peers: { type: 'string' } },
  });
  const id = values.id!;
  const peers = Object.fromEntries(values.peers!.split(',').map((p) => p.split('=') as [string, string]));
  const server = new grpc.Server({ 'grpc.max_receive_message_length': 64 << 20 });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`127.0.0.1:${values.port ?? 0}`, grpc.ServerCredentials.createInsecure(), (e, p) =>
      e ? reject(e) : resolve(p),
    ),
  );
  const kv = new KvStateMachine();
  // The Raft library is silent unless given loggers: hand it the product's (pino fits RaftLogger).
  const replica = new RaftReplica({
    groupId: GROUP,
    id,
    peers,
    dataDir: values.dir!,
    stateMachine: kv,
    transport: new GrpcTransport({
      groupId: GROUP,
      self: id,
      peers,
      log: logger({ component: 'raft-transport', group: GROUP, node: id }),
    }),
    log: logger({ component: 'raft', group: GROUP, node: id }),
  });
  registerRaftService(server, replica, { log: logger({ component: 'raft-service' }) });
  server.addService(RaftKvService, {
    put: (call: grpc.ServerUnaryCall<PutRequest, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      replica.propose(putCommand(call.request.key, call.request.value)).then(
        (index) => cb(null, { index }),
        (err: unknown) => cb(toServiceError(toMeshError(err))),
      );
    },
    dump: (_call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      replica.read().then(
        () => cb(null, { entries: [...kv.data] }),
        (err: unknown) => cb(toServiceError(toMeshError(err))),
      );
    },
    bench: (call: grpc.ServerUnaryCall<BenchRequest, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      runBench(replica, call.request).then(
        (r) => cb(null, r),
        (err: unknown) => cb(toServiceError(toMeshError(err))),
      );
    },
  });
  process.on('SIGTERM', () => {
    void replica.stop().finally(() => server.tryShutdown(() => process.exit(0)));
  });
  process.stdout.write(`READY ${port}\n`);
}

/** Proposers inside the leader's process: measures Raft commit (propose -> applied here), not client RPCs. */
async function runBench(replica: RaftReplica, req: BenchRequest): Promise<BenchResponse> {
  // putCommand(key8, value) is 15 bytes of JSON + an 8-byte key + the value: entries of exactly valueBytes.
  const value = 'v'.repeat(Math.max(0, req.valueBytes - 23));
  const latenciesUs: number[] = [];
  let issued = 0;
  let errors = 0;
  const start = performance.now();
  const deadline = start + req.maxMs;
  await Promise.all(
    Array.from({ length: req.concurrency }, async (_, w) => {
      while (issued < req.count && performance.now() < deadline) {
        const n = issued++;
        const t = performance.now();
        try {
          const key = `b${String(w % 1000).padStart(3, '0')}-${String(n % 1000).padStart(3, '0')}`;
          await replica.propose(putCommand(key, value), { timeoutMs: 10_000 });
          latenciesUs.push(Math.round((performance.now() - t) * 1000));
        } catch {
          errors++;
        }
      }
    }),
  );
  return { latenciesUs, elapsedMs: performance.now() - start, errors };
}

void main();
