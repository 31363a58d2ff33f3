// A free port for benches that start processes from a topology file (which
// names fixed addresses): bind port 0 on loopback, read it, let it go.
import { createServer } from 'node:net';

// The kernel may give the same free port to two listen(0) calls in a row
// (the first was closed at once); a topology with one address twice is refused.
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

/** A TCP port on 127.0.0.1 that was free a moment ago and not handed out before in this process. */
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
