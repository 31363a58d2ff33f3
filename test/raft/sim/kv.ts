// The simulator's replicated state machine: a key-value map with client
// sessions (so a duplicated or re-forwarded proposal takes effect at most
// once) and a chain hash over every applied entry, which makes "two replicas
// applied different things at index i" a single number comparison and travels
// inside snapshots.

import { EntryType, type Entry } from '../../../src/raft/core/types.js';

export interface PutCommand {
  readonly client: number;
  readonly seq: number;
  readonly key: string;
  readonly value: string;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

export function encodePut(c: PutCommand): Uint8Array {
  return enc.encode(`${c.client}|${c.seq}|${c.key}|${c.value}`);
}

export function decodePut(data: Uint8Array): PutCommand | undefined {
  const parts = dec.decode(data).split('|');
  if (parts.length !== 4) return undefined;
  return { client: Number(parts[0]), seq: Number(parts[1]), key: parts[2]!, value: parts[3]! };
}

/** FNV-1a over the bytes, chained from `h`. */
export function fnv(h: number, bytes: Uint8Array): number {
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i]!, 16777619) >>> 0;
  return h;
}

function mix(h: number, n: number): number {
  h = Math.imul(h ^ (n & 0xffff), 16777619) >>> 0;
  return Math.imul(h ^ (n >>> 16), 16777619) >>> 0;
}

export class KvStore {
  readonly data = new Map<string, string>();
  /** Highest seq applied per client: a command with seq <= this is a duplicate and ignored. */
  readonly sessions = new Map<number, number>();
  /** Chain hash of all entries applied so far (index, term, type, data). */
  hash = 2166136261;
  applied = 0;

  /** Apply one committed entry; returns the put it executed, if any (duplicates return undefined). */
  apply(e: Entry): PutCommand | undefined {
    if (e.index !== this.applied + 1) throw new Error(`kv: apply ${e.index} after ${this.applied}`);
    this.applied = e.index;
    this.hash = fnv(mix(mix(mix(this.hash, e.index), e.term), e.type), e.data);
    if (e.type !== EntryType.Normal || e.data.length === 0) return undefined;
    const cmd = decodePut(e.data);
    if (!cmd) return undefined;
    if ((this.sessions.get(cmd.client) ?? 0) >= cmd.seq) return undefined;
    this.sessions.set(cmd.client, cmd.seq);
    this.data.set(cmd.key, cmd.value);
    return cmd;
  }

  snapshot(): Uint8Array {
    return enc.encode(JSON.stringify({ d: [...this.data], s: [...this.sessions], h: this.hash, a: this.applied }));
  }

  static restore(bytes: Uint8Array): KvStore {
    const kv = new KvStore();
    if (bytes.length === 0) return kv;
    const o = JSON.parse(dec.decode(bytes)) as { d: [string, string][]; s: [number, number][]; h: number; a: number };
    for (const [k, v] of o.d) kv.data.set(k, v);
    for (const [c, s] of o.s) kv.sessions.set(c, s);
    kv.hash = o.h;
    kv.applied = o.a;
    return kv;
  }
}
