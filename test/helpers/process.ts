// Small process and port helpers shared by the tests that start real processes.
import { createServer } from 'node:net';

/** Whether a process with this pid exists (signal 0 probes without killing). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Ports this process has handed out: the kernel may give the same free port
 * to two listen(0) calls in a row (the first was closed at once), and a
 * topology with two replicas on one address is refused. CI saw it once
 * ("duplicate address 127.0.0.1:42251").
 */
const handedOut = new Set<number>();

function onePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** A TCP port on 127.0.0.1 that was free a moment ago and never handed out before in this process. */
export async function freePort(): Promise<number> {
  for (let i = 0; i < 100; i++) {
    const port = await onePort();
    if (!handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error('freePort: 100 tries gave only ports already handed out');
}
