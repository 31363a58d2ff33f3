// When the child side of a link (parent-link.ts) sends its parent a summary,
// and when it writes the acks of dispatches it accepted. Apart from the stream
// handling in parent-link.ts because these rules decide the parent's credit
// view, and they read best on their own.
//
// A summary goes out at least every summaryIntervalMs, when the shape of the
// capacity changed (kinds, totals, healthy agents, draining), and when the
// parent's view of our free slots (the free of our last summary minus the
// dispatches we accepted since) is off from the truth: too high (any amount),
// or too low by an eighth of the kind's slots or while the parent is nearly
// out of credit. A summary the parent does not need costs a message per hop
// per task at low rates; one it needs is never held back. Skipping is always
// safe: between summaries the parent's credit only shrinks.
//
// Accepted acks do not move the parent's credit (unacked − 1, acked since the
// summary + 1), so they are held and written just before the next summary (or
// once MAX_HELD_ACKS pile up); nacks, which return credit, go at once.
import type { DispatchAck, KindCapacity, Summary } from '../gen/meshlb/v1/link.js';
import { creditOf, sameShape, type Summarizer } from './summary.js';

/** Accepted acks held back at most this many before they are written anyway. */
const MAX_HELD_ACKS = 256;

/**
 * How often a parent with nothing else to write to a child still says "still here" (a keepalive,
 * child-links.ts): four times per link timeout, and never more often than summaries. Failure detection
 * reads only the silence against linkTimeoutMs, so it is unchanged; a live parent's longest silence goes
 * from summaryIntervalMs to this (500 ms by default, against the 2,000 ms timeout). The child's periodic
 * summary keeps summaryIntervalMs: placement reads more of it than liveness (docs/performance.md, "Session 12").
 */
export function idleLinkIntervalMs(s: { readonly summaryIntervalMs: number; readonly linkTimeoutMs: number }): number {
  return Math.max(s.summaryIntervalMs, s.linkTimeoutMs / 4);
}

export class SummaryPacer {
  private seq = 0;
  /** The kinds of the last summary sent, and whether the cell was draining then (undefined: none on this stream). */
  private lastKinds: readonly KindCapacity[] | undefined;
  private lastDraining = false;
  /** Per kind: free slots in our last summary, and dispatches we accepted since (the parent's view). */
  private readonly reportedFree = new Map<string, number>();
  private readonly acceptedSince = new Map<string, number>();
  /** Accepted acks waiting for the next summary (which they must precede). */
  private held: DispatchAck[] = [];
  private lastSummaryMs = 0;
  private due = false;

  constructor(private readonly summaries: Summarizer) {}

  /** A parent welcomed a new stream: the next flush carries a summary, whatever changed. */
  welcomed(): void {
    this.due = true;
    this.lastKinds = undefined;
  }

  /** We accepted a dispatch of `kind` from the parent: its ack waits for the next summary. */
  accepted(kind: string, ack: DispatchAck): void {
    this.acceptedSince.set(kind, (this.acceptedSince.get(kind) ?? 0) + 1);
    this.held.push(ack);
  }

  /** So many acks are held that they are written now, summary or not. */
  get tooManyHeld(): boolean {
    return this.held.length >= MAX_HELD_ACKS;
  }

  /** The held acks, to write now (the pacer forgets them). */
  takeHeld(): DispatchAck[] {
    const acks = this.held;
    this.held = [];
    return acks;
  }

  /** The stream broke or closed: held acks go with it. */
  dropHeld(): void {
    this.held = [];
  }

  /** From the periodic tick: true when a summary is due because summaryIntervalMs passed since the last one. */
  periodic(now: number, intervalMs: number): boolean {
    if (now - this.lastSummaryMs < intervalMs) return false;
    this.due = true;
    return true;
  }

  /**
   * The summary to send now, or undefined when the parent does not need one.
   * The caller writes every held ack (takeHeld) before it: the summary counts them.
   */
  next(now: number, selfAddress: string): Summary | undefined {
    const summaries = this.summaries;
    // Judge from the kinds alone; the whole summary is built only when one goes out.
    const load = summaries.load(now);
    const kinds = summaries.kinds(load, now);
    const draining = summaries.draining;
    const same = draining === this.lastDraining && sameShape(kinds, this.lastKinds);
    if (!this.due && same && !this.parentViewOff(kinds)) {
      summaries.recycle(kinds);
      return undefined;
    }
    const s = summaries.build(this.seq + 1, now, selfAddress, load, kinds);
    this.seq++;
    this.due = false;
    this.lastKinds = s.kinds;
    this.lastDraining = draining;
    this.lastSummaryMs = now;
    this.reportedFree.clear();
    this.acceptedSince.clear();
    for (const k of s.kinds) this.reportedFree.set(k.kind, creditOf(k));
    return s;
  }

  /** Is the parent's credit view of some kind far enough from the truth to need a summary? */
  private parentViewOff(kinds: readonly KindCapacity[]): boolean {
    for (const k of kinds) {
      const view = (this.reportedFree.get(k.kind) ?? 0) - (this.acceptedSince.get(k.kind) ?? 0);
      const gap = creditOf(k) - view;
      if (gap === 0) continue;
      if (gap < 0) return true;
      const threshold = Math.max(1, Math.floor(k.totalSlots / 8));
      if (gap >= threshold || view <= threshold) return true;
    }
    return false;
  }
}
