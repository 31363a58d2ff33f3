// When a simulated child cell sends its parent a summary. `credit` (the
// default): the rules of src/mesh/summary-pacer.ts: every summaryIntervalMs,
// and early when the shape of the capacity changed or the parent's view of a
// kind's credit (the credit of the last summary minus the dispatches accepted
// since) is off from the truth (creditViewOff: SummaryPacer.parentViewOff's
// rule, written out here), judged once per turn, as the parent link judges
// before each flush. `periodic` (the
// bench before session 13, which left the early summaries out): every
// summaryIntervalMs and never else. `speed` (tried in session 13, not in the
// mesh: docs/policies.md, finding 3): also when a node's expected completion of
// the next task, as its zone computes it from the speed groups of the last
// summary at its age, is off from the node's own by more than the zone's
// tolerance (speedViewOff), judged at most every `speedCheckMs` and not sooner
// after a summary.

import { CompletionCurve, type SpeedGroups } from '../../src/policies/index.js';
import type { SimSummary } from './views.js';

/**
 * The parent's view of a kind's credit (`view`: the last summary's minus the dispatches accepted
 * since) against the truth (`credit`, of `total` slots), as SummaryPacer.parentViewOff judges it:
 * above it by any amount, below it by an eighth of the slots, or below it while the view is itself
 * at or under that eighth (the parent nearly out of credit). Keep the two alike.
 */
export function creditViewOff(credit: number, total: number, view: number): boolean {
  const gap = credit - view;
  if (gap === 0) return false;
  if (gap < 0) return true;
  const threshold = Math.max(1, Math.floor(total / 8));
  return gap >= threshold || view <= threshold;
}

/** The speed rule's bound by default (ms): a node whose fast agents stay full would otherwise send one per turn. */
export const SPEED_CHECK_MS = 10;

/** Expected completions this far apart (a fraction of the lower) place differently: zone-least-conn's `tolerance`. */
const SPEED_VIEW_TOLERANCE = 0.2;

/**
 * Is the zone's expected completion of the next task at a node, from the node's last speed groups
 * (`was`) at their age with the `accepted` dispatches since on top, off from the node's own now (`is`)?
 */
export function speedViewOff(was: SpeedGroups, ageMs: number, accepted: number, is: SpeedGroups): boolean {
  const theirs = new CompletionCurve(was, ageMs).at(accepted);
  const ours = new CompletionCurve(is, 0).at(0);
  return Math.abs(theirs - ours) > SPEED_VIEW_TOLERANCE * Math.min(theirs, ours);
}

export type SummaryRule = 'periodic' | 'credit' | 'speed';

export class SimPacer {
  lastSentAt = -Infinity;
  private last: SimSummary | undefined = undefined;
  /** Per kind, dispatches accepted from the parent since the last summary was taken. */
  private readonly acceptedSince = new Map<string, number>();
  private lastSpeedCheck = -Infinity;
  private speedPending = false;

  accepted(kind: string): void {
    this.acceptedSince.set(kind, (this.acceptedSince.get(kind) ?? 0) + 1);
  }

  sent(s: SimSummary): void {
    this.last = s;
    this.lastSentAt = s.takenAt;
    this.speedPending = false;
    this.acceptedSince.clear();
  }

  /** A speed judgement skipped for its rate bound may run now (from the cell's tick). */
  speedRecheck(now: number, gapMs: number): boolean {
    return this.speedPending && now - this.lastSentAt >= gapMs && now - this.lastSpeedCheck >= gapMs;
  }

  /** Would the pacer of `rule` send `s` now? */
  due(now: number, rule: SummaryRule, s: SimSummary, gapMs: number): boolean {
    const last = this.last;
    if (rule === 'periodic') return false;
    if (last === undefined) return true;
    if (last.kinds.size !== s.kinds.size) return true;
    for (const [k, c] of s.kinds) {
      const l = last.kinds.get(k);
      if (l === undefined || l.total !== c.total || l.healthy !== c.healthy) return true;
      if (creditViewOff(c.credit, c.total, l.credit - (this.acceptedSince.get(k) ?? 0))) return true;
    }
    if (rule !== 'speed' || last.speed === undefined || s.speed === undefined) return false;
    if (now - this.lastSentAt < gapMs || now - this.lastSpeedCheck < gapMs) {
      this.speedPending = true;
      return false;
    }
    this.speedPending = false;
    this.lastSpeedCheck = now;
    for (const [k, was] of last.speed) {
      const is = s.speed.get(k);
      if (is && speedViewOff(was, now - last.takenAt, this.acceptedSince.get(k) ?? 0, is)) return true;
    }
    return false;
  }
}
