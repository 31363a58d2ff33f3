// Small process and port helpers shared by the tests that start real processes.

import type { ChildProcess } from 'node:child_process';
import { MESHLB_ENTRY } from './entry.js';

/**
 * The argument list (after node itself) of `meshlb serve --topology topo --cell cell ...extra`, from the
 * built dist/ when it is as new as src/ (./entry.ts), else bin/meshlb.js.
 */
export function serveArgs(topo: string, cell: string, extra: readonly string[] = []): string[] {
  return [MESHLB_ENTRY, 'serve', '--topology', topo, '--cell', cell, ...extra];
}

/** Whether a process with this pid exists (signal 0 probes without killing). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

// A TCP port on 127.0.0.1 that was free a moment ago and never handed out before in this process (the
// kernel may give two listen(0) calls in a row the same port): the benches' helper, shared.
export { freePort } from '../../bench/lib/ports.js';

/** What a process that ran to its end printed, and its exit code. */
export interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Waits for `child` to exit, collecting its output; past `timeoutMs` it is killed and the promise rejects
 * with `what` and the end of its stderr (the last 8,000 characters are kept).
 */
export function runToExit(child: ChildProcess, what: string, timeoutMs: number): Promise<Ran> {
  return new Promise((resolve, reject) => {
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-8000)));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${what} did not exit within ${timeoutMs} ms\n${stderr}`));
    }, timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
