// A parent cell's view of its child cells: each child's latest summary, and
// the dispatches that reached it after that summary was taken. The credit for
// a child is the summary's credit minus those (what child-link.ts keeps with
// its unacked and acked-since-summary counts); its candidate carries the
// summary as it is, stale by its age.

import {
  makeCandidate,
  type Candidate,
  type KindSlots,
  type Label,
  type SpeedGroups,
} from '../../src/policies/index.js';

export interface KindCredit {
  credit: number;
  total: number;
  healthy: number;
}

/** What a cell reports up (src/mesh/summary.ts), as of `takenAt`. */
export interface SimSummary {
  readonly epoch: number;
  readonly takenAt: number;
  readonly kinds: ReadonlyMap<string, KindCredit>;
  readonly active: number;
  readonly queueDepth: number;
  readonly latencyEwmaMs: number;
  readonly successEwma: number;
  readonly qps: number;
  readonly healthyAgents: number;
  readonly labels: readonly Label[];
  /**
   * Per kind, the sequence number of the last dispatch from the parent the child had taken in when
   * it took this summary (the mesh's child acknowledges dispatches; the parent counts the unacked).
   */
  readonly received: ReadonlyMap<string, number>;
  /** A node's agents by speed per kind (src/policies/completion.ts), as the mesh's nodes report them. */
  readonly speed?: ReadonlyMap<string, SpeedGroups>;
}

/** What the view needs of a child cell. */
export interface ChildRef {
  readonly id: string;
  readonly epoch: number;
  readonly up: boolean;
}

interface ChildView<C extends ChildRef> {
  readonly child: C;
  summary: SimSummary | undefined;
  alive: boolean;
  /** Summaries of older incarnations are ignored once the child is known dead. */
  minEpoch: number;
  /** Per kind, sequence numbers of dispatches not yet in a summary (from `head`), and the last one given. */
  readonly sends: Map<string, { seq: number[]; head: number; last: number }>;
}

/** Sums of the live children's summaries, for the parent's own summary. */
export interface Aggregate {
  readonly kinds: Map<string, KindCredit>;
  readonly labels: Map<string, Label>;
  healthy: number;
  qps: number;
  successSum: number;
  children: number;
  latencySum: number;
  latencyN: number;
}

export class ChildViews<C extends ChildRef> {
  private readonly views = new Map<string, ChildView<C>>();

  add(child: C): void {
    this.views.set(child.id, { child, summary: undefined, alive: false, minEpoch: 0, sends: new Map() });
  }

  child(id: string): C {
    return this.views.get(id)!.child;
  }

  /** A summary arrives; false if it is from an incarnation already known dead. */
  deliver(id: string, s: SimSummary): boolean {
    const v = this.views.get(id)!;
    if (s.epoch < v.minEpoch) return false;
    v.summary = s;
    v.alive = true;
    // By sequence, not by time: the credit rule takes a summary between two dispatches that reach
    // the child at the same instant, and by time the second counted as seen (credit violations).
    for (const [kind, q] of v.sends) {
      const seen = s.received.get(kind) ?? 0;
      while (q.head < q.seq.length && q.seq[q.head]! <= seen) q.head++;
      if (q.head > 256 && q.head * 2 > q.seq.length) {
        q.seq.splice(0, q.head);
        q.head = 0;
      }
    }
    return true;
  }

  /** The child is gone (link timeout): no candidate until it reports again. */
  lost(child: C): void {
    const v = this.views.get(child.id)!;
    v.alive = false;
    v.minEpoch = child.epoch + (child.up ? 0 : 1);
    if (!child.up) v.summary = undefined;
    for (const q of v.sends.values()) q.head = q.seq.length;
  }

  /** A dispatch of `kind` to the child: its sequence number, which the task carries to the child. */
  sent(id: string, kind: string): number {
    const v = this.views.get(id)!;
    let q = v.sends.get(kind);
    if (!q) v.sends.set(kind, (q = { seq: [], head: 0, last: 0 }));
    q.seq.push(++q.last);
    return q.last;
  }

  private credits(v: ChildView<C>, kind: string): number {
    const k = v.summary?.kinds.get(kind);
    if (!k) return 0;
    const q = v.sends.get(kind);
    return Math.max(0, k.credit - (q ? q.seq.length - q.head : 0));
  }

  candidates(now: number): Candidate[] {
    const out: Candidate[] = [];
    for (const v of this.views.values()) {
      const s = v.summary;
      if (!v.alive || !s) continue;
      const slots = new Map<string, KindSlots>();
      for (const [k, c] of s.kinds) {
        const speed = s.speed?.get(k);
        slots.set(k, { free: this.credits(v, k), total: c.total, ...(speed ? { speed } : {}) });
      }
      out.push(
        makeCandidate({
          id: v.child.id,
          slots,
          healthyAgents: s.healthyAgents,
          queueDepth: s.queueDepth,
          active: s.active,
          latencyEwmaMs: s.latencyEwmaMs,
          successEwma: s.successEwma,
          labels: s.labels,
          qps: s.qps,
          summaryAgeMs: now - s.takenAt,
        }),
      );
    }
    return out;
  }

  /** Adds the live children's summaries (credits as this parent sees them now) into `a`. */
  aggregate(a: Aggregate): void {
    for (const v of this.views.values()) {
      const s = v.summary;
      if (!v.alive || !s) continue;
      a.children++;
      a.healthy += s.healthyAgents;
      a.qps += s.qps;
      a.successSum += s.successEwma;
      if (s.latencyEwmaMs > 0) {
        a.latencySum += s.latencyEwmaMs;
        a.latencyN++;
      }
      for (const l of s.labels) a.labels.set(l.key + '\0' + l.value, l);
      for (const [k, kc] of s.kinds) {
        const c = a.kinds.get(k) ?? { credit: 0, total: 0, healthy: 0 };
        c.credit += this.credits(v, k);
        c.total += kc.total;
        c.healthy += kc.healthy;
        a.kinds.set(k, c);
      }
    }
  }
}
