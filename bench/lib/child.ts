// The child side of the bench IPC protocol (bench/lib/proc.ts) for bench
// processes other than bench/mesh-proc.ts: answer {cmd: 'reset'},
// {cmd: 'report'} and {cmd: 'count'} with counts, a latency summary and the
// CPU used since the last reset; exit when the parent goes away.
import { readFileSync } from 'node:fs';
import { nowUs, Samples } from './clock.js';
import { LatencyHistogram } from './histogram.js';

type Msg = { cmd: 'reset' } | { cmd: 'report' } | { cmd: 'count' };

function procSelf(file: string): string {
  try {
    return readFileSync(`/proc/self/task/${process.pid}/${file}`, 'utf8');
  } catch {
    return '';
  }
}

/** Times the main thread went to sleep and was woken (Linux; else 0). */
function wakeups(): number {
  const m = /voluntary_ctxt_switches:\s+(\d+)/.exec(procSelf('status'));
  return m ? Number(m[1]) : 0;
}

/** Time the main thread was runnable but waiting for a CPU (Linux schedstat), µs; else 0. */
function runQueueWaitUs(): number {
  return Number(procSelf('schedstat').split(' ')[1] ?? 0) / 1000 || 0;
}

export class ChildReporter {
  private samples = new Samples();
  count = 0;
  lastUs = 0;
  private cpu0 = process.cpuUsage();
  private t0 = nowUs();
  private wake0 = wakeups();
  private wait0 = runQueueWaitUs();

  constructor(private readonly extra: () => Record<string, unknown> = () => ({})) {}

  /** One finished item, `latencyUs` after its submit (NaN: counted, not timed). */
  record(latencyUs: number): void {
    this.count++;
    this.lastUs = nowUs();
    if (latencyUs === latencyUs) this.samples.push(latencyUs);
  }

  reset(): void {
    this.samples = new Samples();
    this.count = 0;
    this.lastUs = 0;
    this.cpu0 = process.cpuUsage();
    this.t0 = nowUs();
    this.wake0 = wakeups();
    this.wait0 = runQueueWaitUs();
  }

  report(): Record<string, unknown> {
    const c = process.cpuUsage(this.cpu0);
    const hist = new LatencyHistogram();
    this.samples.forEach((us) => hist.recordUs(us));
    return {
      type: 'report',
      count: this.count,
      latency: hist.summary(),
      cpuUs: c.user + c.system,
      wakeups: wakeups() - this.wake0,
      runQueueWaitUs: runQueueWaitUs() - this.wait0,
      wallUs: nowUs() - this.t0,
      lastUs: this.lastUs,
      ...this.extra(),
    };
  }

  /** Serve the parent's requests; exit when it disconnects (after `onExit`, bounded by the caller). */
  listen(onExit: () => Promise<void> | void = () => undefined): void {
    process.on('message', (m: Msg) => {
      if (m.cmd === 'reset') {
        this.reset();
        process.send?.({ type: 'reset' });
      } else if (m.cmd === 'report') process.send?.(this.report());
      else if (m.cmd === 'count') process.send?.({ type: 'count', count: this.count, lastUs: this.lastUs });
    });
    process.on('disconnect', () => {
      const hard = setTimeout(() => process.exit(0), 5000);
      hard.unref();
      void Promise.resolve(onExit()).finally(() => process.exit(0));
    });
  }

  ready(extra: Record<string, unknown> = {}): void {
    process.send?.({ type: 'ready', ...extra });
  }
}
