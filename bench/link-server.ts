// The two server transports side by side (`npm run bench:link-server`): two
// echo server processes, each a replica server (src/admin/grpc-server.ts)
// serving one bidi method at the link's path, one with the server transport
// grpc-js and one with http2 (the lean server side, src/util/grpc-h2-server.ts).
// This process drives one stream to each with the lean client (as a child
// cell's link does), paced at a low rate (default 500 round trips/s, one
// 64-byte message each way), in alternating passes in one run so machine load
// hits both alike. Per pass: CPU per round trip of the server process and of
// this process (the client), and round-trip p50/p99.
//
// Flags: --rate=N (500), --seconds=S per pass (4), --passes=P per transport (3).
// `tsx bench/link-server.ts serve grpc-js|http2` is the server child.
import type * as grpc from '@grpc/grpc-js';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { startReplicaServer } from '../src/admin/grpc-server.js';
import { H2Channel } from '../src/util/grpc-h2-client.js';
import { parseTransport, TRANSPORTS, type Transport } from '../src/util/transport.js';
import { pacedRoundTrips } from './lib/round-trips.js';

const PATH = '/meshlb.v1.LinkService/Open';
const identity = (b: Uint8Array): Buffer => b as Buffer;

if (process.argv[2] === 'serve') {
  const transport = parseTransport('server', process.argv[3], 'http2');
  const definition = {
    open: {
      path: PATH,
      requestStream: true,
      responseStream: true,
      requestSerialize: identity,
      requestDeserialize: identity,
      responseSerialize: identity,
      responseDeserialize: identity,
    },
  } as unknown as grpc.ServiceDefinition;
  const open = (call: grpc.ServerDuplexStream<Buffer, Buffer>): void => {
    call.on('data', (b: Buffer) => call.write(b));
    call.on('end', () => call.end());
    call.on('error', () => undefined);
  };
  const s = await startReplicaServer({
    services: [{ definition, implementation: { open } }],
    reflection: false,
    transport,
  });
  if (s.transport !== transport) throw new Error(`asked for ${transport}, serving on ${s.transport}`);
  process.stdout.write(`PORT ${s.port}\n`);
  process.stdin.resume();
  process.stdin.on('end', () => void s.close(0).then(() => process.exit(0)));
} else {
  const arg = (name: string, dflt: number): number =>
    Number(process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? dflt);
  const RATE = arg('rate', 500);
  const SECONDS = arg('seconds', 4);
  const PASSES = arg('passes', 3);

  const load = (): string => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

  const start = (t: Transport): Promise<{ child: ChildProcess; address: string }> => {
    const me = fileURLToPath(import.meta.url);
    const child = spawn(process.execPath, ['--import', 'tsx', me, 'serve', t], {
      stdio: ['pipe', 'pipe', 'inherit'],
      env: { ...process.env, MESHLB_LOG_LEVEL: 'warn' },
    });
    return new Promise((resolve, reject) => {
      let buf = '';
      const timer = setTimeout(() => reject(new Error(`${t} server did not start in 15 s`)), 15_000);
      child.stdout!.on('data', (d: Buffer) => {
        const m = /PORT (\d+)/.exec((buf += d.toString()));
        if (m) {
          clearTimeout(timer);
          resolve({ child, address: `127.0.0.1:${m[1]}` });
        }
      });
    });
  };

  const pass = async (t: Transport, address: string, pid: number, seconds: number) => {
    const ch = new H2Channel({ address, maxMessageBytes: 4 << 20 });
    try {
      return { transport: t, ...(await pacedRoundTrips(ch.duplex(PATH, identity, identity), pid, RATE, seconds)) };
    } finally {
      ch.close();
    }
  };

  const servers = new Map<Transport, { child: ChildProcess; address: string }>();
  try {
    for (const t of TRANSPORTS) servers.set(t, await start(t));
    process.stderr.write(`[link-server] ${RATE}/s, ${SECONDS} s per pass, load ${load()}\n`);
    for (const t of TRANSPORTS) await pass(t, servers.get(t)!.address, servers.get(t)!.child.pid!, 6); // warm-up (JIT)
    const rows: Awaited<ReturnType<typeof pass>>[] = [];
    for (let i = 0; i < PASSES; i++)
      for (const t of TRANSPORTS) {
        const s = servers.get(t)!;
        const p = await pass(t, s.address, s.child.pid!, SECONDS);
        rows.push(p);
        process.stderr.write(`[link-server] ${JSON.stringify(p)} load ${load()}\n`);
      }
    for (const t of TRANSPORTS) {
      const mine = rows.filter((r) => r.transport === t);
      const avg = (k: 'serverUs' | 'clientUs'): number => Math.round(mine.reduce((s, r) => s + r[k], 0) / mine.length);
      console.log(
        `${t} server: ${avg('serverUs')} µs CPU per round trip (client ${avg('clientUs')} µs), ${mine.length} passes`,
      );
    }
  } finally {
    for (const s of servers.values()) {
      s.child.stdin!.end();
      s.child.kill('SIGTERM');
    }
  }
}
