// A task's affinity (labels every agent that takes it must carry) as a picker
// checks it, at every tier (docs/mesh.md, "Affinity through the tiers"):
// - at a node, a candidate is an agent: its own labels must hold every one;
// - above, a candidate is a child cell whose summary describes, per kind, the
//   label sets its agents offer (Candidate.kindLabels). A child may match when
//   some group holds every required label, a label on a key the groups leave
//   out counting as held; a kind it does not describe may match anything. Where
//   described, the matching groups' free slots bound what this picker sends
//   there with affinity (less what it sent so since it was built), beside the
//   kind's credit: a task waits for a matching slot rather than go to a child
//   whose free slots are all on agents that do not match.
// Kept apart from picker.ts so its per-pick state (the requirements, a cache of
// each candidate's matching room) lives in one small place; a picker asks it
// only for tasks that carry affinity, so tasks without any pay one comparison.
import type { Candidate, KindLabels, TaskInfo } from './types.js';

const pairOf = (key: string, value: string): string => key + '\0' + value;

/** A group's labels and a kind's unknown keys as sets, made once per KindLabels object. */
interface Prepared {
  readonly groups: readonly Set<string>[];
  readonly unknown: ReadonlySet<string>;
}

const prepared = new WeakMap<KindLabels, Prepared>();

function prepare(k: KindLabels): Prepared {
  let p = prepared.get(k);
  if (p === undefined) {
    const groups = k.groups.map((g) => new Set(g.labels.map((l) => pairOf(l.key, l.value))));
    prepared.set(k, (p = { groups, unknown: new Set(k.unknownKeys) }));
  }
  return p;
}

/**
 * The free slots of the groups of `k` that may match the required pairs (`pairs[i]` is
 * "key\0value" of `keys[i]`), or -1 when none may. Exported for tests and the mesh's own checks.
 */
export function matchingRoom(k: KindLabels, pairs: readonly string[], keys: readonly string[], n: number): number {
  const p = prepare(k);
  let room = -1;
  for (let g = 0; g < p.groups.length; g++) {
    const set = p.groups[g]!;
    let ok = true;
    for (let i = 0; i < n && ok; i++) ok = set.has(pairs[i]!) || p.unknown.has(keys[i]!);
    if (ok) room = Math.max(0, room) + k.groups[g]!.free;
  }
  return room;
}

/**
 * Whether a subtree whose agents of a kind offer the groups of `k` may take a task requiring `affinity`
 * (placements outside the picker: guaranteed attempts, preemption's critical tasks).
 */
export function kindMayMatch(k: KindLabels, affinity: NonNullable<TaskInfo['affinity']>): boolean {
  if (affinity.length === 0) return true;
  const pairs = affinity.map((l) => pairOf(l.key, l.value));
  const keys = affinity.map((l) => l.key);
  return matchingRoom(k, pairs, keys, affinity.length) >= 0;
}

export class AffinityMatch {
  /** Required labels of the task being picked ("key\0value", and the keys), `count` of them. */
  private readonly pairs: string[] = [];
  private readonly keys: string[] = [];
  count = 0;
  private kind = '';
  /** Agents' labels as sets, built on the first task with affinity. */
  private labelSets: (Set<string> | undefined)[] | undefined;
  /** Per candidate: its matching room for the current task (NaN: not computed yet; -1: no match). */
  private room: Float64Array | undefined;
  /** Candidates that said no agent below them matches the current task (TaskInfo.noMatchBelow). */
  private refuted: readonly string[] | undefined;
  /** Per candidate: slots this picker routed there for tasks with affinity (described children only). */
  private sent: Float64Array | undefined;

  constructor(private readonly cands: readonly Candidate[]) {}

  /**
   * The task being picked needs these labels for a task of `kind` (none: every check passes);
   * `noMatch`: candidates that said none of their agents matches it (they match nothing for it).
   */
  set(kind: string, affinity: TaskInfo['affinity'], noMatch?: readonly string[]): void {
    this.count = 0;
    if (affinity === undefined || affinity.length === 0) return;
    this.kind = kind;
    for (const l of affinity) {
      this.keys[this.count] = l.key;
      this.pairs[this.count++] = pairOf(l.key, l.value);
    }
    if (this.room === undefined) this.room = new Float64Array(this.cands.length);
    this.room.fill(NaN);
    this.refuted = noMatch !== undefined && noMatch.length > 0 ? noMatch : undefined;
  }

  /** Candidate `idx` may hold an agent that matches (count 0: yes). */
  matches(idx: number): boolean {
    if (this.count === 0) return true;
    const c = this.cands[idx]!;
    if (this.refuted !== undefined && this.refuted.includes(c.id)) return false;
    if (c.kindLabels === undefined) return this.agentMatches(idx, c);
    return this.roomOf(idx) >= 0;
  }

  /**
   * What a task with this affinity may still take at `idx`: the matching groups' free slots less
   * what this picker sent there with affinity; Infinity where the kind is not described (an
   * agent, or a child that did not say) or the task has none.
   */
  credit(idx: number): number {
    if (this.count === 0) return Infinity;
    const c = this.cands[idx]!;
    if (this.refuted !== undefined && this.refuted.includes(c.id)) return 0;
    if (c.kindLabels === undefined || !c.kindLabels.has(this.kind)) return Infinity;
    return Math.max(0, this.roomOf(idx) - (this.sent?.[idx] ?? 0));
  }

  /** `n` slots of a task with this affinity went to (n < 0: came back from) `idx`. */
  routed(idx: number, n: number): void {
    if (this.count === 0 || this.cands[idx]!.kindLabels === undefined) return;
    this.sent ??= new Float64Array(this.cands.length);
    this.sent[idx]! += n;
  }

  /** Candidate `idx` was replaced in place (Picker.update): its label set is made again when asked. */
  replaced(idx: number): void {
    if (this.labelSets) this.labelSets[idx] = undefined;
    if (this.sent) this.sent[idx] = 0;
  }

  private roomOf(idx: number): number {
    const room = this.room!;
    let r = room[idx]!;
    if (Number.isNaN(r)) {
      const k = this.cands[idx]!.kindLabels!.get(this.kind);
      r = room[idx] = k === undefined ? Infinity : matchingRoom(k, this.pairs, this.keys, this.count);
    }
    return r;
  }

  private agentMatches(idx: number, c: Candidate): boolean {
    const sets = (this.labelSets ??= new Array<Set<string> | undefined>(this.cands.length));
    let set = sets[idx];
    if (set === undefined) {
      set = new Set<string>();
      for (const l of c.labels) set.add(pairOf(l.key, l.value));
      sets[idx] = set;
    }
    for (let i = 0; i < this.count; i++) if (!set.has(this.pairs[i]!)) return false;
    return true;
  }
}
