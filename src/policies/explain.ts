// Placement explained (Picker.explain): the candidates a policy scored for one
// pick, put in order and summed up in a sentence. Pure; the scan itself is
// BasePicker's, the scores and their meaning each policy's (scoreOf,
// scoreRule), so every policy explains itself through the one interface.
import type { Candidate, ExplainSink, Explanation, ScoredCandidate, ScoreRule, TaskInfo } from './types.js';

export type { ExplainSink };

/** What a policy without scores of its own says (a baseline that draws or takes turns overrides the rule). */
export const NO_SCORE: ScoreRule = { score: 'none', rule: 'any eligible candidate', better: 'none' };

/** A task with a context key goes to the key's holder on the hash ring first (./context.ts): say so. */
export function contextRule(r: ScoreRule, task: TaskInfo): ScoreRule {
  if (!task.contextKey) return r;
  const how = task.contextHard ? 'only its holder (hard)' : 'its holder while within the load bound, else';
  return { ...r, rule: `context key: ${how} ${task.contextHard ? '' : r.rule}`.trim(), better: 'none' };
}

/** A picker's view of one kind, as explain reads it (positions 0..size-1). */
export interface ExplainSource {
  readonly size: number;
  /** The chosen member's position (-1: not a member). */
  readonly chosen: number;
  id(pos: number): string;
  ok(pos: number): boolean;
  whyNot(pos: number): string;
  score(pos: number): number;
  credits(pos: number): number;
  /** Score only these positions (ascending): a policy's index already knows the best ones. */
  readonly subset?: ExplainSubset | undefined;
}

/** What a picker answers about member `pos` of its view `v` of a kind (BasePicker). */
export interface ViewReads<V> {
  id(v: V, pos: number): string;
  ok(v: V, pos: number): boolean;
  whyNot(v: V, pos: number): string;
  score(v: V, pos: number, task: TaskInfo): number;
  credits(v: V, pos: number): number;
}

/** An ExplainSource over one view, reused by a picker for each explanation (no closures per pick). */
export class ViewSource<V> implements ExplainSource {
  private v!: V;
  private task!: TaskInfo;
  size = 0;
  chosen = -1;
  subset: ExplainSubset | undefined;

  constructor(private readonly reads: ViewReads<V>) {}

  /** This source, now over `v` for `task` (explainView reads it synchronously). */
  of(v: V, size: number, task: TaskInfo, chosen: number, subset: ExplainSubset | undefined): this {
    this.v = v;
    this.size = size;
    this.task = task;
    this.chosen = chosen;
    this.subset = subset;
    return this;
  }

  id(pos: number): string {
    return this.reads.id(this.v, pos);
  }
  ok(pos: number): boolean {
    return this.reads.ok(this.v, pos);
  }
  whyNot(pos: number): string {
    return this.reads.whyNot(this.v, pos);
  }
  score(pos: number): number {
    return this.reads.score(this.v, pos, this.task);
  }
  credits(pos: number): number {
    return this.reads.credits(this.v, pos);
  }
}

/** The members worth scoring for an explanation, and how many are eligible in all. */
export interface ExplainSubset {
  /** Ascending positions; a superset of the best `limit` eligible members. */
  readonly positions: readonly number[];
  readonly eligible: number;
}

/** `subset` holding member `pos` too (-1: none to add). */
export function withMember(subset: ExplainSubset | undefined, pos: number): ExplainSubset | undefined {
  if (subset === undefined || pos < 0 || subset.positions.includes(pos)) return subset;
  return { positions: [...subset.positions, pos].sort((a, b) => a - b), eligible: subset.eligible };
}

/**
 * The chosen one, then the best others up to `limit` (eligible first, by the
 * policy's score): one pass over the members (or the subset the policy
 * names), no sort, objects only for those listed. Draining candidates of the
 * kind (not in the view; `cands` need hold only the draining ones) are
 * counted and listed last.
 */
export function explainView(
  rule: ScoreRule,
  cands: readonly Candidate[],
  task: TaskInfo,
  chosen: string,
  limit: number,
  src: ExplainSource | undefined,
): Explanation {
  const list = new ListSink();
  explainInto(list, rule, cands, task, limit, src);
  return explanationOf(rule, chosen, list.listed, list.total, list.eligible);
}

/** The explanation `explain` gives to a list (Picker.explain from Picker.explainTo). */
export function explained(chosen: string, explain: (sink: ExplainSink) => ScoreRule): Explanation {
  const list = new ListSink();
  const rule = explain(list);
  return explanationOf(rule, chosen, list.listed, list.total, list.eligible);
}

/** Collects an explanation's rows as objects. */
class ListSink implements ExplainSink {
  readonly listed: ScoredCandidate[] = [];
  total = 0;
  eligible = 0;
  row(id: string, score: number, eligible: boolean, whyNot: string, credits: number): void {
    this.listed.push({ id, score, eligible, whyNot, credits });
  }
  counts(total: number, eligible: number): void {
    this.total = total;
    this.eligible = eligible;
  }
}

/**
 * explainView's figures, given to `sink` as they are found: the listed candidates in order (the chosen
 * one first), then the counts. Makes no object per candidate: a cell's trail writes them straight into
 * its typed arrays (src/mesh/dispatcher-trail.ts).
 */
export function explainInto(
  sink: ExplainSink,
  rule: ScoreRule,
  cands: readonly Candidate[],
  task: TaskInfo,
  limit: number,
  src: ExplainSource | undefined,
): void {
  let listed = 0;
  let total = 0;
  let eligible = 0;
  if (src !== undefined) {
    const n = (total = src.size);
    if (key.length < n) {
      key = new Float64Array(Math.max(n, 2 * key.length));
      ok = new Uint8Array(key.length);
    }
    const sign = rule.better === 'higher' ? -1 : 1;
    // One pass: every member's figures, and the best `want` others kept in order (insertion, want <= limit).
    const want = Math.max(0, limit - (src.chosen >= 0 ? 1 : 0));
    const top = scratchTop;
    top.length = 0;
    const sub = src.subset;
    if (sub !== undefined && src.chosen >= 0 && !sub.positions.includes(src.chosen)) {
      throw new Error('explain: the subset must hold the chosen member (bug)');
    }
    const m = sub === undefined ? n : sub.positions.length;
    for (let q = 0; q < m; q++) {
      const p = sub === undefined ? q : sub.positions[q]!;
      ok[p] = src.ok(p) ? 1 : 0;
      eligible += ok[p]!;
      key[p] = sign * src.score(p);
      if (p === src.chosen || want === 0) continue;
      if (top.length === want && !before(ok[p]!, key[p]!, ok[top[want - 1]!]!, key[top[want - 1]!]!)) continue;
      let at = Math.min(top.length, want - 1);
      while (at > 0 && before(ok[p]!, key[p]!, ok[top[at - 1]!]!, key[top[at - 1]!]!)) at--;
      top.splice(at, 0, p);
      if (top.length > want) top.pop();
    }
    if (sub !== undefined) eligible = sub.eligible;
    if (src.chosen >= 0) row(sink, src, sign, src.chosen);
    for (const p of top) row(sink, src, sign, p);
    listed = (src.chosen >= 0 ? 1 : 0) + top.length;
  }
  for (const c of cands) {
    const s = c.slots.get(task.kind);
    if (!c.draining || s === undefined || !(s.total > 0)) continue;
    total++;
    if (listed < limit) {
      listed++;
      sink.row(c.id, NaN, false, 'draining', 0);
    }
  }
  sink.counts(total, eligible);
}

/** One listed member, from the scratch figures of the pass. */
function row(sink: ExplainSink, src: ExplainSource, sign: number, p: number): void {
  sink.row(src.id(p), sign * key[p]!, ok[p] === 1, ok[p] ? '' : src.whyNot(p), src.credits(p));
}

/** The best others of the pass in order (explanations are made one at a time, synchronously). */
const scratchTop: number[] = [];

/** Scratch for explainView, grown as needed (explanations are made one at a time, synchronously). */
let key = new Float64Array(64);
let ok = new Uint8Array(64);

/** Eligible before not; then the lower (signed) score, NaN last. */
function before(okA: number, a: number, okB: number, b: number): boolean {
  if (okA !== okB) return okA > okB;
  if (Number.isNaN(b)) return !Number.isNaN(a);
  return a < b;
}

/**
 * An explanation whose sentence is worded when read: a cell records one per
 * decision (dispatcher-trail.ts, up to 2,000 a second) and ExplainTask reads
 * few of them, so the figures are kept and the words wait.
 */
class Explained implements Explanation {
  readonly score: string;
  readonly rule: string;
  private worded: string | undefined;

  constructor(
    readonly scoreRule: ScoreRule,
    readonly chosen: string,
    readonly candidates: ScoredCandidate[],
    readonly total: number,
    readonly eligible: number,
  ) {
    this.score = scoreRule.score;
    this.rule = scoreRule.rule;
  }

  get why(): string {
    if (this.worded === undefined) {
      const listed = this.candidates;
      const pick = listed[0]?.id === this.chosen ? listed[0] : undefined;
      this.worded = why(this.scoreRule, pick, pick ? listed.slice(1) : listed, this.eligible);
    }
    return this.worded;
  }

  /** As the plain object it stands for (logs, tests). */
  toJSON(): Explanation {
    const { score, rule, why, candidates, total, eligible } = this;
    return { score, rule, why, candidates, total, eligible };
  }
}

/**
 * What a compact store keeps of an explanation besides its figures (dispatcher-trail.ts keeps those in
 * typed arrays, so a decision held for seconds is no object a scavenge copies): the rule it was made
 * under and the chosen one; undefined for one made other than by explainView.
 */
export function madeUnder(e: Explanation): { readonly scoreRule: ScoreRule; readonly chosen: string } | undefined {
  return e instanceof Explained ? e : undefined;
}

/**
 * The explanation of a pick from the candidates listed (the chosen one first, then the best
 * others, as BasePicker.explain chose them), with why it won; also the explanation again from
 * what madeUnder and the figures kept (dispatcher-trail.ts): it answers as the one explainView made.
 */
export function explanationOf(
  rule: ScoreRule,
  chosen: string,
  listed: ScoredCandidate[],
  total: number,
  eligible: number,
): Explanation {
  return new Explained(rule, chosen, listed, total, eligible);
}

function why(rule: ScoreRule, pick: ScoredCandidate | undefined, rest: ScoredCandidate[], eligible: number): string {
  if (!pick) return `${rule.rule}; the chosen candidate was not among the candidates of the kind`;
  const among = `among ${eligible} eligible`;
  if (rule.better === 'none' || Number.isNaN(pick.score)) return `${rule.rule}, ${among}`;
  const next = rest.find((c) => c.eligible && !Number.isNaN(c.score));
  const word = rule.better === 'lower' ? 'lowest' : 'highest';
  const mine = `${rule.score}: ${fmt(pick.score)}`;
  if (!next) return `the only eligible candidate (${mine})`;
  const beats = rule.better === 'lower' ? pick.score <= next.score : pick.score >= next.score;
  if (beats) {
    const tie =
      pick.score === next.score ? `tied with ${next.id}, drawn at random` : `next ${next.id} at ${fmt(next.score)}`;
    return `${word} ${mine} ${among}; ${tie}`;
  }
  return `${rule.rule} (${mine}, ${among}; the ${word} is ${next.id} at ${fmt(next.score)})`;
}

const fmt = (x: number): string => (Number.isInteger(x) ? String(x) : x.toPrecision(4).replace(/\.?0+$/, ''));
