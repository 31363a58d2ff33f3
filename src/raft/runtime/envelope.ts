// Application proposals travel in an envelope naming the request, so the
// replica that proposed it (leader or a forwarding follower) can recognise the
// entry when it applies and resolve the caller's promise with the result.
// Layout: version u8 (1) | idLen u8 | id utf8 | payload.
const VERSION = 1;
const enc = new TextEncoder();
const dec = new TextDecoder();

export function wrap(id: string, payload: Uint8Array): Uint8Array {
  const idb = enc.encode(id);
  if (idb.length > 255) throw new Error('raft envelope: request id too long');
  const out = new Uint8Array(2 + idb.length + payload.length);
  out[0] = VERSION;
  out[1] = idb.length;
  out.set(idb, 2);
  out.set(payload, 2 + idb.length);
  return out;
}

export function unwrap(data: Uint8Array): { id: string; payload: Uint8Array } {
  if (data.length < 2 || data[0] !== VERSION || 2 + data[1]! > data.length) {
    throw new Error('raft envelope: malformed entry');
  }
  const n = data[1]!;
  return { id: dec.decode(data.subarray(2, 2 + n)), payload: data.subarray(2 + n) };
}

/** Runtime snapshots carry the peer address book next to the state machine's bytes. */
export function wrapSnapshot(addresses: Record<string, string>, sm: Uint8Array): Uint8Array {
  const head = enc.encode(JSON.stringify(addresses));
  const out = new Uint8Array(4 + head.length + sm.length);
  new DataView(out.buffer).setUint32(0, head.length);
  out.set(head, 4);
  out.set(sm, 4 + head.length);
  return out;
}

export function unwrapSnapshot(data: Uint8Array): { addresses: Record<string, string>; sm: Uint8Array } {
  if (data.length === 0) return { addresses: {}, sm: data };
  const n = new DataView(data.buffer, data.byteOffset, data.byteLength).getUint32(0);
  if (4 + n > data.length) throw new Error('raft snapshot envelope: malformed');
  return {
    addresses: JSON.parse(dec.decode(data.subarray(4, 4 + n))) as Record<string, string>,
    sm: data.subarray(4 + n),
  };
}
