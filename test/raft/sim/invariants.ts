// Safety invariants of Raft, checked incrementally as the simulator drives
// replicas (each hook is called right after the event it describes, so every
// step is covered without rescanning every log every time):
//  - election safety: at most one leader per term;
//  - log matching: an entry (index, term) has the same content and the same
//    predecessor term in every log that ever held it (by induction, logs that
//    share an (index, term) are identical up to it);
//  - leader completeness: a leader of term T holds every entry committed in a
//    term < T (checked when it is elected and when a commit is observed);
//  - state-machine safety: replicas that applied index i have the same chain
//    hash there (same entries, in the same order, including via snapshots);
//  - committed entries never change (two commits of index i agree).
// Hooks take plain values, so tests can feed hand-made bad states.

import type { NodeId } from '../../../src/raft/core/types.js';

export interface LogView {
  /** Term at index i, or undefined if compacted (below firstIndex-1) or beyond the log. */
  term(i: number): number | undefined;
  /** Content fingerprint of entry i (undefined if not available). */
  fingerprint(i: number): number | undefined;
  firstIndex(): number;
  lastIndex(): number;
}

interface CommitRecord {
  readonly term: number;
  readonly fp: number;
  /** Term of the node that first reported it committed (a leader, or later). */
  readonly commitTerm: number;
}

export class InvariantChecker {
  readonly violations: string[] = [];
  private readonly leaders = new Map<number, NodeId>();
  /** Every (index/term) ever written anywhere: its content and predecessor term. */
  private readonly written = new Map<string, { fp: number; prevTerm: number | undefined }>();
  private readonly committed = new Map<number, CommitRecord>();
  private maxCommitted = 0;
  private readonly appliedHash = new Map<number, number>();
  /** Current leaders and their logs, for leader completeness on new commits. */
  private readonly currentLeaders = new Map<NodeId, { term: number; log: LogView }>();

  constructor(private readonly where: () => string = () => '') {}

  private fail(msg: string): void {
    if (this.violations.length < 50) this.violations.push(`${msg}${this.where()}`);
  }

  /** A node persisted entries [from, to] of its log (log matching). */
  onWrite(id: NodeId, log: LogView, from: number, to: number): void {
    for (let i = Math.max(from, log.firstIndex()); i <= to; i++) {
      const t = log.term(i);
      const fp = log.fingerprint(i);
      if (t === undefined || fp === undefined) continue;
      const key = `${i}/${t}`;
      const prevTerm = log.term(i - 1);
      const seen = this.written.get(key);
      if (!seen) {
        this.written.set(key, { fp, prevTerm });
        continue;
      }
      if (seen.fp !== fp) this.fail(`log matching: ${id} holds a different entry ${key}`);
      if (seen.prevTerm !== undefined && prevTerm !== undefined && seen.prevTerm !== prevTerm) {
        this.fail(`log matching: ${id} has entry ${key} after term ${prevTerm}, elsewhere after ${seen.prevTerm}`);
      }
    }
  }

  /** A node's role is now `role` at `term` (call on every role change). */
  onRole(id: NodeId, role: string, term: number, log: LogView): void {
    if (role !== 'leader') {
      this.currentLeaders.delete(id);
      return;
    }
    const prev = this.leaders.get(term);
    if (prev !== undefined && prev !== id) this.fail(`election safety: ${prev} and ${id} both leaders of term ${term}`);
    this.leaders.set(term, id);
    this.currentLeaders.set(id, { term, log });
    for (const [i, rec] of this.committed) if (rec.commitTerm < term) this.checkHolds(id, term, log, i, rec);
  }

  /** The node left the cluster or crashed: it no longer leads. */
  onDown(id: NodeId): void {
    this.currentLeaders.delete(id);
  }

  private checkHolds(id: NodeId, term: number, log: LogView, i: number, rec: CommitRecord): void {
    if (i < log.firstIndex() - 1) return; // covered by its snapshot (state-machine safety checks those)
    const t = log.term(i);
    if (t !== rec.term) {
      this.fail(
        `leader completeness: leader ${id} of term ${term} lacks committed ${i}@${rec.term} (has ${t ?? 'nothing'})`,
      );
    }
  }

  /** `id` (at `term`) reports commit index `commit`; its log holds the entries. */
  onCommit(id: NodeId, term: number, commit: number, log: LogView): void {
    if (commit <= this.maxCommitted) {
      // Already recorded up to here; still verify the node agrees on its newest committed entry.
      const rec = this.committed.get(commit);
      const t = log.term(commit);
      const fp = log.fingerprint(commit); // undefined when compacted into the snapshot
      if (rec && t !== undefined && fp !== undefined && (t !== rec.term || fp !== rec.fp)) {
        this.fail(`committed entry changed: ${id} has ${commit}@${t}, committed was ${commit}@${rec.term}`);
      }
      return;
    }
    for (let i = this.maxCommitted + 1; i <= commit; i++) {
      const t = log.term(i);
      const fp = log.fingerprint(i);
      if (t === undefined || fp === undefined) continue; // compacted: the snapshot is checked by state-machine safety
      const rec: CommitRecord = { term: t, fp, commitTerm: term };
      this.committed.set(i, rec);
      for (const [lid, l] of this.currentLeaders) if (l.term > term) this.checkHolds(lid, l.term, l.log, i, rec);
    }
    this.maxCommitted = commit;
  }

  /** `id` applied index `index`; `hash` is its state machine's chain hash after it. */
  onApply(id: NodeId, index: number, hash: number): void {
    const seen = this.appliedHash.get(index);
    if (seen === undefined) this.appliedHash.set(index, hash);
    else if (seen !== hash) this.fail(`state-machine safety: ${id} applied a different history at index ${index}`);
  }

  /** Something that must never happen did (e.g. the core threw). */
  onError(msg: string): void {
    this.fail(msg);
  }
}
