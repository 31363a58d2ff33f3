// Node tier: shortest expected delay over agents, from measured service time,
// success rate, resources and occupied slots. Each eligible agent gets
//   delay = T/p · (1 + cpu·u.cpu + memory·u.memory) · (1 + load·busy/slots)
// T: the agent's service time of the task's kind (KindSlots.latencyEwmaMs, for
//    an agent of several kinds: one EWMA over its kinds took a kind mix for
//    speed), else its latencyEwmaMs (until the node measures it, the run time
//    the agent reports: src/mesh/agent-speed.ts; an agent with neither is
//    assumed a little faster than the fastest known one, so it gets tried, one
//    task at a time: see delay()); p: successEwma floored at minSuccess (a failed
//    attempt is run again, so 1/p attempts per success); busy: its occupied
//    slots of the kind, counting this picker's own routes (slots − credits).
// The lowest delay wins (random tie-break). With load = 1 an agent more than
// twice as fast with a free slot always beats an idle slow one (the two-speed
// case of issue 11), while agents of about equal speed share work by their
// free slots. Only busy changes between picks; the rest changes with an
// agent's figures (update()).
//
// A node has thousands of agents, so a pick does not scan them, and the
// picker is kept up to date instead of being rebuilt: update() takes one
// agent's new figures (a heartbeat's load, a result's latency and success) in
// O(log n). Members of a kind are grouped by (total slots, available
// credits, trial flag, measured or not) in ./score-groups.ts: within a group
// the load factor is the same, so the best member is the one with the lowest
// static part, and a pick compares only the groups' heads: O(groups), e.g.
// about 16 for agents of 16 slots. The unmeasured agents' prior (0.9 × the
// fastest measured) and the trial cost (the slowest measured) are the
// extremes of the measured latencies, kept as they change (Extremes), so the
// scores are those a picker built from the same figures would give. Ties,
// within a group or across groups with equal scores, are broken uniformly at
// random over all tied members, as the scan does. Tasks with affinity or
// exclusions (rare at the node) fall back to the scan. Explaining a pick
// scores only the best few members of each group, not every agent.
//
// Where the dispatcher keeps held tasks (a node's: TaskInfo.queuedAhead), the
// best member may still be passed over for a faster full one that will free a
// slot sooner (./hold-back.ts): the full measured members are indexed by
// static part too, so this adds up the release rate of at most HOLD_SCAN of
// them, and only when the fastest full one beats the pick by more than the
// task has waited.

import type { ExplainSubset } from './explain.js';
import { BasePicker, type KindView } from './picker.js';
import { HELD, HOLD_GAIN, HOLD_SCAN, holdForAnswer, holdForFaster, mayHold, type Faster } from './hold-back.js';
import { bestOverall, Extremes, ScoreGroups, type Bucket } from './score-groups.js';
import { UNMEASURED_SPEEDUP, parseNodeScoreConfig, type NodeScoreConfig } from './node-score-config.js';
import { registerPolicy } from './registry.js';
import type { Candidate, Picker, Policy, PolicyDeps, PolicyFactory, ScoreRule, TaskInfo } from './types.js';

export { NODE_SCORE_DEFAULTS, UNMEASURED_SPEEDUP, type NodeScoreConfig } from './node-score-config.js';

const clamp01 = (x: number): number => (x < 0 ? 0 : x > 1 ? 1 : x);

/** NodeScorePicker.fig: a candidate's figures at FIG·idx + LAT, SUCC, RES, TRIAL. */
const FIG = 4;
const LAT = 0;
const SUCC = 1;
const RES = 2;
const TRIAL = 3;

/** One group's tied best members: the head bucket of g. */
interface Tie {
  b: Bucket;
  count: number;
}

class NodeScorePicker extends BasePicker {
  private readonly cfg: NodeScoreConfig;
  /**
   * A candidate index's figures, side by side at FIG·idx (one read of an agent's figures is one cache
   * line, not one per figure: at 20,000 agents most agents a task touches were last touched seconds ago):
   * +LAT measured service time (0: none yet); +SUCC the success rate in the 1/p factor, floored; +RES the
   * resource stretch (1 + cpu·u.cpu + memory·u.memory); +TRIAL 1 with no latency data and no slot freed
   * through this picker yet (on trial, see delay()).
   */
  private readonly fig: Float64Array;
  /** The measured latencies' extremes: the prior of the unmeasured, the trial cost. */
  private readonly latencies: Extremes;
  private readonly score: (v: KindView, pos: number) => number;
  /** Views built so far (a member leaving trial, or rescored, moves group in each). */
  private readonly built: KindView[] = [];
  private readonly ties: Tie[] = [];
  private nTies = 0;
  /** While update() replaces a candidate, or release() takes one off trial: availChanged leaves the index alone (they re-insert). */
  private quiet = false;

  constructor(cands: readonly Candidate[], random: () => number, cfg: NodeScoreConfig) {
    super(cands, random);
    this.cfg = cfg;
    const n = cands.length;
    this.fig = new Float64Array(FIG * n);
    this.latencies = new Extremes(n);
    for (let i = 0; i < n; i++) this.figures(i, cands[i]!);
    this.score = (v, pos) => {
      return this.delay(
        this.staticOf(v, pos, this.prior()),
        v.total[pos]!,
        this.avail(v, pos),
        this.onTrial(v.members[pos]!),
      );
    };
  }

  /** Take candidate i's figures, as a picker built from it would. */
  private figures(i: number, c: Candidate): void {
    const cfg = this.cfg;
    const measured = c.latencyEwmaMs > 0;
    const f = this.fig;
    const at = FIG * i;
    f[at + LAT] = measured ? c.latencyEwmaMs : 0;
    f[at + SUCC] = Math.max(cfg.minSuccess, clamp01(c.successEwma));
    f[at + RES] = 1 + cfg.cpu * clamp01(c.utilization.cpu) + cfg.memory * clamp01(c.utilization.memory);
    f[at + TRIAL] = measured ? 0 : 1;
    this.latencies.set(i, measured ? c.latencyEwmaMs : NaN);
  }

  /** Service time assumed for an agent without data: a little faster than the fastest measured one. */
  private prior(): number {
    const f = this.latencies.min();
    return f < Infinity ? f * UNMEASURED_SPEEDUP : this.cfg.latencyRefMs;
  }

  /**
   * Member pos's expected service time of v's kind before the load factor (lower is better): its time of the
   * kind if measured (ScoreGroups.kindMs), else its own, else the prior.
   */
  private staticOf(v: KindView, pos: number, prior: number): number {
    const f = this.fig;
    const at = FIG * v.members[pos]!;
    const own = (v.ext as ScoreGroups).kindMs?.[pos] ?? 0;
    const t = f[at + LAT]! > 0 ? (own > 0 ? own : f[at + LAT]!) : prior;
    return (t / f[at + SUCC]!) * f[at + RES]!;
  }

  /** What an index key orders by: the static part, or for the unmeasured the same with a unit prior. */
  private keyOf(v: KindView, pos: number): number {
    const at = FIG * v.members[pos]!;
    return this.measured(v.members[pos]!) ? this.staticOf(v, pos, 0) : this.fig[at + RES]! / this.fig[at + SUCC]!;
  }

  /**
   * Member pos's measured time of v's kind from candidate c (KindSlots.latencyEwmaMs; 0: none), kept only
   * where some member of the view has one: an agent of one kind has no figure but its own.
   */
  private kindFigure(v: KindView, pos: number, c: Candidate): void {
    const ms = c.slots.get(v.kind)?.latencyEwmaMs ?? 0;
    const ix = v.ext as ScoreGroups;
    if (ms > 0) (ix.kindMs ??= new Float64Array(v.members.length))[pos] = ms;
    else if (ix.kindMs !== undefined) ix.kindMs[pos] = 0;
  }

  /** Candidate idx has latency data (measured, or reported: agent-speed.ts). */
  private measured(idx: number): boolean {
    return this.fig[FIG * idx + LAT]! > 0;
  }

  /** Candidate idx is on trial (see delay()). */
  private onTrial(idx: number): boolean {
    return this.fig[FIG * idx + TRIAL] === 1;
  }

  /**
   * Expected delay of a member with static part `st`, `total` slots of the
   * kind and `avail` credits. An agent without latency data is tried one
   * task at a time: until it frees a slot (a release through this picker, or
   * a measurement), each task it runs adds the slowest measured service time,
   * so it takes a second task only when the others are about as loaded. A
   * cold node thus learns which agents answer before it has a single EWMA.
   * Within a group (equal total, avail and flags) the order is by `st` alone.
   */
  private delay(st: number, total: number, avail: number, trial: boolean): number {
    const busy = total - avail;
    if (!trial) return st * (1 + this.cfg.load * (busy / total));
    const slowest = this.latencies.max();
    return st * (1 + this.cfg.load * (busy / total)) + busy * (slowest > 0 ? slowest : this.cfg.latencyRefMs);
  }

  protected override scoreRule(): ScoreRule {
    return { score: 'expected delay, ms', rule: 'shortest expected delay; ties at random', better: 'lower' };
  }

  protected override scoreOf(v: KindView, pos: number): number {
    return this.score(v, pos);
  }

  /** The built views holding candidate idx, with its position in each. */
  private placesOf(idx: number): [KindView, number][] {
    const out: [KindView, number][] = [];
    for (const v of this.built) {
      const pos = v.posOf![idx]!;
      if (pos >= 0) out.push([v, pos]);
    }
    return out;
  }

  override release(candidateId: string, kind: string, slots = 1): void {
    const idx = this.indexOf(candidateId);
    if (idx === undefined || !this.onTrial(idx)) return super.release(candidateId, kind, slots);
    // It answered: off trial. One move in every view, to the group of its new flag and credits (not one
    // for the flag, then one for the credits: at 20,000 agents most results are an agent's first). A
    // view of `kind` not built yet is built by the release, with the credits before it: then two moves.
    const places = this.placesOf(idx);
    if (!this.built.some((v) => v.kind === kind)) {
      for (const [v, pos] of places) (v.ext as ScoreGroups).remove(pos);
      this.fig[FIG * idx + TRIAL] = 0;
      for (const [v, pos] of places) this.insert(v, pos);
      return super.release(candidateId, kind, slots);
    }
    for (const [v, pos] of places) (v.ext as ScoreGroups).remove(pos);
    this.fig[FIG * idx + TRIAL] = 0;
    this.quiet = true;
    try {
      super.release(candidateId, kind, slots);
    } finally {
      this.quiet = false;
      for (const [v, pos] of places) this.insert(v, pos);
    }
  }

  /** An agent's new figures (load, latency, success, free slots): taken in place, O(log n) per kind it serves. */
  update(c: Candidate): boolean {
    const idx = this.indexOf(c.id);
    if (idx === undefined) return false;
    // The views holding it (replaceCandidate moves no member between views): walked twice, not
    // gathered into a list, as this runs for every load and result.
    for (const v of this.built) {
      const pos = v.posOf![idx]!;
      if (pos < 0) continue;
      (v.ext as ScoreGroups).remove(pos);
      (v.ext as ScoreGroups).slots -= v.total[pos]!;
    }
    this.quiet = true;
    let ok = false;
    try {
      ok = this.replaceCandidate(idx, c);
      if (ok) this.figures(idx, c);
      return ok;
    } finally {
      this.quiet = false;
      for (const v of this.built) {
        const pos = v.posOf![idx]!;
        if (pos < 0) continue;
        (v.ext as ScoreGroups).slots += v.total[pos]!;
        if (ok) this.kindFigure(v, pos, c);
        this.insert(v, pos);
      }
    }
  }

  protected override initView(v: KindView): void {
    const ix = (v.ext = new ScoreGroups(v.members.length));
    this.built.push(v);
    for (let p = 0; p < v.members.length; p++) this.kindFigure(v, p, this.cands[v.members[p]!]!);
    for (let p = 0; p < v.members.length; p++) {
      ix.slots += v.total[p]!;
      this.insert(v, p);
    }
  }

  protected override availChanged(v: KindView, pos: number): void {
    if (this.quiet) return;
    const ix = v.ext as ScoreGroups;
    const g = ix.where(pos);
    const a = this.avail(v, pos);
    if (g !== undefined ? g.avail === a : a < 1) return;
    ix.remove(pos);
    this.insert(v, pos);
  }

  private insert(v: KindView, pos: number): void {
    const a = this.avail(v, pos);
    const idx = v.members[pos]!;
    const ix = v.ext as ScoreGroups;
    // Full: only a measured member's speed is known to a hold-back.
    if (a < 1) {
      if (this.measured(idx)) ix.insertFull(pos, this.keyOf(v, pos), v.total[pos]!);
      return;
    }
    ix.insert(pos, v.total[pos]!, a, this.onTrial(idx), this.measured(idx), this.keyOf(v, pos));
  }

  protected select(v: KindView, task: TaskInfo): number {
    // Affinity and exclusions are per task: scan (rare at the node).
    if (
      (task.affinity !== undefined && task.affinity.length > 0) ||
      (task.exclude !== undefined && task.exclude.length > 0)
    ) {
      return this.selectMin(v, this.score);
    }
    const ix = v.ext as ScoreGroups;
    const prior = this.prior();
    let best = Infinity;
    let count = 0;
    this.nTies = 0;
    for (const g of ix.nonEmpty) {
      const b = g.head();
      const st = g.measured ? b.key : this.staticOf(v, b.members[0]!, prior);
      const s = this.delay(st, g.total, g.avail, g.trial);
      if (s > best) continue;
      if (s < best) {
        best = s;
        this.nTies = 0;
        count = 0;
      }
      const tie = (this.ties[this.nTies++] ??= { b, count: 0 });
      tie.b = b;
      tie.count = b.members.length;
      count += tie.count;
    }
    if (count === 0) return -1;
    let k = count === 1 ? 0 : Math.floor(this.random() * count);
    let pos = -1;
    for (let i = 0; i < this.nTies && pos < 0; i++) {
      const tie = this.ties[i]!;
      if (k < tie.count) pos = tie.b.members[k]!;
      else k -= tie.count;
    }
    return pos >= 0 && mayHold(task, this.cfg.maxHoldMs) && this.holds(v, pos, best, task) ? HELD : pos;
  }

  /**
   * Whether pick(task) would hold this task back now, taking nothing (Picker.wouldHold): only a task that
   * select() may hold (kept by the dispatcher, one slot, no affinity, exclusions or context key).
   */
  wouldHold(task: TaskInfo): boolean {
    if (task.queuedAhead === undefined || task.contextKey || (task.slots ?? 1) > 1) return false;
    if ((task.affinity?.length ?? 0) > 0 || (task.exclude?.length ?? 0) > 0) return false;
    const v = this.view(task.kind);
    return v !== null && v.creditSum > 0 && this.select(v, task) === HELD;
  }

  private readonly faster: Faster = { rate: 0, soonestMs: Infinity };
  private readonly scanned: number[] = [];

  /** Whether the task should wait rather than go to member `pos` now, at `delay` ms (./hold-back.ts). */
  private holds(v: KindView, pos: number, delay: number, task: TaskInfo): boolean {
    const ix = v.ext as ScoreGroups;
    const idx = v.members[pos]!;
    const running = v.total[pos]! - this.avail(v, pos);
    if (this.onTrial(idx)) {
      const fastest = this.latencies.min();
      const answerMs = fastest < Infinity ? fastest : this.cfg.latencyRefMs;
      if (holdForAnswer(task, running, ix.slots - v.creditSum - running > 0, answerMs)) return true;
    }
    // The full measured members faster than pos whose own delay could pay for the wait, fastest
    // first; none: nothing to wait for. A member of static part s runs in at least
    // s·(1 + load·(t − 1)/t), t the fewest slots of a full member: the head alone may rule it out.
    const full = ix.full;
    if (full.size === 0) return false;
    const st = this.staticOf(v, pos, this.prior());
    const limit = HOLD_GAIN * delay;
    const head = full.head().key;
    if (head >= st || this.delay(head, ix.fullMinTotal(), 1, false) >= limit) return false;
    const f = this.faster;
    f.rate = 0;
    f.soonestMs = Infinity;
    const out = this.scanned;
    out.length = 0;
    full.best(HOLD_SCAN, out, Math.min(st, limit));
    for (const q of out) {
      const s = this.keyOf(v, q);
      const total = v.total[q]!;
      const d = this.delay(s, total, 1, false);
      if (d >= limit) continue;
      f.rate += (total - this.avail(v, q)) / s;
      if (d < f.soonestMs) f.soonestMs = d;
    }
    return holdForFaster(task, delay, f);
  }

  /**
   * What explain scores: the best `limit` members over all groups (and those tied with the last), found
   * by walking the groups' heaps at once by delay, not every agent (nor `limit` of every group: at 20,000
   * agents each scored member is a cold one); all of them when fewer than `limit` have a credit (the
   * rest are listed as full) or the task has affinity or exclusions.
   */
  protected override explainSubset(v: KindView, task: TaskInfo, limit: number): ExplainSubset | undefined {
    if ((task.affinity?.length ?? 0) > 0 || (task.exclude?.length ?? 0) > 0) return undefined;
    const ix = v.ext as ScoreGroups;
    const eligible = ix.count();
    if (eligible < limit) return undefined;
    const positions: number[] = [];
    const prior = this.prior();
    bestOverall(ix.nonEmpty, limit, positions, (g, b) =>
      this.delay(g.measured ? b.key : this.staticOf(v, b.members[0]!, prior), g.total, g.avail, g.trial),
    );
    return { positions: positions.sort((a, b) => a - b), eligible };
  }
}

export const nodeScorePolicy: PolicyFactory<NodeScoreConfig> = {
  name: 'node-score',
  description: 'shortest expected delay from measured service time, success rate, resources and free slots (node tier)',
  parseConfig: parseNodeScoreConfig,
  create(config, deps: PolicyDeps): Policy {
    return {
      name: 'node-score',
      buildPicker: (cands: readonly Candidate[]): Picker => new NodeScorePicker(cands, deps.random, config),
    };
  },
};

registerPolicy('node-score', nodeScorePolicy);
