// The transport's limit, measured in the same run as the mesh: a bare grpc-js
// bidi echo stream between two processes. `runEcho` spawns this file as the
// server process, then drives one stream from the calling process.
//
// Items are raw byte buffers (identity serializers) so the figure is grpc-js
// itself, not a protobuf codec. Unbatched = one item per message; batched =
// `batch` items framed into one message.
import * as grpc from '@grpc/grpc-js';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const path = '/meshlb.bench.Echo/Stream';
const identity = {
  serialize: (b: Buffer) => b,
  deserialize: (b: Buffer) => b,
};
const definition: grpc.ServiceDefinition = {
  Stream: {
    path,
    requestStream: true,
    responseStream: true,
    requestSerialize: identity.serialize,
    requestDeserialize: identity.deserialize,
    responseSerialize: identity.serialize,
    responseDeserialize: identity.deserialize,
  },
};

async function serve(): Promise<void> {
  const server = new grpc.Server();
  server.addService(definition, {
    Stream: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
      call.on('data', (b: Buffer) => call.write(b));
      call.on('end', () => call.end());
      call.on('error', () => undefined);
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  process.stdout.write(`PORT ${port}\n`);
  process.on('SIGTERM', () => server.forceShutdown());
  process.stdin.on('end', () => {
    server.forceShutdown();
    process.exit(0);
  });
  process.stdin.resume();
}

export interface EchoResult {
  readonly itemsPerMessage: number;
  readonly items: number;
  readonly seconds: number;
  readonly roundTripsPerSecond: number;
}

/**
 * Round trips of `items` items of `itemBytes` each, keeping `window` items in
 * flight, `itemsPerMessage` per gRPC message. Bounded by count and by `maxMs`.
 */
async function drive(
  port: number,
  items: number,
  itemBytes: number,
  itemsPerMessage: number,
  window: number,
  maxMs: number,
): Promise<EchoResult> {
  const Client = grpc.makeGenericClientConstructor(definition, 'Echo');
  const client = new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  const call = client.makeBidiStreamRequest(path, identity.serialize, identity.deserialize) as grpc.ClientDuplexStream<
    Buffer,
    Buffer
  >;
  const message = Buffer.alloc(itemBytes * itemsPerMessage, 7);
  const messages = Math.ceil(items / itemsPerMessage);
  const windowMsgs = Math.max(1, Math.floor(window / itemsPerMessage));
  let sent = 0;
  let received = 0;
  const start = process.hrtime.bigint();
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => resolve(), maxMs);
    const pump = () => {
      while (sent < messages && sent - received < windowMsgs) {
        call.write(message);
        sent++;
      }
    };
    call.on('data', () => {
      received++;
      if (received >= messages) {
        clearTimeout(timer);
        resolve();
      } else pump();
    });
    call.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    pump();
  });
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  call.cancel();
  client.close();
  const done = received * itemsPerMessage;
  return { itemsPerMessage, items: done, seconds, roundTripsPerSecond: done / seconds };
}

/** Spawn the echo server process, measure unbatched and batched round trips, stop it. */
export async function runEcho(
  opts: { items?: number; itemBytes?: number; batch?: number; maxMs?: number } = {},
): Promise<{ unbatched: EchoResult; batched: EchoResult }> {
  const items = opts.items ?? 200_000;
  const itemBytes = opts.itemBytes ?? 64;
  const batch = opts.batch ?? 100;
  const maxMs = opts.maxMs ?? 15_000;
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), 'serve'], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  try {
    const port = await new Promise<number>((resolve, reject) => {
      let buf = '';
      const t = setTimeout(() => reject(new Error('echo server did not start in 15 s')), 15_000);
      child.stdout!.on('data', (d: Buffer) => {
        buf += d.toString();
        const m = /PORT (\d+)/.exec(buf);
        if (m) {
          clearTimeout(t);
          resolve(Number(m[1]));
        }
      });
      child.on('exit', (code) => reject(new Error(`echo server exited ${code}`)));
    });
    // Warm up both paths (JIT, connection) before measuring.
    await drive(port, 20_000, itemBytes, 1, 1000, maxMs);
    const unbatched = await drive(port, items, itemBytes, 1, 1000, maxMs);
    const batched = await drive(port, items * 5, itemBytes, batch, 100 * batch, maxMs);
    return { unbatched, batched };
  } finally {
    child.stdin!.end();
    child.kill('SIGTERM');
  }
}

if (process.argv[2] === 'serve') {
  await serve();
} else if (import.meta.url === `file://${process.argv[1]}`) {
  const r = await runEcho();
  console.log(JSON.stringify(r, null, 2));
}
