// The shared half of every picker: eligibility, the credit overlay, and the
// route/queue/spillUp decision. A policy subclass only chooses among eligible
// candidates (select()), so the safety rules (never route to a full, draining,
// wrong-kind, excluded or affinity-failing candidate) live in one place.
//
// Per kind, a KindView is built lazily on the first pick of that kind: the indices of
// non-draining candidates with slots of the kind, and a Float64Array of remaining credits. Picks
// scan only that view, never sort, and return cached route objects: the route path allocates nothing.
//
// Kinds may share a candidate's slots (an agent's slots serve every kind it declares): then a
// per-candidate pool credit caps all its kinds, a route consumes both, and every built view
// containing the candidate has its creditSum adjusted, so credits(kind) stays exact (Σ min(kind, pool)).

import { ContextRing, LOAD_BOUND, loadCap, contextPick } from './context.js';
import { buildView, KindView, wholeCredits } from './picker-view.js';
import { AffinityMatch } from './affinity.js';
import { bestFit, waitOrSpill } from './multi-slot.js';
import {
  contextRule,
  explained,
  explainInto,
  NO_SCORE,
  ViewSource,
  withMember,
  type ExplainSubset,
} from './explain.js';
import { collectEligible, HOLDER_FULL, NO_HOLDER, selectMin } from './picker-select.js';
import { HELD, QUEUE_HELD } from './hold-back.js';
import {
  QUEUE_FULL,
  QUEUE_HOLDER,
  REJECT_NO_KIND,
  SPILL_NO_AFFINITY,
  SPILL_NO_KIND,
  SPILL_NO_MATCH,
} from './pick-results.js';
import type {
  Candidate,
  ContextLookup,
  ExplainSink,
  Explanation,
  PickResult,
  Picker,
  ScoreRule,
  TaskInfo,
} from './types.js';

export { KindView, SPILL_NO_AFFINITY };

export abstract class BasePicker implements Picker {
  private readonly views = new Map<string, KindView | null>();
  private readonly routes: PickResult[];
  private readonly indexById = new Map<string, number>();
  /** Shared-slot credit per candidate index (Infinity = kinds independent). */
  private readonly pool: Float64Array;
  private readonly poolTotal: Float64Array;
  /** Routes per candidate index through this picker (all kinds). */
  private readonly sent: Float64Array;
  /** Built views containing each pooled candidate, with its position in them. */
  private readonly memberOf: Array<Array<KindView | number>>;
  /** The task's affinity, per pick (./affinity.ts); held in a field so ok() needs no closure. */
  private readonly aff: AffinityMatch;
  private excl: readonly string[] | undefined = undefined;
  /** Context routing's load bound (./context.ts); the registry sets it from `contextLoadBound`. */
  contextBound = LOAD_BOUND;
  /** Contexts the candidates reported holding (a node's agents; Picker.contexts). */
  contexts: ContextLookup | undefined;
  /** The candidates, by index (replaceCandidate swaps one in). */
  protected readonly cands: Candidate[];
  /** The draining ones (explain lists them; replaceCandidate never changes who drains). */
  private readonly drainingCands: readonly Candidate[];
  /** What explain reads of a view (made once, not per call). */
  private readonly explained = new ViewSource<KindView>({
    id: (w, p) => this.candidateAt(w, p).id,
    ok: (w, p) => this.ok(w, p),
    whyNot: (w, p) => (!this.matches(w, p) ? this.mismatch(w, p) : this.fullWhy(w, p)),
    score: (w, p, t) => this.scoreOf(w, p, t),
    credits: (w, p) => this.avail(w, p),
  });
  private need = 1; // slots the task being picked takes (TaskInfo.slots): credits a route needs and takes

  constructor(
    cands: readonly Candidate[],
    protected readonly random: () => number,
  ) {
    this.cands = cands.slice();
    this.drainingCands = cands.filter((c) => c.draining);
    this.routes = cands.map((c) => Object.freeze({ type: 'route', candidate: c.id }) as PickResult);
    cands.forEach((c, i) => this.indexById.set(c.id, i));
    this.pool = Float64Array.from(cands, (c) => (c.sharedSlots ? wholeCredits(c.sharedSlots) : Infinity));
    this.poolTotal = Float64Array.from(cands, (c) => (c.sharedSlots ? c.sharedSlots.total : Infinity));
    this.sent = new Float64Array(cands.length);
    this.memberOf = cands.map(() => []);
    this.aff = new AffinityMatch(this.cands);
  }

  /** Choose a member position among those with ok(v, pos); -1 if none; HELD to keep the task queued (./hold-back.ts). */
  protected abstract select(v: KindView, task: TaskInfo): number;

  /** Hook for per-kind policy data, called once when a view is built. */
  protected initView(_v: KindView): void {}

  /**
   * Hook: avail(v, pos) may have changed (a route or release of this member,
   * or of another kind sharing its slots). For policies that index members by
   * availability instead of scanning them.
   */
  protected availChanged(_v: KindView, _pos: number): void {}

  pick(task: TaskInfo): PickResult {
    if (!task.kind) return REJECT_NO_KIND;
    const v = this.view(task.kind);
    this.need = task.slots !== undefined && task.slots > 1 ? task.slots : 1;
    if (v === null) return SPILL_NO_KIND;
    this.aff.set(task.kind, task.affinity, task.noMatchBelow);
    this.excl = task.exclude && task.exclude.length > 0 ? task.exclude : undefined;
    if (this.need > 1) return this.pickSlots(v);
    if (task.contextKey) {
      const pos = this.selectByContext(v, task.contextKey, task.contextHard === true);
      if (pos >= 0) return this.taken(v, pos);
      if (pos === HOLDER_FULL) return QUEUE_HOLDER;
      if (pos === NO_HOLDER) return this.noMatch(v);
    }
    if (v.creditSum > 0) {
      const pos = this.select(v, task);
      if (pos >= 0) {
        if (!this.ok(v, pos)) throw new Error(`policy chose an ineligible candidate (bug)`);
        return this.taken(v, pos);
      }
      if (pos === HELD) return QUEUE_HELD;
    }
    // Slow path: nothing routable. Queue if some candidate could take it later.
    if (this.aff.count === 0 && this.excl === undefined) return QUEUE_FULL;
    for (let p = 0; p < v.members.length; p++) if (this.matches(v, p)) return QUEUE_FULL;
    return this.noMatch(v);
  }

  /** No member matches: for want of one with the affinity (exclusions aside), or only of one not excluded. */
  private noMatch(v: KindView): PickResult {
    return this.aff.count > 0 && !v.members.some((idx) => this.aff.matches(idx)) ? SPILL_NO_AFFINITY : SPILL_NO_MATCH;
  }

  /** Route to member pos: its credits (and a described child's matching room) taken. */
  private taken(v: KindView, pos: number): PickResult {
    this.adjust(v, pos, -this.need);
    this.aff.routed(v.members[pos]!, this.need);
    return this.routes[v.members[pos]!]!;
  }

  release(candidateId: string, kind: string, slots = 1): void {
    const idx = this.indexById.get(candidateId);
    if (idx === undefined) return;
    const v = this.view(kind);
    if (v === null) return;
    const p = v.posOf![idx]!;
    // Never above total: a stray release must not create capacity.
    const pooled = this.pool[idx] === Infinity ? Infinity : this.poolTotal[idx]! - this.pool[idx]!;
    const n = Math.floor(Math.min(slots, v.total[p]! - v.credits[p]!, pooled));
    if (p >= 0 && n >= 1) this.adjust(v, p, n);
  }

  private pickSlots(v: KindView): PickResult {
    const pos = bestFit(v, (p) => (this.ok(v, p) ? this.avail(v, p) : -1), this.random);
    if (pos < 0 && this.aff.count > 0 && !v.members.some((idx) => this.aff.matches(idx))) return SPILL_NO_AFFINITY;
    if (pos < 0) return waitOrSpill(this.need, v, (p) => (this.matches(v, p) ? this.candidateAt(v, p) : undefined));
    v.block[pos]! -= this.need;
    return this.taken(v, pos);
  }

  take(candidateId: string, kind: string): void {
    const idx = this.indexById.get(candidateId);
    const v = idx === undefined ? null : this.view(kind);
    if (v === null) return;
    const p = v.posOf![idx!]!;
    // Never below zero: a placement past the credits (preemption above the nodes) takes none.
    if (p >= 0 && v.credits[p]! > 0) this.adjust(v, p, -1);
  }

  credits(kind: string): number {
    return this.view(kind)?.creditSum ?? 0;
  }

  hasKind(kind: string): boolean {
    return this.view(kind) !== null;
  }

  /**
   * The member a context key goes to (./context.ts): a reported holder first, then the ring;
   * or -1, soft and none has room within the load bound (the policy chooses); HOLDER_FULL,
   * hard and its holder has no credit; NO_HOLDER, hard and no member matches the task.
   */
  private selectByContext(v: KindView, key: string, hard: boolean): number {
    if (!v.ring) v.ring = new ContextRing(Array.from(v.members, (idx) => this.cands[idx]!.id));
    if (hard) {
      const holder = contextPick(this.contexts, v.ring, key, this.indexById, v.posOf!, (p) => this.matches(v, p));
      if (holder < 0) return NO_HOLDER;
      return this.ok(v, holder) ? holder : HOLDER_FULL;
    }
    if (v.creditSum <= 0) return -1;
    let total = 0;
    let slots = 0;
    for (let p = 0; p < v.members.length; p++) {
      total += this.contextLoad(v, p);
      slots += v.total[p]!;
    }
    const cap = loadCap(total, v.members.length, this.contextBound);
    const quiet = total < slots / 2;
    const fits = (p: number): boolean =>
      this.ok(v, p) && (this.contextLoad(v, p) + 1 <= cap || (quiet && this.roomy(v, p)));
    return contextPick(this.contexts, v.ring, key, this.indexById, v.posOf!, fits);
  }

  /**
   * After one more task the member keeps the share of its slots free that the default bound
   * would leave it (1 - 1/LOAD_BOUND, 20%; fixed): while the candidates are less than half
   * busy a key's holder keeps its key even when loads are low and stale (a burst counted
   * against an upper tier's summary before the child reported it done).
   */
  private roomy(v: KindView, pos: number): boolean {
    return this.avail(v, pos) - 1 >= v.total[pos]! * (1 - 1 / LOAD_BOUND);
  }

  /** What a member is running or holding now, as this picker knows it: its snapshot's plus routes since. */
  private contextLoad(v: KindView, pos: number): number {
    const idx = v.members[pos]!;
    const c = this.cands[idx]!;
    return c.active + c.queueDepth + this.sent[idx]!;
  }

  /**
   * Candidate `idx` has new figures (`c`, the same id): take them as a picker
   * built from it would (credits from its free slots, its routes through this
   * picker forgotten, since `c` counts them as active). False, and nothing
   * changed, when that would change the views it belongs to (draining, its
   * kinds, a kind's total reaching 0, shared slots or not): then rebuild.
   * For pickers kept up to date (Picker.update); the policy re-derives its own
   * figures of the candidate after this.
   */
  protected replaceCandidate(idx: number, c: Candidate): boolean {
    const old = this.cands[idx]!;
    if (c.id !== old.id || c.draining || old.draining) return false;
    if ((c.sharedSlots === undefined) !== (old.sharedSlots === undefined) || c.slots.size !== old.slots.size)
      return false;
    for (const [k, s] of c.slots) {
      const o = old.slots.get(k);
      if (o === undefined || o.total > 0 !== s.total > 0) return false;
    }
    const places: [KindView, number][] = [];
    for (const k of c.slots.keys()) {
      const v = this.views.get(k);
      if (v && v.posOf![idx]! >= 0) places.push([v, v.posOf![idx]!]);
    }
    for (const [v, p] of places) v.creditSum -= this.avail(v, p);
    this.cands[idx] = c;
    this.pool[idx] = c.sharedSlots ? wholeCredits(c.sharedSlots) : Infinity;
    this.poolTotal[idx] = c.sharedSlots ? c.sharedSlots.total : Infinity;
    this.sent[idx] = 0;
    this.aff.replaced(idx);
    for (const [v, p] of places) {
      const s = c.slots.get(v.kind)!;
      v.total[p] = s.total;
      v.credits[p] = wholeCredits(s);
    }
    for (const [v, p] of places) {
      v.creditSum += this.avail(v, p);
      this.availChanged(v, p);
    }
    return true;
  }

  /**
   * Hook for explain: the member positions worth scoring (a superset of the
   * best `limit` eligible ones) and how many are eligible, when the policy's
   * index knows them without a scan; undefined: scan every member.
   */
  protected explainSubset(_v: KindView, _task: TaskInfo, _limit: number): ExplainSubset | undefined {
    return undefined;
  }

  /** What the policy's scores are and which way is better (explain); policies with a score override it. */
  protected scoreRule(): ScoreRule {
    return NO_SCORE;
  }

  /** The policy's score of member pos for the task, as select() weighs it (explain only; NaN: none). */
  protected scoreOf(_v: KindView, _pos: number, _task: TaskInfo): number {
    return NaN;
  }

  explain(task: TaskInfo, chosen: string, limit: number): Explanation {
    return explained(chosen, (sink) => this.explainTo(task, chosen, limit, sink));
  }

  explainTo(task: TaskInfo, chosen: string, limit: number, sink: ExplainSink): ScoreRule {
    const v = this.view(task.kind);
    const rule = contextRule(this.scoreRule(), task);
    if (v === null) return (explainInto(sink, rule, this.drainingCands, task, limit, undefined), rule);
    this.aff.set(task.kind, task.affinity, task.noMatchBelow);
    this.excl = task.exclude && task.exclude.length > 0 ? task.exclude : undefined;
    // Scores as the pick saw them: the chosen one's credit back for the scan.
    const idx = this.indexById.get(chosen);
    const cpos = idx === undefined ? -1 : v.posOf![idx]!;
    if (cpos >= 0) this.adjust(v, cpos, this.need);
    if (cpos >= 0) this.aff.routed(idx!, -this.need);
    try {
      const subset = withMember(this.explainSubset(v, task, limit), cpos);
      const src = this.explained.of(v, v.members.length, task, cpos, subset);
      explainInto(sink, rule, this.drainingCands, task, limit, src);
      return rule;
    } finally {
      if (cpos >= 0) this.adjust(v, cpos, -this.need);
      if (cpos >= 0) this.aff.routed(idx!, this.need);
    }
  }

  /** A matching child with credits whose matching agents are all busy says so (ExplainTask). */
  private fullWhy(v: KindView, pos: number): string {
    return this.aff.count > 0 && v.credits[pos]! >= this.need && this.aff.credit(v.members[pos]!) < this.need
      ? 'affinity: matching agents full'
      : 'full';
  }

  private mismatch(v: KindView, pos: number): string {
    return this.excl !== undefined && this.excl.includes(this.cands[v.members[pos]!]!.id) ? 'excluded' : 'affinity';
  }

  /** Eligible now: has the task's credits (and, for several slots, that many at one agent), matches affinity, not excluded. */
  protected ok(v: KindView, pos: number): boolean {
    if (this.need > 1 && v.block[pos]! < this.need) return false;
    const idx = v.members[pos]!;
    if (v.credits[pos]! < this.need || this.pool[idx]! < this.need || !this.matches(v, pos)) return false;
    return this.aff.count === 0 || this.aff.credit(idx) >= this.need;
  }

  /** Routable credits of the member now: min(kind credit, shared credit). */
  protected avail(v: KindView, pos: number): number {
    return Math.min(v.credits[pos]!, this.pool[v.members[pos]!]!);
  }

  private matches(v: KindView, pos: number): boolean {
    const idx = v.members[pos]!;
    if (this.excl !== undefined && this.excl.includes(this.cands[idx]!.id)) return false;
    return this.aff.count === 0 || this.aff.matches(idx);
  }

  /** The candidate's index in this picker, if it has one. */
  protected indexOf(candidateId: string): number | undefined {
    return this.indexById.get(candidateId);
  }

  /** Routes (all kinds, net of releases) through this picker to the candidate at `index`. */
  routedTo(index: number): number {
    return this.sent[index]!;
  }

  protected candidateAt(v: KindView, pos: number): Candidate {
    return this.cands[v.members[pos]!]!;
  }

  /** Dispatches (all kinds) made through this picker to the member since the snapshot. */
  protected sinceSnapshot(v: KindView, pos: number): number {
    return this.sent[v.members[pos]!]!;
  }

  /** Moves `delta` credits of member pos of v (and its pool), keeping every creditSum exact. */
  private adjust(v: KindView, pos: number, delta: number): void {
    const idx = v.members[pos]!;
    this.sent[idx]! -= delta;
    if (this.pool[idx] === Infinity) {
      v.credits[pos]! += delta;
      v.creditSum += delta;
      this.availChanged(v, pos);
      return;
    }
    // The pool caps every kind of this candidate: re-derive each view's share.
    const mem = this.memberOf[idx]!;
    for (let i = 0; i < mem.length; i += 2) {
      const w = mem[i] as KindView;
      w.creditSum -= this.avail(w, mem[i + 1] as number);
    }
    v.credits[pos]! += delta;
    this.pool[idx]! += delta;
    for (let i = 0; i < mem.length; i += 2) {
      const w = mem[i] as KindView;
      w.creditSum += this.avail(w, mem[i + 1] as number);
      this.availChanged(w, mem[i + 1] as number);
    }
  }

  /** The eligible member with the lowest score(v, pos), ties broken uniformly at random (./picker-select.ts). */
  protected selectMin(v: KindView, score: (v: KindView, pos: number) => number): number {
    return selectMin(v, this.isOk, score, this.random);
  }
  private readonly isOk = (v: KindView, pos: number): boolean => this.ok(v, pos);

  /** Fills v.scratch with eligible positions; returns how many. */
  protected collectEligible(v: KindView): number {
    return collectEligible(v, this.isOk);
  }

  protected view(kind: string): KindView | null {
    let v = this.views.get(kind);
    if (v === undefined) {
      v = buildView(this.cands, kind);
      if (v !== null) {
        v.posOf = new Int32Array(this.cands.length).fill(-1);
        for (let p = 0; p < v.members.length; p++) {
          const idx = v.members[p]!;
          v.posOf[idx] = p;
          v.creditSum += this.avail(v, p);
          if (this.pool[idx] !== Infinity) this.memberOf[idx]!.push(v, p);
        }
        this.initView(v);
      }
      this.views.set(kind, v);
    }
    return v;
  }
}
