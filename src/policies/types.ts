// The one interface between a cell and its routing policy.
//
// A policy is pure: it sees candidates (what this cell knows about each child:
// a child cell's summary, or an agent at a node cell), a task, and its own small
// state. It never does IO, never reads a clock (`now` is passed in) and never
// calls Math.random (randomness comes from the injected `random`), so a seed
// replays a run exactly.
//
// Lifecycle (grpc-js picker style):
//   policy = createPolicy(name, rawConfig, { random })    // once per cell config
//   picker = policy.buildPicker(candidates, now)           // on every summary change
//   result = picker.pick(task)                             // hot path, synchronous
//
// Credits: a picker owns a small per-(kind, candidate) credit overlay copied
// from `free` at build time. A `route` result has already consumed one credit,
// so consecutive picks against one snapshot never oversubscribe a child. If the
// caller then fails to dispatch (link send failed), it gives the credit back
// with picker.release(). When a fresh summary arrives the cell builds a new
// picker; it should pass `free` minus the dispatches the child has not yet
// acknowledged in that summary, since the child could not have counted them.
// Building is O(candidates); picking is O(candidates of the kind) with no
// sorting and, on the route path, no allocation (route results are cached).

import type { Priority } from '../queue/priority.js';
// One Label and one Tier in the codebase: the topology's.
import type { Label, Tier } from '../topology/types.js';

export type { Label, Priority, Tier };

/** Resource utilization, each 0..1. */
export interface Utilization {
  readonly cpu: number;
  readonly memory: number;
  readonly gpu: number;
  readonly network: number;
}

/** Slots of one kind: free is the dispatch credit, total the capacity. */
export interface KindSlots {
  readonly free: number;
  readonly total: number;
  /**
   * A cell's most free slots at one agent below it, and the most slots of one
   * agent (multi-slot tasks, docs/gang.md): a task of N slots needs
   * largestFree >= N, and waits rather than spills while largestTotal >= N.
   * Omitted for an agent (its free and total are one agent's).
   */
  readonly largestFree?: number;
  readonly largestTotal?: number;
  /**
   * A cell's most free slots at one node cell below it (no prefetch): a gang homed above a node
   * goes to a child only where its members of the kind fit in this (docs/gang.md). Omitted: none.
   */
  readonly nodeFree?: number;
  /**
   * A node's agents of the kind by speed, from its summary (./completion.ts): zone-least-conn
   * places by when a task sent there would complete. Omitted: not reported (place by load).
   */
  readonly speed?: SpeedGroups;
  /**
   * An agent's measured service time of this kind, ms, where it serves several (its latencyEwmaMs
   * mixes them): node-score places the kind by it. Omitted or 0: not measured, the agent's figure.
   */
  readonly latencyEwmaMs?: number;
}

/** A node's agents of a kind in a few groups of similar speed, fastest first, as its summary reports them. */
export interface SpeedGroups {
  /** Expected service time per group, ms (node-score's T/p with its resource stretch). */
  readonly serviceMs: readonly number[];
  readonly slots: readonly number[];
  readonly free: readonly number[];
  /** Tasks of the kind the node held queued. */
  readonly queued: number;
}

/** Agents of a kind in a subtree that carry `labels`: their free and total slots. */
export interface LabelGroupInfo {
  readonly labels: readonly Label[];
  readonly free: number;
  readonly total: number;
}

/**
 * The label sets a subtree's agents of one kind offer (a child's summary): at most a few groups;
 * `unknownKeys` are label keys left out of every group to stay within the bounds, so an affinity
 * on one of them may match any group.
 */
export interface KindLabels {
  readonly groups: readonly LabelGroupInfo[];
  readonly unknownKeys: readonly string[];
}

export interface Candidate {
  /** Child cell path (`/eu`) or agent id at a node cell. */
  readonly id: string;
  /** Per task kind; a candidate without an entry cannot take that kind. */
  readonly slots: ReadonlyMap<string, KindSlots>;
  /**
   * Slots shared by all kinds, if kinds compete for them: an agent's slots
   * (every kind it declares draws on the same `slots`), or a cell's distinct
   * free slots when its per-kind numbers overlap. A route then needs a credit
   * in both the kind and this pool. Omitted: kinds are independent.
   */
  readonly sharedSlots?: KindSlots;
  readonly healthyAgents: number;
  /** Tasks buffered in the child (all priorities). */
  readonly queueDepth: number;
  /** Tasks running or assigned in the child (connections, in LB terms). */
  readonly active: number;
  readonly utilization: Utilization;
  /** EWMA of task latency in ms; 0 = no data yet. */
  readonly latencyEwmaMs: number;
  /** EWMA of success, 0..1. */
  readonly successEwma: number;
  /**
   * Labels, e.g. region/zone/location/gpu. A key may repeat with different
   * values: a cell aggregating a subtree advertises every value present in it.
   */
  readonly labels: readonly Label[];
  /**
   * A child cell's: per kind, the label sets its agents offer, from its summary (./affinity.ts):
   * a task with affinity goes only where a matching agent may be. A kind without an entry is not
   * described (a peer that predates it, a subtree past the bounds): any affinity may match there.
   * Omitted (an agent at a node): the candidate's own `labels` are matched.
   */
  readonly kindLabels?: ReadonlyMap<string, KindLabels>;
  readonly costPerTask?: number;
  readonly rttMs?: number;
  /** Completed tasks per second (the ORCA "qps" of weighted round robin). */
  readonly qps?: number;
  /** Age of the summary these numbers come from, ms. */
  readonly summaryAgeMs: number;
  /** Draining candidates take no new tasks. */
  readonly draining: boolean;
  /**
   * Its circuit breaker limits it (half-open probes, slow start): its credits are the breaker's
   * allowance, and a policy that prefers faster children must still let that allowance through.
   */
  readonly limited?: boolean;
}

export interface TaskInfo {
  readonly kind: string;
  readonly priority: Priority;
  /** Required labels: every one must be present on the candidate. */
  readonly affinity?: readonly Label[];
  readonly tenant?: string;
  /** Preferred location (a region/zone/location label value). */
  readonly location?: string;
  readonly attempt?: number;
  /** Candidates that must not get this task (e.g. the one that just failed it). */
  readonly exclude?: readonly string[];
  /**
   * Children that said no agent below them matches this task's affinity (a "no match below" refusal),
   * their label description unchanged since: treated as matching nothing (./affinity.ts).
   */
  readonly noMatchBelow?: readonly string[];
  /**
   * Tasks with the same context key go where the key's caches are warm (./context.ts:
   * consistent hashing with bounded loads), whatever the policy; empty = none.
   */
  readonly contextKey?: string;
  /** Hard: only the key's holder may take it (it waits for one); soft: overflow is allowed. */
  readonly contextHard?: boolean;
  /**
   * Slots it takes at one agent (TaskSpec.slots; omitted or 1: one). Above 1 it
   * goes, best fit, only where that many are free at one agent (multi-slot.ts).
   */
  readonly slots?: number;
  /**
   * Set by a dispatcher that keeps a task queued when a picker holds it back (a node's, for its home tasks):
   * tasks of its kind set aside ahead of it in this pump, and how long it has waited here
   * (ms). A policy may then answer `queue` although a candidate has a credit (node-score:
   * waiting for a faster agent's slot beats a slow agent now, ./hold-back.ts). Absent: the
   * picker routes whenever it can.
   */
  readonly queuedAhead?: number;
  readonly waitedMs?: number;
}

export type RejectCode = 'INVALID_ARGUMENT' | 'FAILED_PRECONDITION' | 'RESOURCE_EXHAUSTED';

/**
 * route:   dispatch to `candidate` (one credit already consumed).
 * queue:   candidates can serve this task but all are full now; keep it queued.
 * spillUp: no usable candidate here has the kind (or matches affinity / is not
 *          excluded); hand the task to the parent.
 * reject:  the task itself is unacceptable.
 */
export type PickResult =
  | { readonly type: 'route'; readonly candidate: string }
  | { readonly type: 'queue'; readonly reason: string }
  | { readonly type: 'spillUp'; readonly reason: string }
  | { readonly type: 'reject'; readonly code: RejectCode; readonly reason: string };

export interface Picker {
  /** Synchronous; a `route` consumes one credit of the chosen candidate. */
  pick(task: TaskInfo): PickResult;
  /** Take a credit of the candidate as a route would, for a placement made outside pick() (preemption). */
  take(candidateId: string, kind: string): void;
  /** Give back `slots` credits (default 1) taken by a route that was not dispatched, or freed by a result. */
  release(candidateId: string, kind: string, slots?: number): void;
  /** Routable credits of `kind` now: Σ min(kind credit, shared credit) over non-draining candidates. */
  credits(kind: string): number;
  /** True if some non-draining candidate has the kind at all (else: spill up). */
  hasKind(kind: string): boolean;
  /**
   * Why `chosen` won the pick just made for `task` (call it before the next
   * pick): the candidates of the kind as the policy scored them, with the
   * chosen one's credit counted as before the pick. O(candidates of the
   * kind); at most `limit` candidates are listed (the chosen one and the
   * best others), the rest only counted.
   */
  explain(task: TaskInfo, chosen: string, limit: number): Explanation;
  /** explain's figures given to `sink` as found (no object per candidate); returns the rule they were made under. */
  explainTo(task: TaskInfo, chosen: string, limit: number, sink: ExplainSink): ScoreRule;
  /**
   * Optional: take one known candidate's new figures in place, as a picker
   * built with them would see it (true); false when it cannot (a candidate it
   * does not hold, or one whose kinds or draining changed): rebuild. A cell
   * keeps a picker that has it instead of rebuilding it on a timer.
   */
  update?(c: Candidate): boolean;
  /**
   * Optional: whether pick(task) would hold the task back now (QUEUE_HELD, ./hold-back.ts), taking nothing.
   * A dispatcher asks it for the last task of a line whose head was held: the hold is monotone in the place in
   * line, so the whole line would be held (node-score).
   */
  wouldHold?(task: TaskInfo): boolean;
  /** What the candidates reported holding warm (a node's agents): keyed tasks go there first (./context.ts). */
  contexts?: ContextLookup | undefined;
}

/**
 * What agents reported holding warm (a node's AgentContexts): for a key, the
 * candidate ids that hold it, most recent report first. A picker asks it
 * before the ring: a reported holder is warm whatever the ring says (its
 * caches were staged there, or the key overflowed to it and stayed).
 */
export interface ContextLookup {
  holders(key: string): readonly string[] | undefined;
}

/** Where Picker.explainTo puts an explanation's figures: the listed candidates in order, then the counts. */
export interface ExplainSink {
  row(id: string, score: number, eligible: boolean, whyNot: string, credits: number): void;
  counts(total: number, eligible: number): void;
}

/** One candidate as a policy saw it for one pick (Picker.explain). */
export interface ScoredCandidate {
  readonly id: string;
  /** The policy's figure for it (Explanation.score says what); NaN where the policy has none. */
  readonly score: number;
  readonly eligible: boolean;
  /** Why not eligible: 'full', 'draining', 'no slots of the kind', 'affinity', 'excluded' ('' if eligible). */
  readonly whyNot: string;
  /** Credits for the kind before the pick. */
  readonly credits: number;
}

export interface Explanation {
  /** What the score is, e.g. "expected delay, ms". */
  readonly score: string;
  /** How the policy chooses among the eligible, e.g. "lowest score; ties at random". */
  readonly rule: string;
  /** Why the chosen one won, in a sentence naming its score and the runner-up's. */
  readonly why: string;
  /** The chosen one first, then the best others (at most `limit`). */
  readonly candidates: readonly ScoredCandidate[];
  /** Candidates of the kind in all, and how many could have taken the task. */
  readonly total: number;
  readonly eligible: number;
}

/** How a policy explains its scores: what they are, and which way is better. */
export interface ScoreRule {
  readonly score: string;
  readonly rule: string;
  /** 'lower' / 'higher': the best score wins; 'none': the score does not decide alone (random, turns). */
  readonly better: 'lower' | 'higher' | 'none';
}

export interface PolicyDeps {
  /** Uniform in [0, 1). Inject a seeded source (see seededRandom). */
  readonly random: () => number;
}

/** A configured policy instance with its own small state (e.g. WRR weights). */
export interface Policy {
  readonly name: string;
  buildPicker(candidates: readonly Candidate[], now: number): Picker;
}

/** One per policy file, registered by name. */
export interface PolicyFactory<C = unknown> {
  readonly name: string;
  readonly description: string;
  /** Validate raw config (from YAML/JSON); throws PolicyConfigError. */
  parseConfig(raw: unknown): C;
  create(config: C, deps: PolicyDeps): Policy;
}
