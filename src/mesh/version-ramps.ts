// Version ramps at a node cell (docs/flow-control.md, "Version ramps"): a
// kind's tasks go to agents of a new version with probability `percent`, to
// agents of any other version otherwise. The side is a hash of the task's pin
// (src/policies/version-split.ts: its context key, else its id), so retries
// and sessions stay on their side. The ramps are the cell's replicated config
// (ledger `versionRampSet`, applied on every replica by cell-config.ts).
//
// How placement follows it, with no change to the policies: each candidate
// agent of a ramped kind carries a label `meshlb.ramp/<kind>` = `new` or
// `old` (its side), and a task of that kind gets its side as one more
// affinity label, so every policy's affinity check keeps it there. The
// policies place tasks with affinity by a scan of the node's agents, so a
// ramped kind costs O(agents) per pick at the node.
//
// When the chosen side has no usable agent of the kind at this node (none
// connected, or all draining or cordoned), the task goes to the other side:
// a node that runs one version only serves every task of the kind. When the
// side has agents but all are full, the task waits for them (like any task
// for its affinity), so the split holds under load.
import type { Label } from '../gen/meshlb/v1/task.js';
import type { Candidate } from '../policies/index.js';
import { toNewVersion } from '../policies/version-split.js';
import { heldByKind, type AgentSession } from './agent-session.js';
import type { VersionRamp } from './ledger-record.js';
import type { WorkItem } from './types.js';

export const RAMP_LABEL = 'meshlb.ramp/';
const NEW = 'new';
const OLD = 'old';

/** How one version of a ramped kind is doing at this node. */
export interface VersionShareInfo {
  readonly version: string;
  readonly ramped: boolean;
  agents: number;
  inFlight: number;
  state: 'serving' | 'draining' | 'drained';
}

export class VersionRamps {
  private ramps: ReadonlyMap<string, VersionRamp> = new Map();
  /** Bumped on every change of the ramps: cached labels of an older epoch are rebuilt. */
  private epoch = 0;
  private readonly labelCache = new WeakMap<AgentSession, { epoch: number; labels: readonly Label[] }>();
  /** Usable (not draining) candidate agents per ramped kind: [new side, old side], from the last observe(). */
  private readonly usable = new Map<string, [number, number]>();
  /** One-label affinities per kind and side, reused for tasks with no affinity of their own. */
  private readonly sideLabels = new Map<string, readonly Label[]>();

  /** The ramps of the cell's config now; true when they changed (the candidates must be rebuilt). */
  set(ramps: ReadonlyMap<string, VersionRamp>): boolean {
    const same =
      ramps.size === this.ramps.size &&
      [...ramps].every(([k, r]) => {
        const o = this.ramps.get(k);
        return o !== undefined && o.version === r.version && o.percent === r.percent;
      });
    if (same) return false;
    this.ramps = new Map(ramps);
    this.epoch++;
    this.usable.clear();
    return true;
  }

  get(kind: string): VersionRamp | undefined {
    return this.ramps.get(kind);
  }

  kinds(): string[] {
    return [...this.ramps.keys()];
  }

  /** The agent's labels as candidates carry them: its own, and its side of each ramp of its kinds. */
  labels(s: AgentSession): readonly Label[] {
    if (this.ramps.size === 0) return s.labels;
    const c = this.labelCache.get(s);
    if (c?.epoch === this.epoch) return c.labels;
    const labels = [...s.labels];
    for (const k of s.kinds) {
      const r = this.ramps.get(k);
      if (r) labels.push({ key: RAMP_LABEL + k, value: s.version === r.version ? NEW : OLD });
    }
    this.labelCache.set(s, { epoch: this.epoch, labels });
    return labels;
  }

  /** The candidates a picker was built from: which sides of each ramp have usable agents. */
  observe(cands: readonly Candidate[]): void {
    if (this.ramps.size === 0) return;
    this.usable.clear();
    for (const c of cands) {
      if (c.draining) continue;
      for (const l of c.labels) {
        if (!l.key.startsWith(RAMP_LABEL)) continue;
        const kind = l.key.slice(RAMP_LABEL.length);
        let u = this.usable.get(kind);
        if (!u) this.usable.set(kind, (u = [0, 0]));
        u[l.value === NEW ? 0 : 1]++;
      }
    }
  }

  /** The affinity a task is placed with at this node: its own, plus its side of its kind's ramp. */
  affinity(item: WorkItem): readonly Label[] | undefined {
    const own = item.spec.affinity.length > 0 ? item.spec.affinity : undefined;
    const r = this.ramps.size === 0 ? undefined : this.ramps.get(item.kind);
    if (!r) return own;
    const u = this.usable.get(item.kind);
    let side = toNewVersion(item.spec.contextKey || item.taskId, r.percent) ? NEW : OLD;
    // No usable agent on that side here: the other side serves it (or nobody is constrained).
    if (u === undefined || u[side === NEW ? 0 : 1] === 0) {
      if (u === undefined || u[side === NEW ? 1 : 0] === 0) return own;
      side = side === NEW ? OLD : NEW;
    }
    const key = `${item.kind}\0${side}`;
    let one = this.sideLabels.get(key);
    if (!one) this.sideLabels.set(key, (one = [{ key: RAMP_LABEL + item.kind, value: side }]));
    return own ? [...own, ...one] : one;
  }

  /** Each version of `kind` among `sessions`: agents, attempts of the kind they run, draining or drained. */
  shares(kind: string, sessions: Iterable<AgentSession>): VersionShareInfo[] {
    const r = this.ramps.get(kind);
    const by = new Map<string, VersionShareInfo>();
    const share = (version: string): VersionShareInfo => {
      let v = by.get(version);
      if (!v)
        by.set(version, (v = { version, ramped: version === r?.version, agents: 0, inFlight: 0, state: 'serving' }));
      return v;
    };
    if (r) share(r.version);
    for (const s of sessions) {
      if (s.dead || !s.kinds.includes(kind)) continue;
      const v = share(s.version);
      v.agents++;
      v.inFlight += heldByKind(s).get(kind) ?? 0;
    }
    const out = [...by.values()].sort(
      (a, b) => Number(b.ramped) - Number(a.ramped) || a.version.localeCompare(b.version),
    );
    return r && r.percent >= 100 ? out.map(retire) : out;
  }
}

/** At a 100% ramp an old version only finishes what it runs. */
export function retire(v: VersionShareInfo): VersionShareInfo {
  if (!v.ramped) v.state = v.inFlight > 0 ? 'draining' : 'drained';
  return v;
}
