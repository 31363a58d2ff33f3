// Results on their way to the parent that a change of parent leader must not
// lose. A child keeps two bounded sets:
// - held: results produced while no parent replica has welcomed us; they go
//   out once one does (across a change of parent leader they reach the new
//   leader, which keeps those of attempts that are still current);
// - recent: results written in the last two link timeouts; a parent replica
//   that dies may have taken them with it unread, so after a break they are
//   written again to whichever replica welcomes us next.
// The parent's ledger drops what it already recorded (stale or terminal), so a
// second copy is harmless. Past a bound the oldest go: their home's lease
// retries them. Both are ring buffers: a write costs O(1) at any rate.
//
// Recent results are kept as their encoded bytes, copied into shared chunks,
// not as objects: at 500 tasks/s a cell with a parent keeps ~2,000 of them for
// the window, and as objects (each result, its strings and buffers) they
// outlived the scavenges of every such cell — copied, promoted and collected
// again — which made each scavenge, a pause every task passing the cell
// waits for, longer (docs/performance.md, "Allocation at low rate"). A re-sent one is
// decoded from its bytes and relayed as them, so fields this replica does not
// know go on as they came.
import { MeshFailure, type TaskResult } from '../gen/meshlb/v1/task.js';
import { decodeResult, resultBytes } from './wire-codec.js';

/** Results held while unlinked, and results remembered after writing, at most. */
export const MAX_KEPT_RESULTS = 10_000;

class Ring<T> {
  private readonly items: (T | undefined)[];
  private head = 0;
  private count = 0;

  constructor(readonly capacity: number) {
    this.items = new Array<T | undefined>(capacity);
  }

  get size(): number {
    return this.count;
  }

  /** Append; past capacity the oldest is dropped. */
  push(x: T): void {
    const tail = (this.head + this.count) % this.capacity;
    this.items[tail] = x;
    if (this.count < this.capacity) this.count++;
    else this.head = (this.head + 1) % this.capacity;
  }

  shift(): T | undefined {
    if (this.count === 0) return undefined;
    const x = this.items[this.head];
    this.items[this.head] = undefined;
    this.head = (this.head + 1) % this.capacity;
    this.count--;
    return x;
  }

  drain(): T[] {
    const out: T[] = [];
    for (let x = this.shift(); x !== undefined; x = this.shift()) out.push(x);
    return out;
  }
}

/** Bytes of chunk kept results are copied into; a result of more than a quarter of it gets its own copy. */
const CHUNK = 64 * 1024;

/** Encoded results with the time each was written, oldest first: a ring of offsets into shared chunks. */
class RecentBytes {
  private readonly atMs: Float64Array;
  /** Per entry: the chunk's number (chunks are numbered as made), offset and length in it. */
  private readonly chunkNo: Float64Array;
  private readonly start: Int32Array;
  private readonly len: Int32Array;
  /** Per entry: a result too big for the chunks, on its own. */
  private readonly big: (Uint8Array | undefined)[];
  private head = 0;
  private count = 0;
  /** Chunks still holding entries, oldest first; chunks[0] is number `firstNo`; the last one is written. */
  private readonly chunks: Uint8Array[] = [];
  private firstNo = 0;
  private pos = CHUNK;

  constructor(readonly capacity: number) {
    this.atMs = new Float64Array(capacity);
    this.chunkNo = new Float64Array(capacity);
    this.start = new Int32Array(capacity);
    this.len = new Int32Array(capacity);
    this.big = new Array<Uint8Array | undefined>(capacity);
  }

  /** The oldest entry's time (undefined: none). */
  oldestAt(): number | undefined {
    return this.count > 0 ? this.atMs[this.head] : undefined;
  }

  /** Append a copy of `bytes`; past capacity the oldest is dropped. */
  push(bytes: Uint8Array, atMs: number): void {
    if (this.count === this.capacity) this.shift();
    const i = (this.head + this.count) % this.capacity;
    this.count++;
    this.atMs[i] = atMs;
    const n = bytes.length;
    if (n > CHUNK / 4) {
      this.big[i] = bytes.slice();
      this.chunkNo[i] = this.firstNo + this.chunks.length - 1;
      return;
    }
    if (this.pos + n > CHUNK) {
      this.chunks.push(new Uint8Array(CHUNK));
      this.pos = 0;
    }
    this.chunks[this.chunks.length - 1]!.set(bytes, this.pos);
    this.chunkNo[i] = this.firstNo + this.chunks.length - 1;
    this.start[i] = this.pos;
    this.len[i] = n;
    this.pos += n;
  }

  /** Drop every entry and every chunk. */
  clear(): void {
    this.big.fill(undefined);
    this.head = this.count = 0;
    this.chunks.length = 0;
    this.firstNo = 0;
    this.pos = CHUNK;
  }

  /** Drop the oldest entry, and the chunks no entry uses any more (never the one being written). */
  shift(): void {
    if (this.count === 0) return;
    this.big[this.head] = undefined;
    this.head = (this.head + 1) % this.capacity;
    this.count--;
    const oldest = this.count > 0 ? this.chunkNo[this.head]! : Infinity;
    while (this.chunks.length > 1 && this.firstNo < oldest) {
      this.chunks.shift();
      this.firstNo++;
    }
  }

  /** Every entry, oldest first, as results (the ring is emptied). */
  drain(): TaskResult[] {
    const out: TaskResult[] = [];
    for (; this.count > 0; this.shift()) {
      const i = this.head;
      const b = this.big[i];
      const chunk = this.chunks[this.chunkNo[i]! - this.firstNo]!;
      out.push(decodeResult(b ?? chunk.slice(this.start[i]!, this.start[i]! + this.len[i]!)));
    }
    return out;
  }
}

export class ResultKeeper {
  private readonly held: Ring<TaskResult>;
  private readonly recent: RecentBytes;
  /** The link broke since the last welcome: recent results go out again on the next one. */
  private broke = false;

  constructor(
    /** How long a written result is remembered (two link timeouts). */
    private readonly windowMs: number,
    capacity = MAX_KEPT_RESULTS,
  ) {
    this.held = new Ring(capacity);
    this.recent = new RecentBytes(capacity);
  }

  /**
   * A result was written to a welcoming parent. A refusal (`requeue:`) is not kept to write again: the
   * parent that read it may have sent its attempt again under the same number since (docs/mesh.md,
   * "Attempt numbers and refusals"), and a second copy would refuse that send; one the parent lost
   * in the break it counted lost with the link.
   */
  wrote(r: TaskResult, now: number): void {
    if (r.meshFailure === MeshFailure.MESH_FAILURE_REQUEUE) return;
    this.recent.push(resultBytes(r), now);
  }

  /** A result came while no parent replica welcomes us. */
  hold(r: TaskResult): void {
    this.held.push(r);
  }

  /** The link broke. */
  broken(): void {
    this.broke = true;
  }

  /** Forget results written longer than the window ago (from the cell's tick). */
  prune(now: number): void {
    const horizon = now - this.windowMs;
    for (let at = this.recent.oldestAt(); at !== undefined && at < horizon; at = this.recent.oldestAt())
      this.recent.shift();
  }

  /** A parent replica welcomed us: what to write again (recent ones only after a break), oldest first. */
  takeForResend(now: number): { recent: TaskResult[]; held: TaskResult[] } {
    this.prune(now);
    const recent = this.broke ? this.recent.drain() : [];
    this.recent.clear();
    this.broke = false;
    return { recent, held: this.held.drain() };
  }

  /** Stopped leading: nothing here is ours to send any more. */
  clear(): void {
    this.held.drain();
    this.recent.clear();
    this.broke = false;
  }
}
