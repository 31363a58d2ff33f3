// Zone tier: least connections plus queue depth (seed 002's zone balancer),
// made to tolerate stale summaries (issue 11). A child's load is
//   (active + queueWeight·queueDepth + unseen + routes since the snapshot) / total slots
// where unseen counts what this policy sent the child that its summary cannot
// show yet (unseen.ts), so a big node is not starved and a burst is not
// forgotten at every picker rebuild. A summary summaryAgeMs old may also miss
// completions, up to min(active + unseen, age · completion rate), the rate
// from qps or else from the latency EWMA; so each eligible child whose load
// minus that slack is still at most the least load is a plausible best, and
// the pick takes the less loaded of `choices` of them drawn at random (power
// of d choices). With fresh summaries the slack is 0 and this is the plain
// least load with a random tie-break.
//
// When every child of the kind reports its agents by speed (issue 11: nodes
// do, in KindCapacity speed_*), it places by when a task would complete
// there instead (./completion.ts: the child's free slots fastest first, then
// its release rate, at the summary's age and after what it was sent since):
// the earlier of `choices` drawn, the less loaded of two within `tolerance`.
// Load per slot sent more work to nodes with free slots, whose node then had
// to use its slow agents.

import { CompletionCurve } from './completion.js';
import { configObject, numberKey } from './config.js';
import { BasePicker, type KindView } from './picker.js';
import { registerPolicy } from './registry.js';
import type { Candidate, Picker, Policy, PolicyDeps, PolicyFactory, ScoreRule } from './types.js';
import { UnseenSends } from './unseen.js';

export interface ZoneLeastConnConfig {
  /** How much one queued task counts against one running task. */
  readonly queueWeight: number;
  /** How many plausible best children a pick draws and compares (power of d). */
  readonly choices: number;
  /**
   * Expected completions within this fraction of each other count as equal, and the lower load
   * decides (nodes report speeds from latency EWMAs, whose noise alone must not steer work).
   */
  readonly tolerance: number;
}

class ZoneLeastConnPicker extends BasePicker {
  /** Whether the last pick placed by expected completion (explain, called after it, says so). */
  private byCompletion = false;
  /** Completions a child's summary may have missed, by candidate index (before dividing by slots). */
  private readonly slack: Float64Array;
  /** Some child's breaker limits it (this picker never updates candidates in place, so it holds). */
  private readonly anyLimited: boolean;

  constructor(
    cands: readonly Candidate[],
    random: () => number,
    private readonly cfg: ZoneLeastConnConfig,
    private readonly unseen: Float64Array,
  ) {
    super(cands, random);
    this.anyLimited = cands.some((c) => c.limited === true);
    this.slack = Float64Array.from(cands, (c, i) => {
      const age = Math.max(0, c.summaryAgeMs);
      if (age === 0) return 0;
      const busy = Math.max(0, c.active + unseen[i]!);
      let slots = 0;
      for (const s of c.slots.values()) slots += s.total;
      const qps = c.qps ?? 0;
      const perMs = qps > 0 ? qps / 1000 : c.latencyEwmaMs > 0 ? Math.min(busy, slots) / c.latencyEwmaMs : 0;
      return Math.min(busy, age * perMs);
    });
  }

  /** Per kind: every member's completion curve at its summary's age, or null when one does not report speeds (place by load). */
  protected override initView(v: KindView): void {
    const out: CompletionCurve[] = [];
    for (let p = 0; p < v.members.length; p++) {
      const c = this.candidateAt(v, p);
      const g = c.slots.get(v.kind)?.speed;
      if (g === undefined || g.serviceMs.length === 0) {
        v.ext = null;
        return;
      }
      out.push(new CompletionCurve(g, c.summaryAgeMs));
    }
    v.ext = out;
  }

  /** The member's expected completion time for one more task, after what it was sent since it reported. */
  private completion(v: KindView, pos: number): number {
    const idx = v.members[pos]!;
    return (v.ext as CompletionCurve[])[pos]!.at(this.unseen[idx]! + this.sinceSnapshot(v, pos));
  }

  private load(v: KindView, pos: number): number {
    const c = this.candidateAt(v, pos);
    const idx = v.members[pos]!;
    return (
      (c.active + this.cfg.queueWeight * c.queueDepth + this.unseen[idx]! + this.sinceSnapshot(v, pos)) / v.total[pos]!
    );
  }

  protected override scoreRule(): ScoreRule {
    if (this.byCompletion) {
      return {
        score: 'expected completion, ms',
        rule: 'earliest expected completion; ties at random',
        better: 'lower',
      };
    }
    const d = this.cfg.choices;
    return {
      score: 'load per slot',
      rule: `the less loaded of ${d} drawn among the plausible least loaded (their summaries' age allowed for)`,
      better: 'lower',
    };
  }

  protected override scoreOf(v: KindView, pos: number): number {
    return v.ext !== null ? this.completion(v, pos) : this.load(v, pos);
  }

  /**
   * By expected completion: the earlier of `choices` eligible members drawn at random (power of
   * d), and of two within `tolerance` of each other the less loaded. Always the earliest herded
   * each summary's work onto the child that looked fastest and ran it out of credits, which then
   * went to slow agents elsewhere (bench:sched heterogeneous: p99 196 ms, two choices 188 ms);
   * without the tolerance, nodes of equal agents split a burst by the noise of their latency
   * EWMAs (herding: max/mean load 1.22-1.50 after 1 s, 1.06 with the true service times).
   */
  private earliest(v: KindView): number {
    const n = this.collectEligible(v);
    if (n === 0) return -1;
    // A child its breaker limits gets its allowance (probes, slow start) whatever its speeds say:
    // the speeds of a child that failed look slow until it runs tasks again.
    if (this.anyLimited)
      for (let k = 0; k < n; k++) if (this.candidateAt(v, v.scratch[k]!).limited) return v.scratch[k]!;
    const d = Math.min(n, this.cfg.choices);
    const tol = this.cfg.tolerance;
    let best = -1;
    let bestE = Infinity;
    for (let k = 0; k < d; k++) {
      const j = k + Math.floor(this.random() * (n - k));
      const p = v.scratch[j]!;
      v.scratch[j] = v.scratch[k]!;
      v.scratch[k] = p;
      const e = this.completion(v, p);
      const near = best >= 0 && Math.abs(e - bestE) <= tol * Math.min(e, bestE);
      if (near ? this.load(v, p) < this.load(v, best) : e < bestE) {
        best = p;
        bestE = e;
      }
    }
    return best;
  }

  protected select(v: KindView): number {
    this.byCompletion = v.ext !== null;
    if (v.ext !== null) return this.earliest(v);
    let least = Infinity;
    for (let p = 0; p < v.members.length; p++) if (this.ok(v, p)) least = Math.min(least, this.load(v, p));
    if (least === Infinity) return -1;
    let n = 0;
    for (let p = 0; p < v.members.length; p++) {
      if (this.ok(v, p) && this.load(v, p) - this.slack[v.members[p]!]! / v.total[p]! <= least) v.scratch[n++] = p;
    }
    if (n === 1) return v.scratch[0]!;
    // Power of d over the plausible best: a partial shuffle draws `choices` distinct ones.
    let best = -1;
    let bestLoad = Infinity;
    const d = Math.min(this.cfg.choices, n);
    for (let k = 0; k < d; k++) {
      const j = k + Math.floor(this.random() * (n - k));
      const p = v.scratch[j]!;
      v.scratch[j] = v.scratch[k]!;
      v.scratch[k] = p;
      const l = this.load(v, p);
      if (l < bestLoad) {
        best = p;
        bestLoad = l;
      }
    }
    return best;
  }
}

export const zoneLeastConnPolicy: PolicyFactory<ZoneLeastConnConfig> = {
  name: 'zone-least-conn',
  description: 'least (active + queued + unseen) tasks per slot, power of d over the plausible best (zone tier)',
  parseConfig(raw) {
    const o = configObject('zone-least-conn', raw, ['queueWeight', 'choices', 'tolerance']);
    return {
      queueWeight: numberKey('zone-least-conn', o, 'queueWeight', 1, { min: 0 }),
      choices: numberKey('zone-least-conn', o, 'choices', 2, { min: 1, integer: true }),
      tolerance: numberKey('zone-least-conn', o, 'tolerance', 0.2, { min: 0 }),
    };
  },
  create(config, deps: PolicyDeps): Policy {
    const unseen = new UnseenSends();
    return {
      name: 'zone-least-conn',
      buildPicker: (cands: readonly Candidate[], now: number): Picker => {
        const p = new ZoneLeastConnPicker(cands, deps.random, config, unseen.begin(cands, now));
        unseen.attach(cands, p, now);
        return p;
      },
    };
  },
};

registerPolicy('zone-least-conn', zoneLeastConnPolicy);
