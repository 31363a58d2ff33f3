// Dispatches a policy made to each child that the child's summary cannot show
// yet, kept across pickers.
//
// A cell rebuilds its picker on every summary, so a picker's own count of
// routes (sinceSnapshot) restarts while the other children's summaries are
// still old: each rebuild forgot what was just sent to them, and a burst
// herded onto whichever child's old summary looked idlest (issue 11: 500 ms
// stale summaries put 2x the mean load on some children). The policy keeps,
// per child, the routes of each past picker (an epoch) and adds to the
// child's load those its summary cannot show: the summary was taken at
// now − summaryAgeMs, and an epoch's routes count as unseen unless it was
// taken after the epoch's picker was built. Routes are timed by the build
// (their exact times are not known): the dispatcher builds a picker in the
// pump that routes with it, and timing them by the next build instead
// counted sends twice at low load, where a picker lives long (bench:sched,
// outages: p99 +8%). A candidate with summaryAgeMs 0 (a node's own view of
// its agents) has nothing unseen. Cost per build: O(candidates) plus
// amortised O(1) per epoch entry.

import type { BasePicker } from './picker.js';
import type { Candidate } from './types.js';

interface Ledger {
  /** Per epoch with routes to this child: when its picker was built, and how many. */
  readonly at: number[];
  readonly counts: number[];
  head: number;
  /** Σ counts from head. */
  total: number;
}

export class UnseenSends {
  private readonly byId = new Map<string, Ledger>();
  private prevCands: readonly Candidate[] = [];
  private prevPicker: BasePicker | undefined = undefined;
  private prevBuilt = 0;

  /** Closes the previous picker's epoch at `now`; returns unseen routes per candidate index. */
  begin(cands: readonly Candidate[], now: number): Float64Array {
    const prev = this.prevPicker;
    if (prev !== undefined) {
      for (let i = 0; i < this.prevCands.length; i++) {
        const n = prev.routedTo(i);
        if (n <= 0) continue;
        const id = this.prevCands[i]!.id;
        let l = this.byId.get(id);
        if (l === undefined) this.byId.set(id, (l = { at: [], counts: [], head: 0, total: 0 }));
        l.at.push(this.prevBuilt);
        l.counts.push(n);
        l.total += n;
      }
    }
    const out = new Float64Array(cands.length);
    if (this.byId.size === 0) return out;
    let found = 0;
    for (let i = 0; i < cands.length; i++) {
      const c = cands[i]!;
      const l = this.byId.get(c.id);
      if (l === undefined) continue;
      found++;
      const takenAt = now - Math.max(0, c.summaryAgeMs);
      while (l.head < l.at.length && l.at[l.head]! < takenAt) l.total -= l.counts[l.head++]!;
      if (l.head > 64 && l.head * 2 > l.at.length) {
        l.at.splice(0, l.head);
        l.counts.splice(0, l.head);
        l.head = 0;
      }
      out[i] = l.total;
    }
    // Children that left are forgotten (memory stays bounded by the candidates).
    if (found < this.byId.size) {
      const ids = new Set(cands.map((c) => c.id));
      for (const id of this.byId.keys()) if (!ids.has(id)) this.byId.delete(id);
    }
    return out;
  }

  /** The picker built from `cands` at `now`: its routes form the epoch closed by the next begin(). */
  attach(cands: readonly Candidate[], picker: BasePicker, now: number): void {
    this.prevBuilt = now;
    this.prevCands = cands;
    this.prevPicker = picker;
  }
}
