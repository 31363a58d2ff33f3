// Bookkeeping of what callers are waiting for: proposals (by request id, until
// their entry applies here) and ReadIndex reads (by context, until the leader
// confirmed an index and this replica applied it). Each has its own deadline.
// A proposal this replica appended to its own log (as leader) also records the
// entry's index and term, so it can be failed as soon as it can no longer
// commit (see lostBefore), rather than at its deadline.
import { realClock, type RaftClock } from './clock.js';
import { TimeoutError } from './errors.js';

interface Pending {
  resolve(v: unknown): void;
  reject(e: Error): void;
}

interface Proposal extends Pending {
  /** Where this replica's core appended the entry; unset when forwarded or not appended yet. */
  at?: { readonly index: number; readonly term: number };
}

interface Read {
  index: number | undefined;
  readonly p: Pending;
}

export class Requests {
  private readonly proposals = new Map<string, Proposal>();
  /** Highest term passed to lostBefore: scans happen only when it grows (once per new term applied). */
  private lostTerm = 0;
  private readonly reads = new Map<string, Read>();

  /** Deadlines run on `clock` (virtual in a simulation). */
  constructor(private readonly clock: RaftClock = realClock) {}

  /** Register a proposal under `id` with a deadline; `start` runs once it is registered. */
  propose(id: string, timeoutMs: number, start: () => void): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const timer = this.clock.setTimer(timeoutMs, () =>
        this.proposals.get(id)?.reject(new TimeoutError('raft proposal', timeoutMs)),
      );
      const settle = (fn: () => void) => {
        timer.cancel();
        this.proposals.delete(id);
        fn();
      };
      this.proposals.set(id, { resolve: (v) => settle(() => resolve(v)), reject: (e) => settle(() => reject(e)) });
      start();
    });
  }

  proposal(id: string): Pending | undefined {
    return this.proposals.get(id);
  }

  /** The core appended proposal `id`'s entry at (index, term) in this replica's log. */
  appended(id: string, index: number, term: number): void {
    const p = this.proposals.get(id);
    if (p) p.at = { index, term };
  }

  /**
   * Entries up to one of `term` are committed and applied here. An appended
   * proposal (i, t) with t < term that still waits can never commit: if i is at
   * or below that entry, its index was applied without our request id; if
   * above, every committed entry there has a term >= `term` (terms never
   * decrease along a log), so not t. Reject those with `err()`.
   */
  lostBefore(term: number, err: () => Error): void {
    if (term <= this.lostTerm) return;
    this.lostTerm = term;
    for (const p of [...this.proposals.values()]) if (p.at && p.at.term < term) p.reject(err());
  }

  /** A snapshot up to `index` replaced the state machine: proposals at or below it may be in it, unseen. */
  unknownUpTo(index: number): void {
    for (const p of this.proposals.values()) if (p.at && p.at.index <= index) p.at = undefined;
  }

  /** Register a read under `ctx` with a deadline; `start` runs once it is registered. */
  read(ctx: string, timeoutMs: number, start: () => void): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const timer = this.clock.setTimer(timeoutMs, () =>
        this.reads.get(ctx)?.p.reject(new TimeoutError('raft read', timeoutMs)),
      );
      const settle = (fn: () => void) => {
        timer.cancel();
        this.reads.delete(ctx);
        fn();
      };
      this.reads.set(ctx, {
        index: undefined,
        p: { resolve: () => settle(resolve), reject: (e) => settle(() => reject(e)) },
      });
      start();
    });
  }

  /** Contexts still waiting for the leader (to re-issue after a lost request). */
  unconfirmedReads(): string[] {
    return [...this.reads].filter(([, r]) => r.index === undefined).map(([ctx]) => ctx);
  }

  readConfirmed(ctx: string, index: number): void {
    const r = this.reads.get(ctx);
    if (r) r.index = index;
  }

  /** Resolve every read whose index is applied. */
  applied(applied: number): void {
    for (const r of [...this.reads.values()]) if (r.index !== undefined && r.index <= applied) r.p.resolve(undefined);
  }

  failAll(err: Error): void {
    for (const p of [...this.proposals.values()]) p.reject(err);
    for (const r of [...this.reads.values()]) r.p.reject(err);
  }
}
