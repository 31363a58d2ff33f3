// Small process and port helpers shared by the tests that start real processes.

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
