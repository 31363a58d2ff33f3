// An in-memory LogReader: the twin of the lmdb store, used by tests and the
// simulator. The driver writes to it (after the core hands out a Ready); the
// core only reads. Like etcd's MemoryStorage, ents[0] is a dummy entry standing
// for the last compacted index, so term(firstIndex-1) is always answerable.

import { encodeConfChange } from './confchange.js';
import {
  CompactedError,
  EntryType,
  UnavailableError,
  type ConfState,
  type Entry,
  type HardState,
  type LogReader,
  type NodeId,
  type Snapshot,
} from './types.js';

const EMPTY = new Uint8Array(0);

function entrySize(e: Entry): number {
  // A fixed overhead keeps empty entries from being "free" in size limits.
  return e.data.byteLength + 16;
}

/** Entries from the front of `ents` while their total size stays within maxBytes (always at least one). */
export function limitSize(ents: Entry[], maxBytes: number | undefined): Entry[] {
  if (maxBytes === undefined || ents.length === 0) return ents;
  let size = entrySize(ents[0]!);
  let n = 1;
  for (; n < ents.length; n++) {
    size += entrySize(ents[n]!);
    if (size > maxBytes) break;
  }
  return n === ents.length ? ents : ents.slice(0, n);
}

export class MemoryStorage implements LogReader {
  private hard: HardState = { term: 0, vote: '', commit: 0 };
  private snap: Snapshot = { meta: { index: 0, term: 0, conf: { voters: [], learners: [] } }, data: EMPTY };
  /** Invariant: ents[0] is the dummy at snap.meta.index/term; ents[k].index === ents[0].index + k. */
  private ents: Entry[] = [{ index: 0, term: 0, type: EntryType.Normal, data: EMPTY }];

  /**
   * A new group: one committed addVoter entry per initial voter at term 1, as
   * if a leader had replicated them. Every member of the group is bootstrapped
   * with the same list; a node joining later starts empty and learns the
   * configuration from the log (or a snapshot).
   */
  static bootstrap(voters: readonly NodeId[]): MemoryStorage {
    const s = new MemoryStorage();
    const ents = voters.map((node, i): Entry => ({
      term: 1,
      index: i + 1,
      type: EntryType.ConfChange,
      data: encodeConfChange({ type: 'addVoter', node, context: '' }),
    }));
    s.append(ents);
    s.setHardState({ term: 1, vote: '', commit: ents.length });
    return s;
  }

  initialState(): { hardState: HardState; conf: ConfState } {
    return { hardState: this.hard, conf: this.snap.meta.conf };
  }

  hardState(): HardState {
    return this.hard;
  }

  setHardState(hs: HardState): void {
    this.hard = hs;
  }

  firstIndex(): number {
    return this.ents[0]!.index + 1;
  }

  lastIndex(): number {
    return this.ents[0]!.index + this.ents.length - 1;
  }

  term(i: number): number {
    const offset = this.ents[0]!.index;
    if (i < offset) throw new CompactedError(i);
    if (i > this.lastIndex()) throw new UnavailableError(i);
    return this.ents[i - offset]!.term;
  }

  entries(lo: number, hi: number, maxBytes?: number): Entry[] {
    const offset = this.ents[0]!.index;
    if (lo <= offset) throw new CompactedError(lo);
    if (hi > this.lastIndex() + 1) throw new UnavailableError(hi - 1);
    if (lo >= hi) return [];
    return limitSize(this.ents.slice(lo - offset, hi - offset), maxBytes);
  }

  snapshot(): Snapshot {
    return this.snap;
  }

  /** Append entries, replacing any conflicting suffix; entries at or below the compaction point are ignored. */
  append(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const first = this.firstIndex();
    let ents = entries;
    if (ents[ents.length - 1]!.index < first) return;
    if (ents[0]!.index < first) ents = ents.slice(first - ents[0]!.index);
    const offset = ents[0]!.index - this.ents[0]!.index;
    if (offset > this.ents.length) {
      throw new Error(`raft: missing log entry [last: ${this.lastIndex()}, append at: ${ents[0]!.index}]`);
    }
    this.ents = this.ents.slice(0, offset).concat(ents);
  }

  /** Replace everything with `snap` (a follower installing the leader's snapshot). */
  applySnapshot(snap: Snapshot): void {
    if (snap.meta.index < this.snap.meta.index) {
      throw new Error(`raft: snapshot ${snap.meta.index} is older than ${this.snap.meta.index}`);
    }
    this.snap = snap;
    this.ents = [{ index: snap.meta.index, term: snap.meta.term, type: EntryType.Normal, data: EMPTY }];
  }

  /** Record a snapshot of the state machine at `index` (<= applied); does not compact. */
  createSnapshot(index: number, conf: ConfState, data: Uint8Array): Snapshot {
    if (index <= this.snap.meta.index)
      throw new Error(`raft: snapshot ${index} is not newer than ${this.snap.meta.index}`);
    if (index > this.lastIndex()) throw new Error(`raft: snapshot ${index} beyond last index ${this.lastIndex()}`);
    this.snap = { meta: { index, term: this.term(index), conf }, data };
    return this.snap;
  }

  /** Discard entries up to and including `index` (which must be covered by a snapshot the caller keeps). */
  compact(index: number): void {
    const offset = this.ents[0]!.index;
    if (index <= offset) return;
    if (index > this.lastIndex()) throw new Error(`raft: compact ${index} beyond last index ${this.lastIndex()}`);
    // Keep everything after the snapshot: a lagging follower is caught up with
    // the snapshot plus the entries that follow it.
    if (index > this.snap.meta.index) throw new Error(`raft: compact ${index} beyond snapshot ${this.snap.meta.index}`);
    const dummy = this.ents[index - offset]!;
    const head: Entry = { index: dummy.index, term: dummy.term, type: EntryType.Normal, data: EMPTY };
    this.ents = [head, ...this.ents.slice(index - offset + 1)];
  }

  /** A deep-enough copy (entries are immutable) for simulating a disk that survives crashes. */
  clone(): MemoryStorage {
    const s = new MemoryStorage();
    s.hard = this.hard;
    s.snap = this.snap;
    s.ents = this.ents.slice();
    return s;
  }
}
