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

const scratch = new Float64Array(1);
const scratchBytes = new Uint8Array(scratch.buffer);

/** The time at the start of a payload made by stampPayload; NaN if absent. Allocates nothing. */
export function payloadTimeUs(p: Uint8Array): number {
  if (p.length < 8) return Number.NaN;
  for (let i = 0; i < 8; i++) scratchBytes[i] = p[i]!;
  return scratch[0]!;
}

/**
 * Latency samples (µs) kept in a flat array while a measurement runs and put
 * into a histogram only when asked, so recording costs the measured process
 * next to nothing. Keeps at most `cap` samples (the first ones).
 */
export class Samples {
  private buf: Float64Array;
  length = 0;
  constructor(private readonly cap = 2_000_000) {
    this.buf = new Float64Array(1024);
  }
  push(us: number): void {
    if (this.length >= this.buf.length) {
      if (this.length >= this.cap) return;
      const next = new Float64Array(Math.min(this.cap, this.buf.length * 2));
      next.set(this.buf);
      this.buf = next;
    }
    this.buf[this.length++] = us;
  }
  forEach(f: (us: number) => void): void {
    for (let i = 0; i < this.length; i++) f(this.buf[i]!);
  }
}
