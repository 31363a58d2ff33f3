// A clock shared by every process on one host: process.hrtime is
// CLOCK_MONOTONIC, so a time taken in one process can be compared with one
// taken in another (benchmarks carry submit times inside task payloads).

/** Microseconds on the host's monotonic clock. */
export const nowUs = (): number => Number(process.hrtime.bigint() / 1000n);

/** A payload of `bytes` (>= 8) that starts with `us` as a float64. */
export function stampPayload(us: number, bytes = 8): Buffer {
  const b = Buffer.alloc(Math.max(8, bytes));
  b.writeDoubleLE(us, 0);
  return b;
}

/** The time at the start of a payload made by stampPayload; NaN if absent. */
export function payloadTimeUs(p: Uint8Array): number {
  if (p.length < 8) return Number.NaN;
  return Buffer.from(p.buffer, p.byteOffset, 8).readDoubleLE(0);
}
