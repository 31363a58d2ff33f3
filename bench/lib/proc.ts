// A bench child process (bench/mesh-proc.ts, forked with IPC): start it, wait
// for its 'ready', ask it to reset or report, stop it.
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { LatencySummary } from './histogram.js';

const PROC = fileURLToPath(new URL('../mesh-proc.ts', import.meta.url));

/** A process's answer to {cmd: 'report'}: counts and CPU since its last reset, plus role-specific extras. */
export interface Report {
  type: 'report';
  count: number;
  latency: LatencySummary;
  cpuUs: number;
  /** Of cpuUs, the time in the kernel. */
  cpuSystemUs: number;
  wakeups: number;
  runQueueWaitUs: number;
  wallUs: number;
  lastUs: number;
  [k: string]: unknown;
}

/** What a bench child process sends over IPC: JSON, read field by field. */
export interface ProcMessage {
  readonly type?: string;
  readonly addresses: Record<string, string>;
  readonly count: number;
}

export class Proc {
  private readonly waiters: ((m: ProcMessage) => void)[] = [];
  readonly exited: Promise<number | null>;
  constructor(
    readonly name: string,
    readonly child: ChildProcess,
  ) {
    child.on('message', (m) => {
      const i = this.waiters.findIndex(() => true);
      if (i >= 0) this.waiters.splice(i, 1)[0]!(m as ProcMessage);
    });
    this.exited = new Promise((res) => child.on('exit', (code) => res(code)));
  }

  /** Fork `script` (default bench/mesh-proc.ts; any file speaking the same IPC) with `args`; resolves on its 'ready'. */
  static start(name: string, args: string[], script: string = PROC): Promise<[Proc, ProcMessage]> {
    const child = fork(script, args, {
      execArgv: [
        '--import',
        'tsx',
        ...(process.env.BENCH_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROF}`] : []),
        ...(process.env.BENCH_TRACE_GC ? ['--trace-gc'] : []),
        // Extra V8/node flags for the mesh processes, e.g. BENCH_NODE_FLAGS=--max-semi-space-size=32
        ...(process.env.BENCH_NODE_FLAGS ? process.env.BENCH_NODE_FLAGS.split(' ').filter(Boolean) : []),
      ],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      env: { ...process.env, MESHLB_LOG_LEVEL: process.env.MESHLB_LOG_LEVEL ?? 'warn' },
    });
    const p = new Proc(name, child);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        // Not ready: do not leave it running behind a failed bench.
        child.kill('SIGKILL');
        reject(new Error(`${name} did not start in 60 s`));
      }, 60_000);
      p.next().then((m) => {
        clearTimeout(t);
        resolve([p, m]);
      });
      void p.exited.then((code) => reject(new Error(`${name} exited ${code} before ready`)));
    });
  }

  private next(): Promise<ProcMessage> {
    return new Promise((res) => this.waiters.push(res));
  }

  async ask(cmd: 'reset' | 'report' | 'count'): Promise<ProcMessage> {
    const r = this.next();
    this.child.send({ cmd });
    return r;
  }

  report(): Promise<Report> {
    return this.ask('report') as unknown as Promise<Report>;
  }

  get pid(): number {
    return this.child.pid!;
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    if (this.child.connected) this.child.disconnect();
    const t = setTimeout(() => this.child.kill('SIGKILL'), 3000);
    await this.exited;
    clearTimeout(t);
  }
}
