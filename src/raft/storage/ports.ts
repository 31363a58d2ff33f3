// Storage ports of the Raft runtime (hashicorp-style small interfaces with
// swappable implementations). The core only ever sees the LogReader half; the
// runtime writes through the rest, strictly in Ready order.
import type { ConfState, Entry, HardState, LogReader, Snapshot, SnapshotMeta } from '../core/types.js';

export interface LogStore extends LogReader {
  /**
   * Persist one Ready's `entries` (replacing any suffix from entries[0].index on)
   * and `hardState` in ONE transaction. When `sync` is true the promise resolves
   * only once the transaction is on stable storage (fsync'd): the runtime sends
   * acks and votes only after that (a leader's own appends may go ahead, see
   * Ready.earlyMessages), and the core counts the leader's copy toward commit
   * only after that. With `sync` false the write is ordered but the
   * caller may proceed before it is flushed (etcd's mustSync=false case: only
   * the commit index moved, which Raft may lose without harm).
   */
  append(entries: readonly Entry[], hardState?: HardState, opts?: { sync?: boolean }): Promise<void>;
  setHardState(hs: HardState): Promise<void>;
  /** Discard entries up to and including `index`; `index` stays answerable by term(). */
  compact(index: number): Promise<void>;
  /** Move the log to a snapshot's position (the snapshot itself must already be durable). */
  applySnapshot(meta: SnapshotMeta): Promise<void>;
  /** Durable key/value side records the runtime needs across restarts (peer addresses). */
  getMeta(key: string): string | undefined;
  setMeta(key: string, value: string): Promise<void>;
  close(): Promise<void>;
}

export interface SnapshotStore {
  /** Write durably (temp file, fsync, rename, dir fsync); older snapshots may be pruned. */
  save(snap: Snapshot): Promise<void>;
  /** The latest snapshot, checksum-verified; undefined if none. Throws SnapshotCorruptError. */
  load(): Snapshot | undefined;
  /** Cheap: metadata of the latest snapshot, without its data. */
  latestMeta(): SnapshotMeta | undefined;
}

/** On-disk state is damaged in a way the node must not paper over. */
export class StorageCorruptionError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StorageCorruptionError';
  }
}

export class SnapshotCorruptError extends StorageCorruptionError {
  constructor(
    readonly file: string,
    reason: string,
  ) {
    super(`raft snapshot ${file} is corrupt: ${reason}`);
    this.name = 'SnapshotCorruptError';
  }
}

export const EMPTY_HARD_STATE: HardState = { term: 0, vote: '', commit: 0 };
export const EMPTY_CONF: ConfState = { voters: [], learners: [] };
