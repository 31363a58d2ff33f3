// The label sets a subtree's agents of each kind offer, as summaries carry them
// up (KindCapacity.label_groups, docs/mesh.md "Affinity through the tiers"), so
// every tier places a task with affinity only where a matching agent may be.
//
// Bounded at every tier: at most MAX_LABEL_GROUPS groups and MAX_LABEL_CHARS
// characters of labels per kind. Past either, the label key with the most
// distinct values (a host name, say) is left out of every group and named in
// unknownKeys, and the groups are merged again, until they fit: an affinity on
// an unknown key may match any group, so leaving a key out never excludes a
// subtree wrongly, it only stops telling its values apart. Past
// MAX_UNKNOWN_KEYS such keys the kind is not described at all (known: false):
// any affinity may match there, as with a peer that predates the fields.
//
// A node keeps its agents' groups per kind incrementally (exact label sets,
// with free and total slots), updated by AgentCapacity with every change of an
// agent's slots: O(kinds of the agent) per task. The bounded description is
// made only for a summary that goes out; its merging of exact sets into groups
// is redone only when the sets themselves changed (an agent came or went).
// A cell above merges its children's descriptions for a summary that goes out,
// O(children × groups).
import type { KindCapacity, LabelGroup, Summary } from '../gen/meshlb/v1/link.js';
import type { Label } from '../gen/meshlb/v1/task.js';
import { kindMayMatch, type KindLabels } from '../policies/index.js';

export const MAX_LABEL_GROUPS = 8;
export const MAX_LABEL_CHARS = 4096;
export const MAX_UNKNOWN_KEYS = 16;

/** A kind's labels as a summary carries them. */
export interface LabelsOfKind {
  readonly groups: LabelGroup[];
  readonly unknownKeys: string[];
  /** False: not described (any affinity may match). */
  readonly known: boolean;
}

export const UNKNOWN_LABELS: LabelsOfKind = Object.freeze({ groups: [], unknownKeys: [], known: false });

interface Slots {
  free: number;
  total: number;
}

/** Labels as one canonical string: sorted, without duplicates. */
function canonical(labels: readonly Label[], drop: ReadonlySet<string>): { key: string; labels: Label[] } {
  const pairs = new Map<string, Label>();
  for (const l of labels) if (!drop.has(l.key)) pairs.set(l.key + '\0' + l.value, l);
  const keys = [...pairs.keys()].sort();
  return {
    key: keys.join('\u0001'),
    labels: keys.map((k) => ({ key: pairs.get(k)!.key, value: pairs.get(k)!.value })),
  };
}

const charsOf = (labels: readonly Label[]): number => labels.reduce((n, l) => n + l.key.length + l.value.length, 0);

/**
 * Groups of labels merged to fit the bounds (`unknown`: keys already left out below). The result's
 * `index` maps each input group to the output group it went into (for a node's cached merge).
 */
export function fitGroups(
  input: readonly { readonly labels: readonly Label[] }[],
  unknown: Iterable<string>,
): { groups: Label[][]; unknownKeys: string[]; index: number[]; known: boolean } {
  const drop = new Set(unknown);
  for (;;) {
    const byKey = new Map<string, number>();
    const groups: Label[][] = [];
    const index: number[] = [];
    let chars = 0;
    for (const g of input) {
      const c = canonical(g.labels, drop);
      let i = byKey.get(c.key);
      if (i === undefined) {
        byKey.set(c.key, (i = groups.length));
        groups.push(c.labels);
        chars += charsOf(c.labels);
      }
      index.push(i);
    }
    if (drop.size > MAX_UNKNOWN_KEYS) return { groups: [], unknownKeys: [], index: [], known: false };
    if (groups.length <= MAX_LABEL_GROUPS && chars <= MAX_LABEL_CHARS)
      return { groups, unknownKeys: [...drop].sort(), index, known: true };
    // Leave out the key with the most distinct values (then the most characters, then by name).
    const values = new Map<string, Set<string>>();
    for (const g of groups)
      for (const l of g) (values.get(l.key) ?? values.set(l.key, new Set()).get(l.key)!).add(l.value);
    let worst = '';
    let score = [-1, -1];
    for (const [key, vals] of values) {
      let n = 0;
      for (const v of vals) n += key.length + v.length;
      if (vals.size > score[0]! || (vals.size === score[0] && (n > score[1]! || (n === score[1] && key < worst)))) {
        worst = key;
        score = [vals.size, n];
      }
    }
    drop.add(worst);
  }
}

/** A description from merged groups and their slots. */
function described(fit: ReturnType<typeof fitGroups>, slots: readonly Slots[]): LabelsOfKind {
  if (!fit.known) return UNKNOWN_LABELS;
  const groups: LabelGroup[] = fit.groups.map((labels) => ({ labels, freeSlots: 0, totalSlots: 0 }));
  for (let i = 0; i < fit.index.length; i++) {
    const g = groups[fit.index[i]!]!;
    g.freeSlots += Math.max(0, slots[i]!.free);
    g.totalSlots += Math.max(0, slots[i]!.total);
  }
  // Most slots first; ties by labels, so a description does not depend on the order agents came in.
  const name = (g: LabelGroup): string => g.labels.map((l) => l.key + '\0' + l.value).join('\u0001');
  groups.sort((a, b) => b.totalSlots - a.totalSlots || (name(a) < name(b) ? -1 : name(a) > name(b) ? 1 : 0));
  return { groups, unknownKeys: fit.unknownKeys, known: true };
}

/** A cell's description of `kind` from its children's (a child without one, or not known: not known). */
export function mergeLabels(children: readonly (KindCapacity | undefined)[]): LabelsOfKind {
  const input: { labels: readonly Label[] }[] = [];
  const slots: Slots[] = [];
  const unknown = new Set<string>();
  for (const k of children) {
    if (k === undefined || !withinBounds(k)) return UNKNOWN_LABELS;
    for (const key of k.unknownLabelKeys) unknown.add(key);
    for (const g of k.labelGroups) {
      input.push(g);
      slots.push({ free: g.freeSlots, total: g.totalSlots });
    }
  }
  return described(fitGroups(input, unknown), slots);
}

/** A child describes the kind, within the bounds (past them: a malformed peer, taken as not describing it). */
const withinBounds = (k: KindCapacity): boolean =>
  k.labelsKnown && k.labelGroups.length <= MAX_LABEL_GROUPS && k.unknownLabelKeys.length <= MAX_UNKNOWN_KEYS;

/** One exact label set of a node's agents of a kind. */
interface Exact extends Slots {
  readonly labels: readonly Label[];
  readonly key: string;
  agents: number;
}

interface KindSets {
  readonly sets: Map<string, Exact>;
  /** The merge of the sets into groups, made when the sets last changed (undefined: make it again). */
  fit: { readonly order: Exact[]; readonly fit: ReturnType<typeof fitGroups> } | undefined;
}

/** What NodeLabels reads of an agent. */
export interface LabelledAgent {
  readonly kinds: readonly string[];
  readonly labels: readonly Label[];
  readonly slots: number;
}

/** A node's agents' exact label sets per kind, kept incrementally (AgentCapacity calls it). */
export class NodeLabels {
  private readonly byKind = new Map<string, KindSets>();
  /** Each live agent's set per kind (the order of its kinds). */
  private readonly of = new WeakMap<LabelledAgent, Exact[]>();

  /** Add (sign 1) or remove (-1) an agent offering `free` slots now. */
  account(s: LabelledAgent, sign: 1 | -1, free: number): void {
    let sets = this.of.get(s);
    if (sets === undefined) {
      const key = canonical(s.labels ?? [], NO_KEYS); // test doubles may carry none
      sets = s.kinds.map((kind) => this.setOf(kind, key.key, key.labels));
      this.of.set(s, sets);
    }
    for (let i = 0; i < sets.length; i++) {
      const e = sets[i]!;
      e.free += sign * free;
      e.total += sign * s.slots;
      e.agents += sign;
      if (e.agents === 0) {
        const k = this.byKind.get(s.kinds[i]!)!;
        k.sets.delete(e.key);
        k.fit = undefined;
        if (k.sets.size === 0) this.byKind.delete(s.kinds[i]!);
      }
    }
    if (sign < 0) this.of.delete(s);
  }

  /** `delta` slots of a live agent were taken (> 0) or freed (< 0). */
  taken(s: LabelledAgent, delta: number): void {
    const sets = this.of.get(s);
    if (sets !== undefined) for (const e of sets) e.free -= delta;
  }

  /** The bounded description of `kind` (a summary that goes out). */
  describe(kind: string): LabelsOfKind {
    const k = this.byKind.get(kind);
    if (k === undefined) return UNKNOWN_LABELS;
    if (k.fit === undefined) {
      const order = [...k.sets.values()];
      k.fit = { order, fit: fitGroups(order, NO_KEYS) };
    }
    return described(k.fit.fit, k.fit.order);
  }

  private setOf(kind: string, key: string, labels: readonly Label[]): Exact {
    let k = this.byKind.get(kind);
    if (k === undefined) this.byKind.set(kind, (k = { sets: new Map(), fit: undefined }));
    let e = k.sets.get(key);
    if (e === undefined) {
      k.sets.set(key, (e = { labels, key, free: 0, total: 0, agents: 0 }));
      k.fit = undefined;
    }
    return e;
  }
}

const NO_KEYS: ReadonlySet<string> = new Set();

const candidateLabels = new WeakMap<SummaryKinds, ReadonlyMap<string, KindLabels>>();

/** What kindLabelsOf reads of a summary. */
export type SummaryKinds = Pick<Summary, 'kinds'>;

/**
 * Whether a task of `kind` needing `affinity` may find a matching agent below a child with this
 * summary (placements outside the picker: guaranteed attempts, preemption's critical tasks).
 */
export function summaryMayMatch(s: SummaryKinds, kind: string, affinity: readonly Label[]): boolean {
  const k = kindLabelsOf(s).get(kind);
  return k === undefined || kindMayMatch(k, affinity);
}

/**
 * What a child's summary says of its agents' labels per kind, for its candidate (made once per
 * summary): kinds it does not describe are left out, so any affinity may match there.
 */
export function kindLabelsOf(s: SummaryKinds): ReadonlyMap<string, KindLabels> {
  let m = candidateLabels.get(s);
  if (m === undefined) {
    const out = new Map<string, KindLabels>();
    for (const k of s.kinds) {
      if (!withinBounds(k)) continue;
      const groups = k.labelGroups.map((g) => ({ labels: g.labels, free: g.freeSlots, total: g.totalSlots }));
      out.set(k.kind, { groups, unknownKeys: k.unknownLabelKeys });
    }
    candidateLabels.set(s, (m = out));
  }
  return m;
}

const labelKeys = new WeakMap<KindLabels, string>();

/**
 * What a child's summary says of the label sets of its agents of `kind`, as a string that changes
 * when they do (and not with free slots): a child that said no agent below it matches a task is
 * skipped for that task until this changes (refusal-wait.ts). '-' where the summary does not describe
 * the kind (any affinity may match there), '' with no summary.
 */
export function labelsKey(s: SummaryKinds | undefined, kind: string): string {
  if (s === undefined) return '';
  const k = kindLabelsOf(s).get(kind);
  if (k === undefined) return '-';
  let key = labelKeys.get(k);
  if (key === undefined) {
    const sets = k.groups.map((g) => g.labels.map((l) => `${l.key}=${l.value}`).join(',')).sort();
    labelKeys.set(k, (key = `${sets.join(';')}|${[...k.unknownKeys].sort().join(',')}`));
  }
  return key;
}
