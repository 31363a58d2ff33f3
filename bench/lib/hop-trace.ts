// Where a task's dispatch time goes, hop by hop (BENCH_HOPS=DIR, bench/hops.ts reads it). Each mesh process
// records, per attempt it sends on, the task's sequence number, when it arrived in the cell and when the
// dispatcher sent it on (a cell's tracer hook, tracer.ts `dispatched`); the agents process records when each
// agent started it. Beside them, every `SAMPLE_EVERY` records, the main thread's cumulative time on a CPU
// and waiting for one (Linux schedstat), so a stretch of a task's time in one process splits into running,
// waiting for a CPU and idle (waiting for I/O, a timer or credit). Everything goes into typed arrays: the
// recording must not feed the old generation it is used to explain.
//
// The way back too: each cell records when an attempt's result passed it (the tracer's `resultBack`, just
// before the cell sends it on toward the home), so bench/hops.ts splits submit → result at the root hop by
// hop as well. Each cell also records every timer callback its scheduler ran (start, length: the 50 ms tick
// and its sweeps, summary pacing, link timeouts), so a slow task's hop can be matched against a timer's work
// in the process it waited in; and one process (`machine`) samples the host's stolen time (/proc/stat: a
// vCPU the hypervisor did not run), the one wait no process's schedstat sees.
import { closeSync, openSync, readSync } from 'node:fs';
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

/** A /proc file read again and again through one descriptor (pread at 0: no open or close per read). */
class ProcFile {
  private fd = -1;
  private readonly buf: Buffer;
  constructor(
    private readonly path: string,
    size: number,
  ) {
    this.buf = Buffer.alloc(size);
  }
  /** The file's first bytes as text ('' where /proc is absent). */
  read(): string {
    try {
      if (this.fd < 0) this.fd = openSync(this.path, 'r');
      const n = readSync(this.fd, this.buf, 0, this.buf.length, 0);
      return this.buf.toString('latin1', 0, n);
    } catch {
      return '';
    }
  }
  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }
}

const schedFile = new ProcFile(`/proc/self/task/${process.pid}/schedstat`, 128);
/** This thread's time on a CPU and waiting for one since boot, µs (0, 0 where /proc is absent). */
function schedstat(): [number, number] {
  const f = schedFile.read().split(' ');
  return f.length < 2 ? [0, 0] : [Number(f[0]) / 1000, Number(f[1]) / 1000];
}

const statFile = new ProcFile('/proc/stat', 256);
/** USER_HZ ticks in µs (Linux reports /proc/stat in 1/100 s). */
const TICK_US = 10_000;
/** The host's stolen and idle time over all CPUs since boot, µs (the `cpu` line's 8th and 4th fields). */
function machineStat(): [number, number] {
  const line = statFile.read();
  const f = line.slice(0, line.indexOf('\n')).trim().split(/\s+/);
  return f.length < 9 ? [0, 0] : [Number(f[8]) * TICK_US, Number(f[4]) * TICK_US];
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

/** A CPU sample every this many records (BENCH_HOPS_EVERY; default 2: about one per hop at 500/s). */
const SAMPLE_EVERY = Math.max(1, Number(process.env.BENCH_HOPS_EVERY ?? 2));

/** One process's hop records and its CPU samples. */
export class HopTrace {
  readonly hops = new FlatRecords();
  readonly cpu = new FlatRecords();
  /** Results passing back: seq, when, 0. */
  readonly back = new FlatRecords();
  /** Timer callbacks the cell's scheduler ran: start, length µs, the delay asked for (ms). */
  readonly timers = new FlatRecords();
  /** The host's stolen and idle µs (cumulative, all CPUs), sampled with the CPU (`machine` only). */
  readonly steal = new FlatRecords();
  private n = 0;
  /** machine: this process also samples the host's stolen time. */
  constructor(private readonly machine = false) {}
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
  /** A result passing back through this cell now. */
  recordBack(seq: number): void {
    this.back.push3(seq, nowUs(), 0);
    if (++this.n % SAMPLE_EVERY === 0) this.sample();
  }
  /** A timer callback that ran from `startUs` to now. */
  recordTimer(startUs: number, delayMs: number): void {
    this.timers.push3(startUs, nowUs() - startUs, delayMs);
  }
  /** An arrival stamped by the cell's scheduler (Date.now ms) on nowUs's clock. */
  epochMsToUs(ms: number): number {
    return ms * 1000 + this.epochToUs;
  }
  sample(): void {
    const [run, wait] = schedstat();
    const t = nowUs();
    this.cpu.push3(t, run, wait);
    if (this.machine) {
      const [steal, idle] = machineStat();
      this.steal.push3(t, steal, idle);
    }
  }
  reset(): void {
    this.hops.clear();
    this.cpu.clear();
    this.back.clear();
    this.timers.clear();
    this.steal.clear();
    this.sample();
  }
  /** What the phase file carries (a last CPU sample closes the phase). */
  dump(): { hops: number[]; cpu: number[]; back: number[]; timers: number[]; steal: number[] } {
    this.sample();
    return {
      hops: this.hops.toArray(),
      cpu: this.cpu.toArray(),
      back: this.back.toArray(),
      timers: this.timers.toArray(),
      steal: this.steal.toArray(),
    };
  }
}
