// The link's two client transports side by side (`npm run bench:link-client`):
// grpc-js's client and the lean client on node:http2 (src/util/grpc-h2-client.ts),
// each driving one bidi stream to the same grpc-js echo server process
// (bench/echo.ts), paced at a low rate (default 500 round trips/s, one 64-byte
// message each way, as the link at 500 tasks/s), in alternating passes in one
// run so machine load hits both alike. Per pass: CPU per round trip of this
// process (the client side) and of the server process, and round-trip p50/p99.
//
// Flags: --rate=N (500), --seconds=S per pass (4), --passes=P per transport (3).
import * as grpc from '@grpc/grpc-js';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { H2Channel } from '../src/util/grpc-h2-client.js';
import { pacedRoundTrips, type RoundTrips } from './lib/round-trips.js';

const arg = (name: string, dflt: number): number =>
  Number(process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? dflt);
const RATE = arg('rate', 500);
const SECONDS = arg('seconds', 4);
const PASSES = arg('passes', 3);
const PATH = '/meshlb.bench.Echo/Stream';
const identity = (b: Uint8Array): Buffer => b as Buffer;

interface Stream {
  write(b: Buffer): void;
  on(e: 'data', l: (b: Buffer) => void): unknown;
  on(e: 'error', l: (e: Error) => void): unknown;
  cancel(): void;
}
type Transport = 'grpc-js' | 'http2';

function open(t: Transport, address: string): { call: Stream; close(): void } {
  if (t === 'http2') {
    const ch = new H2Channel({ address, maxMessageBytes: 4 << 20 });
    const call = ch.duplex(PATH, identity, identity);
    return { call: call as unknown as Stream, close: () => ch.close() };
  }
  const Client = grpc.makeGenericClientConstructor(
    {
      Stream: {
        path: PATH,
        requestStream: true,
        responseStream: true,
        requestSerialize: identity,
        requestDeserialize: identity,
        responseSerialize: identity,
        responseDeserialize: identity,
      },
    },
    'Echo',
  );
  const client = new Client(address, grpc.credentials.createInsecure());
  const call = client.makeBidiStreamRequest(PATH, identity, identity) as unknown as Stream;
  return { call, close: () => client.close() };
}

interface Pass extends RoundTrips {
  transport: Transport;
}

async function pass(t: Transport, address: string, serverPid: number, seconds: number): Promise<Pass> {
  const { call, close } = open(t, address);
  try {
    return { transport: t, ...(await pacedRoundTrips(call, serverPid, RATE, seconds)) };
  } finally {
    close();
  }
}

const echo = fileURLToPath(new URL('./echo.ts', import.meta.url));
const child = spawn(process.execPath, ['--import', 'tsx', echo, 'serve'], { stdio: ['pipe', 'pipe', 'inherit'] });
try {
  const port = await new Promise<number>((resolve, reject) => {
    let buf = '';
    const t = setTimeout(() => reject(new Error('echo server did not start in 15 s')), 15_000);
    child.stdout!.on('data', (d: Buffer) => {
      const m = /PORT (\d+)/.exec((buf += d.toString()));
      if (m) {
        clearTimeout(t);
        resolve(Number(m[1]));
      }
    });
  });
  const address = `127.0.0.1:${port}`;
  const load = (): string => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  process.stderr.write(`[link-client] ${RATE}/s, ${SECONDS} s per pass, load ${load()}\n`);
  // Warm-up of both (JIT, server), not reported.
  for (const t of ['grpc-js', 'http2'] as const) await pass(t, address, child.pid!, 2);
  const rows: Pass[] = [];
  for (let i = 0; i < PASSES; i++)
    for (const t of ['grpc-js', 'http2'] as const) {
      const p = await pass(t, address, child.pid!, SECONDS);
      rows.push(p);
      process.stderr.write(`[link-client] ${JSON.stringify(p)}\n`);
    }
  process.stderr.write(`[link-client] load after ${load()}\n`);
  for (const t of ['grpc-js', 'http2'] as const) {
    const mine = rows.filter((r) => r.transport === t);
    const avg = (k: 'clientUs' | 'serverUs'): number => Math.round(mine.reduce((s, r) => s + r[k], 0) / mine.length);
    console.log(
      `${t}: client ${avg('clientUs')} µs, server ${avg('serverUs')} µs CPU per round trip (mean of ${mine.length} passes)`,
    );
  }
} finally {
  child.stdin!.end();
  child.kill('SIGTERM');
}
