// The placement decisions a cell made lately, for AdminService.ExplainTask:
// for each task routed (to a child or an agent) or spilled up, what the
// policy saw (Picker.explain: candidates, scores, why the chosen one won).
//
// Bounded: a ring of the last TRAIL_DECISIONS decisions, each listing at most
// TRAIL_CANDIDATES candidates; a task keeps only its latest decision here (its
// last attempt's), and one that fell out of the ring is simply not explained.
// Scoring costs one scan of the kind's candidates (tens of µs at a node of a
// hundred agents), so a cell scores at most EXPLAIN_PER_SECOND decisions a
// second (a token bucket); past it a decision still names where the task went,
// unscored. No task waits for it: the dispatcher records after the pick.
import { explanationOf, madeUnder, type ExplainSink, type Explanation, type ScoreRule } from '../policies/index.js';
import { StringMap } from '../util/string-map.js';
import type { WorkItem } from './types.js';

/** Decisions a cell keeps (the ring). */
export const TRAIL_DECISIONS = 1024;
/** Candidates listed per decision: the chosen one and the best others. */
export const TRAIL_CANDIDATES = 8;
/**
 * Decisions a cell scores per second (a burst of as many). Every decision at a few hundred tasks a
 * second; at full rate scoring 2,000 a second cost a node ~10% of its CPU for decisions the ring
 * overwrites within a tenth of a second (docs/performance.md, "The mesh bench").
 */
export const EXPLAIN_PER_SECOND = 500;

export interface Decision {
  readonly taskId: string;
  /** The attempt placed (a home task's is known once it is sent: `sent`). */
  attempt: number;
  readonly kind: string;
  readonly atMs: number;
  /** The policy in force. */
  readonly policy: string;
  /** child: sent to the child cell `chosen`; agent: assigned to agent `chosen`; parent: spilled up. */
  readonly action: 'child' | 'agent' | 'parent';
  readonly chosen: string;
  /** Absent for a spill-up (no policy choice), and past the scoring budget. */
  readonly explanation: Explanation | undefined;
  /** For a spill-up: why nothing here could take it. */
  readonly note: string;
}

/**
 * A ring slot: written in place for each decision (no allocation per task), copied out when read. An
 * explanation made by explainView is kept as its rule and figures: its listed candidates go into the
 * trail's typed arrays (Figures), so the objects a decision came with die young instead of being copied
 * by every scavenge while the decision stays in the ring (1-2 s at 500 tasks/s; docs/performance.md, "Session
 * 11: the root"). Another explanation is kept as it is (`explanation`).
 */
interface Slot {
  taskId: string;
  attempt: number;
  kind: string;
  atMs: number;
  policy: string;
  action: Decision['action'];
  chosen: string;
  explanation: Explanation | undefined;
  note: string;
  /** The kept explanation's rule (undefined: none kept as figures), totals and candidates listed. */
  rule: ScoreRule | undefined;
  total: number;
  eligible: number;
  listed: number;
}

/** The candidates each slot lists, TRAIL_CANDIDATES a slot. */
class Figures {
  readonly ids: string[];
  readonly whyNot: string[];
  readonly scores: Float64Array;
  readonly credits: Float64Array;
  readonly eligible: Uint8Array;

  constructor(n: number) {
    this.ids = new Array<string>(n).fill('');
    this.whyNot = new Array<string>(n).fill('');
    this.scores = new Float64Array(n);
    this.credits = new Float64Array(n);
    this.eligible = new Uint8Array(n);
  }

  /** Keep `e` in slot `s` (number `i`) if it is explainView's; false if not. */
  keep(s: Slot, i: number, e: Explanation): boolean {
    const made = madeUnder(e);
    if (made === undefined || made.chosen !== s.chosen || e.candidates.length > TRAIL_CANDIDATES) return false;
    const c = e.candidates;
    for (let j = 0, at = i * TRAIL_CANDIDATES; j < c.length; j++, at++) {
      const m = c[j]!;
      this.ids[at] = m.id;
      this.whyNot[at] = m.whyNot;
      this.scores[at] = m.score;
      this.credits[at] = m.credits;
      this.eligible[at] = m.eligible ? 1 : 0;
    }
    s.rule = made.scoreRule;
    s.total = e.total;
    s.eligible = e.eligible;
    s.listed = c.length;
    return true;
  }

  /** Slot `s`'s explanation again (a new object each read). */
  explanation(s: Slot, i: number): Explanation | undefined {
    if (s.rule === undefined) return s.explanation;
    const listed = [];
    for (let j = 0, at = i * TRAIL_CANDIDATES; j < s.listed; j++, at++) {
      listed.push({
        id: this.ids[at]!,
        score: this.scores[at]!,
        eligible: this.eligible[at] === 1,
        whyNot: this.whyNot[at]!,
        credits: this.credits[at]!,
      });
    }
    return explanationOf(s.rule, s.chosen, listed, s.total, s.eligible);
  }
}

/**
 * Where a scored decision's figures go as the picker finds them (Picker.explainTo): straight into its
 * slot's typed arrays, with no object per candidate nor per explanation (a node scores up to
 * EXPLAIN_PER_SECOND decisions a second; docs/policies.md, "Session 16"). At most TRAIL_CANDIDATES rows.
 */
class FigureSink implements ExplainSink {
  private slot: Slot | undefined;
  private base = 0;
  private n = 0;

  constructor(private readonly f: Figures) {}

  /** Write slot `s` (number `i`) from its first row. */
  at(s: Slot, i: number): this {
    this.slot = s;
    this.base = i * TRAIL_CANDIDATES;
    this.n = 0;
    return this;
  }

  row(id: string, score: number, eligible: boolean, whyNot: string, credits: number): void {
    if (this.n === TRAIL_CANDIDATES) return;
    const at = this.base + this.n++;
    const f = this.f;
    f.ids[at] = id;
    f.whyNot[at] = whyNot;
    f.scores[at] = score;
    f.credits[at] = credits;
    f.eligible[at] = eligible ? 1 : 0;
  }

  counts(total: number, eligible: number): void {
    const s = this.slot!;
    s.total = total;
    s.eligible = eligible;
    s.listed = this.n;
  }

  /** The rows and counts given were made under `rule`: the slot answers with them from now on. */
  done(rule: ScoreRule): void {
    this.slot!.rule = rule;
    this.slot = undefined;
  }
}

export class Trail {
  private readonly ring: Slot[];
  private next = 0;
  private filled = 0;
  /**
   * Task id → its latest decision's slot, built when read (ExplainTask, the mesh simulator's
   * checks) and dropped by the next record: a map kept up to date cost a set and a delete per
   * decision on every cell's hot path (docs/performance.md, "The mesh bench").
   */
  private index: Map<string, number> | undefined;
  /**
   * Home decisions recorded before their attempt is numbered (sent() fills it in): task id → slot. Set
   * and deleted once per home task: a StringMap, whose table is not remade (src/util/string-map.ts).
   */
  private readonly unnumbered = new StringMap<number>();

  constructor(readonly capacity = TRAIL_DECISIONS) {
    this.ring = Array.from({ length: capacity }, () => ({
      taskId: '',
      attempt: 0,
      kind: '',
      atMs: 0,
      policy: '',
      action: 'child' as Decision['action'],
      chosen: '',
      explanation: undefined,
      note: '',
      rule: undefined,
      total: 0,
      eligible: 0,
      listed: 0,
    }));
    this.figures = new Figures(capacity * TRAIL_CANDIDATES);
    this.sink = new FigureSink(this.figures);
  }

  private readonly figures: Figures;
  private readonly sink: FigureSink;

  private tokens = EXPLAIN_PER_SECOND;
  private refilledMs = Number.NEGATIVE_INFINITY;

  get enabled(): boolean {
    return this.capacity > 0;
  }

  /** May a decision made at `now` be scored (the budget of EXPLAIN_PER_SECOND)? Takes a token if so. */
  mayScore(now: number): boolean {
    if (now > this.refilledMs) {
      const add =
        this.refilledMs === Number.NEGATIVE_INFINITY
          ? EXPLAIN_PER_SECOND
          : ((now - this.refilledMs) * EXPLAIN_PER_SECOND) / 1000;
      this.tokens = Math.min(EXPLAIN_PER_SECOND, this.tokens + add);
      this.refilledMs = now;
    }
    if (this.tokens < 1) return false;
    this.tokens--;
    return true;
  }

  record(d: Decision): void {
    this.decided(d, d.atMs, d.policy, d.action, d.chosen, d.explanation, d.note);
  }

  /** Record a decision about `item` made at `atMs` (record's fields, from the item). */
  decided(
    item: Pick<WorkItem, 'taskId' | 'attempt' | 'kind'>,
    atMs: number,
    policy: string,
    action: Decision['action'],
    chosen: string,
    explanation: Explanation | undefined,
    note: string,
  ): void {
    if (this.capacity === 0) return;
    const i = this.next;
    this.next = i + 1 === this.capacity ? 0 : i + 1;
    if (this.filled < this.capacity) this.filled++;
    const s = this.ring[i]!;
    if (s.attempt === 0 && s.taskId !== '' && this.unnumbered.get(s.taskId) === i) this.unnumbered.delete(s.taskId);
    s.taskId = item.taskId;
    s.attempt = item.attempt;
    s.kind = item.kind;
    s.atMs = atMs;
    s.policy = policy;
    s.action = action;
    s.chosen = chosen;
    s.rule = undefined;
    s.explanation = explanation !== undefined && this.figures.keep(s, i, explanation) ? undefined : explanation;
    s.note = note;
    if (item.attempt === 0) this.unnumbered.set(item.taskId, i);
    this.index = undefined;
  }

  /**
   * Where the figures of the decision just recorded (decided, with no explanation) go as the picker
   * finds them (Picker.explainTo); then `scored(rule)`. Until then (or if the scoring threw) the
   * decision reads as unscored.
   */
  scoring(): ExplainSink {
    const i = (this.next - 1 + this.capacity) % this.capacity;
    return this.sink.at(this.ring[i]!, i);
  }

  /** The figures given to scoring()'s sink were made under `rule`. */
  scored(rule: ScoreRule): void {
    this.sink.done(rule);
  }

  /** A home attempt got its number after the pick (Home.startAttempts): fill it in. */
  sent(item: WorkItem): void {
    if (item.origin.type !== 'home') return;
    const i = this.unnumbered.get(item.taskId);
    if (i === undefined) return;
    this.unnumbered.delete(item.taskId);
    const s = this.ring[i]!;
    if (s.taskId === item.taskId && s.attempt === 0) s.attempt = item.attempt;
  }

  /** The latest decision about the task here, if still in the ring. */
  latest(taskId: string): Decision | undefined {
    const i = this.indexed().get(taskId);
    if (i === undefined) return undefined;
    const s = this.ring[i]!;
    const { atMs, policy, action, chosen, note } = s;
    const explanation = this.figures.explanation(s, i);
    return { taskId, attempt: s.attempt, kind: s.kind, atMs, policy, action, chosen, explanation, note };
  }

  /** Tasks with a decision in the ring. */
  get size(): number {
    return this.indexed().size;
  }

  private indexed(): Map<string, number> {
    if (this.index !== undefined) return this.index;
    const index = new Map<string, number>();
    // Oldest to newest: a task's later decision replaces its earlier one.
    for (let n = this.filled, i = (this.next - n + this.capacity) % this.capacity; n > 0; n--) {
      index.set(this.ring[i]!.taskId, i);
      i = i + 1 === this.capacity ? 0 : i + 1;
    }
    return (this.index = index);
  }
}
