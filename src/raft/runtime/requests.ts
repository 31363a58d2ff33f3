// Bookkeeping of what callers are waiting for: proposals (by request id, until
// their entry applies here) and ReadIndex reads (by context, until the leader
// confirmed an index and this replica applied it). Each has its own deadline.
// A proposal this replica appended to its own log (as leader) also records the
// entry's index and term, so it can be failed as soon as it can no longer
// commit (see lostBefore), rather than at its deadline.
//
// Deadlines share one timer (Deadlines, below), armed for the earliest: a timer set and cancelled per
// request cost a node cell about 4% of its CPU per logged task (two commits, a read barrier;
// docs/performance.md, "Durable (LOGGED) tasks"). Each request still fails at its own deadline.
import { realClock, type RaftClock, type RaftTimer } from './clock.js';
import { TimeoutError } from './errors.js';

interface Pending {
  resolve(v: unknown): void;
  reject(e: Error): void;
}

interface Waiting extends Pending {
  /** When it fails with TimeoutError (clock ms). */
  readonly deadline: number;
  readonly timeoutMs: number;
}

interface Proposal extends Waiting {
  /** Where this replica's core appended the entry; unset when forwarded or not appended yet. */
  at?: { readonly index: number; readonly term: number };
}

interface Read extends Waiting {
  index: number | undefined;
}

/**
 * The deadlines of the requests in `waiting` (two maps), on one timer armed for the earliest of them.
 * A request added with a later deadline than the one armed (the usual case: one timeout for all)
 * costs nothing here; when the timer fires it fails what is due and arms for the earliest left, one
 * scan of what still waits (at most once per timeout in the usual case).
 */
class Deadlines {
  private timer: RaftTimer | undefined;
  private armedFor = Number.POSITIVE_INFINITY;

  constructor(
    private readonly clock: RaftClock,
    private readonly waiting: ReadonlyArray<ReadonlyMap<string, Waiting>>,
    private readonly what: readonly string[],
  ) {}

  /** A request due at `deadline` was added. */
  added(deadline: number): void {
    if (deadline < this.armedFor) this.arm(deadline);
  }

  private arm(deadline: number): void {
    this.timer?.cancel();
    this.armedFor = deadline;
    this.timer = this.clock.setTimer(Math.max(0, deadline - this.clock.now()), () => this.fire());
  }

  /** Nothing waits any more (a stop): no timer left behind. */
  clear(): void {
    this.timer?.cancel();
    this.timer = undefined;
    this.armedFor = Number.POSITIVE_INFINITY;
  }

  private fire(): void {
    this.timer = undefined;
    this.armedFor = Number.POSITIVE_INFINITY;
    const now = this.clock.now();
    const due: Array<[Waiting, string]> = [];
    let next = Number.POSITIVE_INFINITY;
    this.waiting.forEach((m, i) => {
      for (const w of m.values()) {
        if (w.deadline <= now) due.push([w, this.what[i]!]);
        else if (w.deadline < next) next = w.deadline;
      }
    });
    if (next < Number.POSITIVE_INFINITY) this.arm(next);
    for (const [w, what] of due) w.reject(new TimeoutError(what, w.timeoutMs));
  }
}

export class Requests {
  private readonly proposals = new Map<string, Proposal>();
  /** Highest term passed to lostBefore: scans happen only when it grows (once per new term applied). */
  private lostTerm = 0;
  private readonly reads = new Map<string, Read>();
  private readonly deadlines: Deadlines;

  /** Deadlines run on `clock` (virtual in a simulation). */
  constructor(private readonly clock: RaftClock = realClock) {
    this.deadlines = new Deadlines(clock, [this.proposals, this.reads], ['raft proposal', 'raft read']);
  }

  /** Register a proposal under `id` with a deadline; `start` runs once it is registered. */
  propose(id: string, timeoutMs: number, start: () => void): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const deadline = this.clock.now() + timeoutMs;
      const proposals = this.proposals;
      let settled = false;
      proposals.set(id, {
        deadline,
        timeoutMs,
        resolve(v) {
          if (settled) return;
          settled = true;
          proposals.delete(id);
          resolve(v);
        },
        reject(e) {
          if (settled) return;
          settled = true;
          proposals.delete(id);
          reject(e);
        },
      });
      this.deadlines.added(deadline);
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
      const deadline = this.clock.now() + timeoutMs;
      const reads = this.reads;
      let settled = false;
      reads.set(ctx, {
        deadline,
        timeoutMs,
        index: undefined,
        resolve() {
          if (settled) return;
          settled = true;
          reads.delete(ctx);
          resolve();
        },
        reject(e) {
          if (settled) return;
          settled = true;
          reads.delete(ctx);
          reject(e);
        },
      });
      this.deadlines.added(deadline);
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
    for (const r of [...this.reads.values()]) if (r.index !== undefined && r.index <= applied) r.resolve(undefined);
  }

  failAll(err: Error): void {
    for (const p of [...this.proposals.values()]) p.reject(err);
    for (const r of [...this.reads.values()]) r.reject(err);
    if (this.proposals.size === 0 && this.reads.size === 0) this.deadlines.clear();
  }
}
