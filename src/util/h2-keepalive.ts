// The lean HTTP/2 client's keepalive (grpc-h2-client.ts): a ping every
// `every` ms while none is out; a session whose ping is not answered within
// `within` ms is destroyed (its streams end UNAVAILABLE), and only that: a
// ping that errors (cancelled: the session closing, Node's limit of
// outstanding pings) says nothing of the peer.
import type { ClientHttp2Session } from 'node:http2';

/** Start pinging `session`; the interval returned is the caller's to clear. */
export function keepalive(session: ClientHttp2Session, every: number, within: number): NodeJS.Timeout {
  let waiting: NodeJS.Timeout | undefined;
  const t = setInterval(() => {
    if (waiting || session.destroyed || !session.socket) return;
    const timer = setTimeout(() => {
      // Timers run before the event loop reads its sockets: after a stall of this process (a starved
      // machine: docs/performance.md, Scale) the answer may be in the socket, unread. Judge after this
      // turn's reads (setImmediate runs after them), so a stall here does not cut a live peer and
      // every stream on the connection with it.
      setImmediate(() => {
        if (waiting === timer && !session.destroyed) session.destroy(new Error('keepalive ping not answered'));
      });
    }, within);
    timer.unref();
    waiting = timer;
    let sent = false;
    try {
      sent = session.ping(() => {
        clearTimeout(timer);
        if (waiting === timer) waiting = undefined;
        // An error here (a ping cancelled: the session closing, Node's limit of outstanding pings)
        // says nothing of the peer: the timeout above judges it, the session's own close the rest.
      });
    } catch {
      // Not connected yet, or closing: the next round tries again.
    }
    if (!sent) {
      clearTimeout(timer);
      waiting = undefined;
    }
  }, every);
  t.unref();
  session.once('close', () => clearTimeout(waiting));
  return t;
}
