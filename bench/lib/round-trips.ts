// One paced pass of 64-byte round trips on an open bidi stream (the link
// client and link server benches): `rate` a second for `seconds`, after one
// round trip to connect; the client's CPU (this process), the server's
// (`serverPid`, from /proc) per round trip, and the round trips' p50/p99.
import { procCpuUs } from './procfs.js';

/** The part of a bidi call (grpc-js's or the lean client's) a pass uses. */
export interface EchoCall {
  on(event: 'data', fn: () => void): unknown;
  on(event: 'error', fn: () => void): unknown;
  write(msg: Buffer): unknown;
  cancel(): void;
}

export interface RoundTrips {
  roundTrips: number;
  clientUs: number;
  serverUs: number;
  p50Ms: number;
  p99Ms: number;
}

export async function pacedRoundTrips(
  call: EchoCall,
  serverPid: number,
  rate: number,
  seconds: number,
): Promise<RoundTrips> {
  const msg = Buffer.alloc(64, 7);
  const sentAt: bigint[] = [];
  const lat: number[] = [];
  let got = 0;
  call.on('data', () => void lat.push(Number(process.hrtime.bigint() - sentAt[got++]!) / 1e6));
  call.on('error', () => undefined);
  // One round trip to connect before measuring.
  sentAt.push(process.hrtime.bigint());
  call.write(msg);
  while (got < 1) await new Promise((r) => setTimeout(r, 5));
  lat.length = 0;
  const total = Math.round(rate * seconds);
  const cpu0 = process.cpuUsage();
  const srv0 = procCpuUs(serverPid);
  const start = process.hrtime.bigint();
  let sent = 0;
  await new Promise<void>((resolve) => {
    const tick = (): void => {
      const elapsedMs = Number(process.hrtime.bigint() - start) / 1e6;
      for (const due = Math.min(total, Math.floor((elapsedMs * rate) / 1000) + 1); sent < due; sent++) {
        sentAt.push(process.hrtime.bigint());
        call.write(msg);
      }
      if (sent >= total) return resolve();
      // Sleep until the next round trip is due.
      setTimeout(tick, Math.max(0, (sent * 1000) / rate - elapsedMs));
    };
    tick();
  });
  const by = Date.now() + 5000;
  while (got < total + 1 && Date.now() < by) await new Promise((r) => setTimeout(r, 5));
  const c = process.cpuUsage(cpu0);
  const srv = procCpuUs(serverPid) - srv0;
  call.cancel();
  lat.sort((a, b) => a - b);
  const q = (p: number): number =>
    Number((lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] ?? NaN).toFixed(3));
  const n = got - 1;
  return {
    roundTrips: n,
    clientUs: Math.round((c.user + c.system) / n),
    serverUs: Math.round(srv / n),
    p50Ms: q(0.5),
    p99Ms: q(0.99),
  };
}
