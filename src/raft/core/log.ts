// The core's view of the log: what stable storage holds (through LogReader)
// plus what the core has produced but the driver has not yet persisted (the
// "unstable" tail and possibly an incoming snapshot), and the commit/applied
// cursors. Invariant: applied <= committed <= lastIndex().

import { limitSize } from './memory-storage.js';
import { CompactedError, type Entry, type LogReader, type Snapshot } from './types.js';

export class RaftLog {
  /** Incoming snapshot not yet handed over (or not yet advanced past). */
  unstableSnapshot: Snapshot | undefined;
  /** Entries not yet persisted; unstable[k].index === unstableOffset + k. */
  unstable: Entry[] = [];
  unstableOffset: number;
  /** Highest index known committed by a quorum (it may not yet be persisted here). */
  committed: number;
  /** Highest index handed to the driver for applying and acknowledged by advance(). */
  applied: number;

  constructor(
    readonly storage: LogReader,
    applied: number,
    committed: number,
  ) {
    this.unstableOffset = storage.lastIndex() + 1;
    this.committed = committed;
    const floor = storage.firstIndex() - 1;
    this.applied = Math.max(applied, floor);
    if (this.committed < floor) this.committed = floor;
    if (this.applied > this.committed) {
      // The driver applied (and durably recorded) entries whose commit index
      // was not synced (a commit-only HardState need not be). Applied entries
      // were committed, so the commit index may safely catch up, as long as
      // the log still holds them.
      if (this.applied > storage.lastIndex()) {
        throw new Error(`raft: applied ${this.applied} is beyond the last log index ${storage.lastIndex()}`);
      }
      this.committed = this.applied;
    }
  }

  firstIndex(): number {
    if (this.unstableSnapshot) return this.unstableSnapshot.meta.index + 1;
    return this.storage.firstIndex();
  }

  lastIndex(): number {
    if (this.unstable.length > 0) return this.unstableOffset + this.unstable.length - 1;
    if (this.unstableSnapshot) return this.unstableSnapshot.meta.index;
    return this.storage.lastIndex();
  }

  /** Term of entry i, or undefined when it is compacted or beyond the log. */
  term(i: number): number | undefined {
    if (i === 0) return 0;
    if (i > this.lastIndex()) return undefined;
    if (i >= this.unstableOffset && this.unstable.length > 0) return this.unstable[i - this.unstableOffset]!.term;
    const snap = this.unstableSnapshot;
    if (snap) {
      if (i === snap.meta.index) return snap.meta.term;
      if (i < snap.meta.index) return undefined;
    }
    try {
      return this.storage.term(i);
    } catch (err) {
      if (err instanceof CompactedError) return undefined;
      throw err;
    }
  }

  lastTerm(): number {
    return this.term(this.lastIndex()) ?? 0;
  }

  matchTerm(i: number, t: number): boolean {
    const have = this.term(i);
    return have !== undefined && have === t;
  }

  /** Raft §5.4.1: a candidate's log is at least as up to date as ours. */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const myTerm = this.lastTerm();
    return lastTerm > myTerm || (lastTerm === myTerm && lastIndex >= this.lastIndex());
  }

  /**
   * Entries in [lo, hi) limited to maxBytes. Throws CompactedError when lo is
   * below firstIndex (the caller sends a snapshot instead).
   */
  slice(lo: number, hi: number, maxBytes?: number): Entry[] {
    if (lo < this.firstIndex()) throw new CompactedError(lo);
    hi = Math.min(hi, this.lastIndex() + 1);
    if (lo >= hi) return [];
    let out: Entry[] = [];
    const off = this.unstable.length > 0 ? this.unstableOffset : this.lastIndex() + 1;
    if (lo < off) {
      out = this.storage.entries(lo, Math.min(hi, off), maxBytes);
      // Storage stopped early because of the size limit: do not add more.
      if (out.length < Math.min(hi, off) - lo) return out;
    }
    if (hi > off) {
      const tail = this.unstable.slice(Math.max(lo, off) - off, hi - off);
      out = out.length === 0 ? tail : out.concat(tail);
    }
    return limitSize(out, maxBytes);
  }

  /** First index in `ents` that is missing from or conflicts with our log; 0 if none. */
  private findConflict(ents: readonly Entry[]): number {
    for (const e of ents) {
      if (!this.matchTerm(e.index, e.term)) return e.index;
    }
    return 0;
  }

  /**
   * The largest index <= `index` whose term is <= `term`: where a leader's log
   * (term `term` at `index`) can possibly agree with ours. Used for the
   * conflict hints that skip a whole term per round trip.
   */
  findConflictByTerm(index: number, term: number): number {
    let i = Math.min(index, this.lastIndex());
    for (; i > 0; i--) {
      const t = this.term(i);
      if (t === undefined || t <= term) break;
    }
    return i;
  }

  /**
   * Follower side of AppendEntries: if our log has (prevIndex, prevTerm),
   * append `ents` (truncating a conflicting suffix) and return the index of
   * the last new entry; otherwise undefined.
   */
  maybeAppend(prevIndex: number, prevTerm: number, commit: number, ents: readonly Entry[]): number | undefined {
    if (!this.matchTerm(prevIndex, prevTerm)) return undefined;
    const lastNew = prevIndex + ents.length;
    const ci = this.findConflict(ents);
    if (ci !== 0) {
      // Log Matching + Leader Completeness guarantee committed entries never conflict.
      if (ci <= this.committed)
        throw new Error(`raft: entry ${ci} conflicts with committed entry (committed ${this.committed})`);
      this.append(ents.slice(ci - ents[0]!.index));
    }
    this.commitTo(Math.min(commit, lastNew));
    return lastNew;
  }

  /** Append to the unstable tail, truncating anything at or after ents[0].index. */
  append(ents: readonly Entry[]): void {
    if (ents.length === 0) return;
    const after = ents[0]!.index;
    if (after <= this.committed)
      throw new Error(`raft: append at ${after} would overwrite committed ${this.committed}`);
    if (after === this.unstableOffset + this.unstable.length) {
      this.unstable.push(...ents);
    } else if (after <= this.unstableOffset) {
      // Replaces part of the stable log too; the driver truncates storage when it persists these.
      this.unstableOffset = after;
      this.unstable = [...ents];
    } else {
      this.unstable = this.unstable.slice(0, after - this.unstableOffset).concat(ents);
    }
  }

  commitTo(i: number): void {
    if (i <= this.committed) return;
    if (i > this.lastIndex()) throw new Error(`raft: commit ${i} is beyond last index ${this.lastIndex()}`);
    this.committed = i;
  }

  /** Install a snapshot: everything before and at its index is replaced by it. */
  restore(s: Snapshot): void {
    this.committed = s.meta.index;
    this.unstableSnapshot = s;
    this.unstable = [];
    this.unstableOffset = s.meta.index + 1;
  }

  /** The driver persisted entries up to (i, t): drop them from the unstable tail. */
  stableTo(i: number, t: number): void {
    if (this.unstable.length === 0 || i < this.unstableOffset) return;
    const k = i - this.unstableOffset;
    // A different term means the entry was replaced after the Ready was taken.
    if (k >= this.unstable.length || this.unstable[k]!.term !== t) return;
    this.unstable = this.unstable.slice(k + 1);
    this.unstableOffset = i + 1;
  }

  /**
   * The last index the driver has reported durable (advance) that belongs to
   * this log: below the unstable tail. 0 while an incoming snapshot is not yet
   * written (the stored log may not agree with ours then).
   */
  stableLastIndex(): number {
    if (this.unstableSnapshot) return 0;
    if (this.unstable.length > 0) return this.unstableOffset - 1;
    return this.storage.lastIndex();
  }

  stableSnapTo(i: number): void {
    if (this.unstableSnapshot && this.unstableSnapshot.meta.index === i) this.unstableSnapshot = undefined;
  }

  /** Committed entries not yet applied (bounded by maxBytes, at least one if any). */
  nextCommitted(maxBytes?: number): Entry[] {
    const lo = Math.max(this.applied + 1, this.firstIndex());
    if (this.committed < lo) return [];
    return this.slice(lo, this.committed + 1, maxBytes);
  }

  hasNextCommitted(): boolean {
    return this.committed > Math.max(this.applied, this.firstIndex() - 1);
  }

  appliedTo(i: number): void {
    if (i === 0) return;
    if (i > this.committed || i < this.applied) {
      throw new Error(`raft: applied(${i}) out of range [applied(${this.applied}), committed(${this.committed})]`);
    }
    this.applied = i;
  }
}
