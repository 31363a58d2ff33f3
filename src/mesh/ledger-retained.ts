// The ledger's terminal records, held compact.
//
// A ledger keeps up to `retention` tasks (100,000 by default) after they end,
// for Get/Watch/ListTasks, idempotency keys and replays. As objects (the
// record, its spec, its result, their buffers, strings and arrays) each cost
// about 1 KB of heap and a dozen objects that every mark-compact walks: at
// half of peak the root's heap was 61-82 MB of them and its full GCs paused
// 10-93 ms (docs/performance.md, "Half of peak"). Here each is its LedgerRecord
// encoding (the snapshot's own form, so a snapshot copies the bytes as they
// are) in a shared slab, in the order the tasks ended: no object per task,
// only its id (the ledger's map key) in an array. Reading one decodes a copy.
//
// Entries are named by handles, numbers given in the order they were added.
// They leave oldest first (eviction) or are dropped where they stand (a
// replayed task is live again: its bytes stay until their chunk goes).
// Everything here is a function of the calls made, so replicas that apply the
// same commands hold the same entries (the ledger is a state machine).
import { BinaryWriter } from '@bufbuild/protobuf/wire';
import { LedgerRecord } from '../gen/meshlb/v1/ledger.js';
import { TaskState } from '../gen/meshlb/v1/task.js';
import { fromLedgerRecord, type TaskRecord } from './ledger-record.js';
import { encodeRecord } from './wire-codec.js';

/** Entries per chunk: a chunk's memory goes back once its last entry left. */
const CHUNK_ENTRIES = 2048;
/** A chunk's first slab, per entry: most records encode to 60-200 bytes; it doubles as needed. */
const SLAB_BYTES_PER_ENTRY = 128;
/** An entry's state once it was dropped or evicted (no record is ever UNSPECIFIED). */
const GONE = TaskState.TASK_STATE_UNSPECIFIED;

class Chunk {
  slab: Uint8Array;
  used = 0;
  count = 0;
  readonly ends: Uint32Array;
  readonly states: Uint8Array;
  readonly attempts: Uint32Array;
  readonly created: Float64Array;
  readonly ids: string[] = [];
  /** Idempotency keys, set only for the entries that have one. */
  readonly keys: (string | undefined)[] = [];

  constructor(
    readonly first: number,
    entries: number,
  ) {
    this.slab = new Uint8Array(entries * SLAB_BYTES_PER_ENTRY);
    this.ends = new Uint32Array(entries);
    this.states = new Uint8Array(entries);
    this.attempts = new Uint32Array(entries);
    this.created = new Float64Array(entries);
  }

  add(rec: TaskRecord, bytes: Uint8Array): void {
    if (this.used + bytes.length > this.slab.length) {
      let size = this.slab.length * 2;
      while (size < this.used + bytes.length) size *= 2;
      const next = new Uint8Array(size);
      next.set(this.slab.subarray(0, this.used));
      this.slab = next;
    }
    this.slab.set(bytes, this.used);
    this.used += bytes.length;
    const i = this.count++;
    this.ends[i] = this.used;
    this.states[i] = rec.state;
    this.attempts[i] = rec.attempt;
    this.created[i] = rec.createdMs;
    this.ids.push(rec.id);
    if (rec.spec.idempotencyKey) this.keys[i] = rec.spec.idempotencyKey;
  }

  bytes(i: number): Uint8Array {
    return this.slab.subarray(i === 0 ? 0 : this.ends[i - 1]!, this.ends[i]!);
  }
}

export class RetainedRecords {
  private chunks: Chunk[] = [];
  /** Handles below this one have left. */
  private head = 0;
  private next = 0;
  private count = 0;
  private readonly writer = new BinaryWriter();

  constructor(private readonly chunkEntries = CHUNK_ENTRIES) {}

  /** Entries held (not dropped, not evicted). */
  get size(): number {
    return this.count;
  }

  /** Hold a terminal record; its handle. The record object is not kept. */
  add(rec: TaskRecord): number {
    // The spec and result as the bytes they came as, when they did (wire-codec.ts).
    const bytes = encodeRecord(rec, this.writer);
    let last = this.chunks[this.chunks.length - 1];
    if (!last || last.count === this.chunkEntries) this.chunks.push((last = new Chunk(this.next, this.chunkEntries)));
    last.add(rec, bytes);
    this.count++;
    return this.next++;
  }

  state(h: number): TaskState {
    const c = this.chunk(h);
    return c.states[h - c.first]!;
  }

  attempt(h: number): number {
    const c = this.chunk(h);
    return c.attempts[h - c.first]!;
  }

  createdMs(h: number): number {
    const c = this.chunk(h);
    return c.created[h - c.first]!;
  }

  /** A copy of the record, decoded. */
  record(h: number): TaskRecord {
    return fromLedgerRecord(LedgerRecord.decode(this.bytes(h)));
  }

  /** The record's LedgerRecord encoding (a view: copy it to keep it past the next change). */
  bytes(h: number): Uint8Array {
    const c = this.chunk(h);
    return c.bytes(h - c.first);
  }

  /** The id of an entry. */
  id(h: number): string {
    const c = this.chunk(h);
    return c.ids[h - c.first]!;
  }

  /** Forget an entry where it stands (its task was replayed). */
  drop(h: number): void {
    const c = this.chunk(h);
    const i = h - c.first;
    if (c.states[i] === GONE) return;
    c.states[i] = GONE;
    this.count--;
  }

  /** Take the oldest entry out: its id and idempotency key ('' if none); undefined when empty. */
  evictOldest(): { id: string; key: string } | undefined {
    while (this.count > 0) {
      const c = this.chunk(this.head);
      const i = this.head++ - c.first;
      const held = c.states[i] !== GONE;
      const out = held ? { id: c.ids[i]!, key: c.keys[i] ?? '' } : undefined;
      if (held) {
        c.states[i] = GONE;
        this.count--;
      }
      if (i === this.chunkEntries - 1) this.chunks.shift();
      if (out) return out;
    }
    return undefined;
  }

  /** Handles held, oldest first. */
  *handles(): IterableIterator<number> {
    for (const c of this.chunks) {
      for (let i = 0; i < c.count; i++) if (c.states[i] !== GONE) yield c.first + i;
    }
  }

  clear(): void {
    this.chunks = [];
    this.head = this.next;
    this.count = 0;
  }

  private chunk(h: number): Chunk {
    const c =
      h >= this.head ? this.chunks[Math.floor((h - (this.chunks[0]?.first ?? 0)) / this.chunkEntries)] : undefined;
    if (!c || h >= c.first + c.count) throw new Error(`retained record ${h} is gone`);
    return c;
  }
}
