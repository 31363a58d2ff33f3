// A tiny replicated key/value state machine for the Raft demo, tests and bench.
// Commands are JSON: {"k": key, "v": value}; apply returns the entry index.
import type { StateMachine } from '../../src/raft/index.js';

const enc = new TextEncoder();
const dec = new TextDecoder();

export function putCommand(key: string, value: string): Uint8Array {
  return enc.encode(JSON.stringify({ k: key, v: value }));
}

export class KvStateMachine implements StateMachine {
  readonly data = new Map<string, string>();
  appliedCount = 0;
  restores = 0;

  apply(cmd: Uint8Array, index: number): number {
    const { k, v } = JSON.parse(dec.decode(cmd)) as { k: string; v: string };
    this.data.set(k, v);
    this.appliedCount++;
    return index;
  }

  snapshot(): Uint8Array {
    return enc.encode(JSON.stringify([...this.data]));
  }

  restore(snap: Uint8Array): void {
    this.restores++;
    this.data.clear();
    if (snap.length > 0) for (const [k, v] of JSON.parse(dec.decode(snap)) as [string, string][]) this.data.set(k, v);
  }
}
