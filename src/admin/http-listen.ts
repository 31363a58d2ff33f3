// One way to put a small HTTP endpoint of a replica (/metrics, the live page)
// on the air: bounded connections and timeouts (a slow or idle client cannot
// hold it), listening before it answers, and a close that drops keep-alive
// connections at once.
import type { Server } from 'node:http';

export interface Listening {
  readonly port: number;
  /** http://host:port (brackets around an IPv6 host), without a path. */
  readonly base: string;
  close(): Promise<void>;
}

export async function listenBounded(
  server: Server,
  port: number,
  host: string,
  maxConnections: number,
): Promise<Listening> {
  server.maxConnections = maxConnections;
  server.requestTimeout = 5_000;
  server.headersTimeout = 5_000;
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address();
  const actual = typeof addr === 'object' && addr ? addr.port : port;
  return {
    port: actual,
    base: `http://${host.includes(':') ? `[${host}]` : host}:${actual}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
