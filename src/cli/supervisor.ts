// Child-process supervision for `meshlb sim`: start named processes, kill -9
// and restart them (chaos), pause and resume them (a partition, as seen from
// the others: the process stops answering without closing its sockets), and
// tear everything down — on success, on error, on SIGINT/SIGTERM, and (kill -9
// only, synchronously) when this process exits; when it is itself killed -9,
// each child sees its parent pipe close and stops (parent-watch.ts). Nothing
// is left running.
import { spawn, type ChildProcess } from 'node:child_process';
import { PARENT_FD_ENV } from './parent-watch.js';

export interface ProcSpec {
  name: string;
  command: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Keep stdout in memory (e.g. the submit job's JSON); otherwise it goes to onOutput. */
  captureStdout?: boolean;
  /** A job that ends by itself (its exit is not reported as unexpected). */
  job?: boolean;
}

export interface Proc {
  readonly spec: ProcSpec;
  child: ChildProcess;
  /** Starts counted from 1; restarts add one. */
  starts: number;
  stdout: string;
  /** The last lines of the current incarnation's output (not captured stdout), to say why it died. */
  tail: string[];
  /** Resolves with the exit code (or 128+signal) of the current incarnation. */
  exited: Promise<number>;
  running: boolean;
  paused: boolean;
}

export interface SupervisorOptions {
  /** Lines of child output (stderr, and stdout unless captured), prefixed with the name. */
  onOutput?: (name: string, line: string) => void;
  /** Called when a child exits on its own (not by stop()/kill()). */
  onUnexpectedExit?: (name: string, code: number) => void;
}

const TAIL_LINES = 20;
const SIGNAL_CODES: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15 };

export class Supervisor {
  private readonly procs = new Map<string, Proc>();
  private readonly expectedExit = new Set<ChildProcess>();
  private readonly onExitSync = () => this.killAllSync();
  private signalHandler?: (sig: NodeJS.Signals) => void;
  private stopping = false;
  /** Every pid ever spawned, to prove none is left behind. */
  readonly everPids: number[] = [];

  constructor(private readonly opts: SupervisorOptions = {}) {
    process.on('exit', this.onExitSync);
  }

  get names(): string[] {
    return [...this.procs.keys()];
  }

  get(name: string): Proc {
    const p = this.procs.get(name);
    if (!p) throw new Error(`no process named ${name}`);
    return p;
  }

  /** Every pid currently running (for checks that nothing is left behind). */
  pids(): number[] {
    return [...this.procs.values()].filter((p) => p.running && p.child.pid).map((p) => p.child.pid!);
  }

  start(spec: ProcSpec): Proc {
    if (this.stopping) throw new Error('supervisor is stopping');
    if (this.procs.get(spec.name)?.running) throw new Error(`${spec.name} is already running`);
    const prev = this.procs.get(spec.name);
    const proc: Proc =
      prev ?? ({ spec, starts: 0, stdout: '', tail: [] as string[], running: false, paused: false } as Proc);
    this.launch(proc);
    this.procs.set(spec.name, proc);
    return proc;
  }

  private launch(proc: Proc): void {
    const { spec } = proc;
    const child = spawn(spec.command, spec.args, {
      cwd: spec.cwd,
      // fd 3: a pipe the child watches, so it stops when this process dies (parent-watch.ts).
      env: { ...(spec.env ?? process.env), [PARENT_FD_ENV]: '3' },
      stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
    });
    proc.child = child;
    if (child.pid) this.everPids.push(child.pid);
    proc.starts += 1;
    proc.running = true;
    proc.paused = false;
    proc.stdout = '';
    proc.tail = [];
    const line = (l: string) => {
      proc.tail.push(l);
      if (proc.tail.length > TAIL_LINES) proc.tail.shift();
      this.opts.onOutput?.(spec.name, l);
    };
    const lines = (stream: NodeJS.ReadableStream, capture: boolean) => {
      let buf = '';
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => {
        if (capture) {
          proc.stdout += chunk;
          return;
        }
        buf += chunk;
        let i: number;
        while ((i = buf.indexOf('\n')) >= 0) {
          line(buf.slice(0, i));
          buf = buf.slice(i + 1);
        }
      });
      stream.on('end', () => {
        if (buf) line(buf);
      });
    };
    lines(child.stdout!, spec.captureStdout === true);
    lines(child.stderr!, false);
    proc.exited = new Promise<number>((resolve) => {
      let finished = false;
      const done = (code: number | null, signal: NodeJS.Signals | null) => {
        if (finished) return; // a failed spawn reports 'error' and may still 'close'
        finished = true;
        proc.running = false;
        const c = code ?? 128 + (signal ? (SIGNAL_CODES[signal] ?? 0) : 0);
        if (!this.expectedExit.delete(child) && !spec.job) this.opts.onUnexpectedExit?.(spec.name, c);
        resolve(c);
      };
      // 'close', not 'exit': by then its output is all read (the submit job's JSON, a dying replica's last words).
      child.once('close', done);
      child.once('error', (err) => {
        this.opts.onOutput?.(spec.name, `spawn failed: ${err.message}`);
        if (child.exitCode === null && child.pid === undefined) done(127, null);
      });
    });
  }

  /** kill -9 (chaos). Resolves once it is gone. */
  async kill(name: string): Promise<void> {
    const p = this.get(name);
    if (!p.running) return;
    this.expectedExit.add(p.child);
    p.child.kill('SIGKILL');
    await p.exited;
  }

  /** Start the same spec again (after kill or exit). */
  restart(name: string): Proc {
    const p = this.get(name);
    if (p.running) throw new Error(`${name} is still running`);
    return this.start(p.spec);
  }

  /** SIGSTOP: the process stops answering but keeps its sockets open, like a partitioned peer. */
  pause(name: string): void {
    const p = this.get(name);
    if (p.running && !p.paused) {
      p.child.kill('SIGSTOP');
      p.paused = true;
    }
  }

  resume(name: string): void {
    const p = this.get(name);
    if (p.running && p.paused) {
      p.child.kill('SIGCONT');
      p.paused = false;
    }
  }

  /**
   * SIGTERM one process (SIGKILL after graceMs) and wait for it: for children
   * that print a final report when asked to stop, before the rest go down.
   */
  async stop(name: string, graceMs = 3000): Promise<number | undefined> {
    const p = this.get(name);
    if (!p.running) return undefined;
    this.expectedExit.add(p.child);
    if (p.paused) this.resume(name);
    p.child.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const code = await Promise.race([
      p.exited,
      new Promise<undefined>((r) => {
        timer = setTimeout(() => r(undefined), graceMs);
      }),
    ]);
    clearTimeout(timer);
    if (code !== undefined) return code;
    p.child.kill('SIGKILL');
    return p.exited;
  }

  /** SIGTERM everything, SIGKILL what is left after graceMs; resolves when all have exited. */
  async stopAll(graceMs = 3000): Promise<void> {
    this.stopping = true;
    const running = [...this.procs.values()].filter((p) => p.running);
    for (const p of running) {
      this.expectedExit.add(p.child);
      if (p.paused) p.child.kill('SIGCONT');
      p.child.kill('SIGTERM');
    }
    const all = Promise.all(running.map((p) => p.exited));
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      all.then(() => false),
      new Promise<boolean>((r) => {
        timer = setTimeout(() => r(true), graceMs);
      }),
    ]);
    clearTimeout(timer);
    if (timedOut) {
      for (const p of running) if (p.running) p.child.kill('SIGKILL');
      await all;
    }
    this.uninstallSignalHandlers();
    process.off('exit', this.onExitSync);
  }

  /** Last resort on process exit: synchronous kill -9 of anything still running. */
  killAllSync(): void {
    for (const p of this.procs.values()) {
      if (p.running) {
        try {
          p.child.kill('SIGKILL');
        } catch {
          // already gone
        }
      }
    }
  }

  /** On SIGINT/SIGTERM: call onSignal (which should stop the run and call stopAll). */
  installSignalHandlers(onSignal: (sig: NodeJS.Signals) => void): void {
    this.uninstallSignalHandlers();
    this.signalHandler = onSignal;
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  }

  uninstallSignalHandlers(): void {
    if (!this.signalHandler) return;
    process.off('SIGINT', this.signalHandler);
    process.off('SIGTERM', this.signalHandler);
    this.signalHandler = undefined;
  }
}
