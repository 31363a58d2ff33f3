// What a leader knows about one follower's log, and the flow-control state
// machine that decides when it may send more (after etcd's tracker, reworded).
//
//  probe:     we do not know where the follower's log diverges; send one append
//             per heartbeat interval and wait for its answer (it may be rejected).
//  replicate: the follower acks steadily; stream appends optimistically
//             (pipelining) up to the inflight window.
//  snapshot:  the entries it needs are compacted; a snapshot is on its way and
//             nothing else is sent until it is reported done or failed.

import { Inflights } from './inflights.js';

export type ProgressState = 'probe' | 'replicate' | 'snapshot';

export class Progress {
  /** Highest index known to be replicated on the follower. Invariant: match < next. */
  match = 0;
  /** Next index to send. */
  next: number;
  state: ProgressState = 'probe';
  /** probe only: an append was sent and not yet answered; cleared by any answer or a heartbeat response. */
  probeSent = false;
  /** snapshot only: the index of the snapshot being sent. */
  pendingSnapshot = 0;
  /** Heard from since the last check-quorum round. */
  recentActive = false;
  /** Highest commit index the follower reported in its responses (it knows entries up to here are committed). */
  commit = 0;
  /** Highest commit index the leader has put in an append to this follower (so an empty append need not repeat it). */
  sentCommit = 0;
  readonly inflights: Inflights;

  constructor(
    next: number,
    maxInflight: number,
    public isLearner = false,
  ) {
    this.next = next;
    this.inflights = new Inflights(maxInflight);
  }

  private reset(state: ProgressState): void {
    this.state = state;
    this.probeSent = false;
    this.pendingSnapshot = 0;
    this.inflights.reset();
  }

  becomeProbe(): void {
    if (this.state === 'snapshot') {
      // The follower will have the snapshot if it succeeded: resume after it.
      const pending = this.pendingSnapshot;
      this.reset('probe');
      this.next = Math.max(this.match + 1, pending + 1);
    } else {
      this.reset('probe');
      this.next = this.match + 1;
    }
  }

  becomeReplicate(): void {
    this.reset('replicate');
    this.next = this.match + 1;
  }

  becomeSnapshot(snapshotIndex: number): void {
    this.reset('snapshot');
    this.pendingSnapshot = snapshotIndex;
  }

  /** An append up to `n` was accepted. Returns whether match moved (stale acks return false). */
  maybeUpdate(n: number): boolean {
    let updated = false;
    if (this.match < n) {
      this.match = n;
      updated = true;
      this.probeSent = false;
    }
    this.next = Math.max(this.next, n + 1);
    return updated;
  }

  /** replicate: after sending entries up to `last`, assume they will land. */
  sentEntries(last: number, entryCount: number): void {
    if (this.state === 'replicate') {
      if (entryCount > 0) {
        this.next = last + 1;
        this.inflights.add(last);
      }
    } else if (this.state === 'probe') {
      this.probeSent = true;
    }
  }

  /**
   * An append whose prev index was `rejected` was refused; `hint` is the highest
   * index the leader may try next (the follower's conflict hint, already refined
   * with the leader's own log). Returns false for a stale rejection.
   */
  maybeDecrTo(rejected: number, hint: number): boolean {
    if (this.state === 'replicate') {
      // In replicate state next runs ahead; a reject at or below match is stale.
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    // A snapshot is on its way: the reject was for an older append.
    if (this.state === 'snapshot') return false;
    // probe: only a reject of the index we probed is meaningful.
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, hint + 1), this.match + 1, 1);
    this.probeSent = false;
    return true;
  }

  /** Whether the leader must hold off sending appends to this follower. */
  isPaused(): boolean {
    switch (this.state) {
      case 'probe':
        return this.probeSent;
      case 'replicate':
        return this.inflights.full();
      case 'snapshot':
        return true;
    }
  }
}
