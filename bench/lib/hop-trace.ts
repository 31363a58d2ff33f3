// Where a task's dispatch time goes, hop by hop (BENCH_HOPS=DIR, bench/hops.ts reads it). Each mesh process
// records, per attempt it sends on, the task's sequence number, when it arrived in the cell and when the
// dispatcher sent it on (a cell's tracer hook, tracer.ts `dispatched`); the agents process records when each
// agent started it. Beside them, every `SAMPLE_EVERY` records, the main thread's cumulative time on a CPU
// and waiting for one (Linux schedstat), so a stretch of a task's time in one process splits into running,
// waiting for a CPU and idle (waiting for I/O, a timer or credit). Everything goes into typed arrays: the
// recording must not feed the old generation it is used to explain.
import { readFileSync } from 'node:fs';
import { nowUs } from './clock.js';

/** A growable flat Float64Array of fixed-width records. */
export class FlatRecords {
  private buf = new Float64Array(1 << 15);
  length = 0;
  push3(a: number, b: number, c: number): void {
    if (this.length + 3 > this.buf.length) {
      const next = new Float64Array(this.buf.length * 2);
      next.set(this.buf);
      this.buf = next;
    }
    this.buf[this.length++] = a;
    this.buf[this.length++] = b;
    this.buf[this.length++] = c;
  }
  toArray(): number[] {
    return Array.from(this.buf.subarray(0, this.length), (x) => Math.round(x));
  }
  clear(): void {
    this.length = 0;
  }
}

/** The sequence number of a task id (home-submit.ts TaskIds: 6 random characters, `term-` when replicated, base-36 sequence). */
export function taskSeq(id: string): number {
  const dash = id.lastIndexOf('-');
  return parseInt(id.slice(dash >= 0 ? dash + 1 : 6), 36);
}

/** This thread's time on a CPU and waiting for one since boot, µs (0, 0 where /proc is absent). */
function schedstat(): [number, number] {
  try {
    const f = readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'utf8').split(' ');
    return [Number(f[0]) / 1000, Number(f[1]) / 1000];
  } catch {
    return [0, 0];
  }
}

/**
 * nowUs() - Date.now() * 1000 at the instant Date.now() turns to its next millisecond (a bounded spin, ≤ 1 ms),
 * the least of five: a thread preempted between the tick and the read reads it late.
 */
function epochOffsetUs(): number {
  let best = Infinity;
  for (let i = 0; i < 5; i++) {
    const d0 = Date.now();
    let d = d0;
    while (d === d0) d = Date.now();
    best = Math.min(best, nowUs() - d * 1000);
  }
  return best;
}

const SAMPLE_EVERY = 32;

/** One process's hop records and its CPU samples. */
export class HopTrace {
  readonly hops = new FlatRecords();
  readonly cpu = new FlatRecords();
  private n = 0;
  /**
   * Date.now() ms (what a cell's scheduler stamps arrivals with) to nowUs's clock, taken as Date.now() ticks
   * over; +0.5 ms: a stamp is floored, so the mean arrival is half a millisecond after it.
   */
  private readonly epochToUs = epochOffsetUs() + 500;

  /** A record: the task's sequence number, then two times on nowUs's clock. */
  record(seq: number, aUs: number, bUs: number): void {
    this.hops.push3(seq, aUs, bUs);
    if (++this.n % SAMPLE_EVERY === 0) this.sample();
  }
  /** An arrival stamped by the cell's scheduler (Date.now ms) on nowUs's clock. */
  epochMsToUs(ms: number): number {
    return ms * 1000 + this.epochToUs;
  }
  sample(): void {
    const [run, wait] = schedstat();
    this.cpu.push3(nowUs(), run, wait);
  }
  reset(): void {
    this.hops.clear();
    this.cpu.clear();
    this.sample();
  }
  /** What the phase file carries (a last CPU sample closes the phase). */
  dump(): { hops: number[]; cpu: number[] } {
    this.sample();
    return { hops: this.hops.toArray(), cpu: this.cpu.toArray() };
  }
}
