// The simulator's `affinity` check (docs/mesh.md, "Affinity through the tiers"):
// a cell above the nodes never sends a task with affinity to a child whose
// subtree has had no live agent carrying its labels for AFFINITY_GRACE_MS while
// a sibling it could have chosen (not the child it came from) has one now.
// Ground truth is the nodes' own sessions; the grace covers what summaries take
// to say an agent left (a node sees it go within its heartbeat timeout, and
// each tier's summary follows within its interval or its link's timeout).
import type { Cell } from '../../../src/mesh/cell.js';
import type { Label } from '../../../src/gen/meshlb/v1/task.js';

/** Longer than heartbeatTimeoutMs (1,200) plus a summary at each of up to three tiers (100 each) and a link timeout. */
export const AFFINITY_GRACE_MS = 3000;

const pairKey = (l: Label): string => `${l.key}=${l.value}`;

export class AffinityWatch {
  /** `${subtree}|${kind}|${key=value}`: when an agent below last carried it (live sessions of node leaders). */
  private readonly lastMatch = new Map<string, number>();
  /** `${cell}|${routeKey}` of sends already judged (pruned to those still held). */
  private readonly judged = new Set<string>();
  /** Attempts with affinity sent down by cells above the nodes, judged. */
  sent = 0;

  constructor(private readonly add: (check: 'affinity', what: string) => void) {}

  /** Once per step: the nodes' live agents first, then every upper cell's new sends (leaders only). */
  step(leaders: ReadonlyMap<string, Cell>, now: number): void {
    for (const cell of leaders.values()) {
      if (!cell.agents) continue;
      for (const s of cell.agents.byId.values()) {
        if (s.dead) continue;
        for (const kind of s.kinds)
          for (const l of s.labels)
            for (let p = cell.path; ; p = parentOf(p)) {
              this.lastMatch.set(`${p}|${kind}|${pairKey(l)}`, now);
              if (p === '/') break;
            }
      }
    }
    const seen = new Set<string>();
    for (const cell of leaders.values()) {
      if (!cell.children) continue;
      for (const item of cell.routes.values()) {
        if (item.via?.type !== 'child' || item.spec.affinity.length === 0) continue;
        const k = `${cell.path}|${item.key}`;
        seen.add(k);
        if (this.judged.has(k)) continue;
        this.judged.add(k);
        this.sent++;
        const to = item.via.cell;
        if (this.had(to, item.kind, item.spec.affinity, now - AFFINITY_GRACE_MS)) continue;
        const better = [...cell.children.links.keys()].find(
          (c) => c !== to && c !== item.exclude && this.had(c, item.kind, item.spec.affinity, now),
        );
        if (better !== undefined)
          this.add(
            'affinity',
            `${item.key} (${item.spec.affinity.map(pairKey).join(',')}) sent from ${cell.path} to ${to}, ` +
              `which has had no matching agent since ${now - AFFINITY_GRACE_MS} ms, while ${better} has one`,
          );
      }
    }
    for (const k of this.judged) if (!seen.has(k)) this.judged.delete(k);
  }

  /** Some agent below `subtree` carried every label (each, for a one-label affinity: the simulator's) since `since`. */
  private had(subtree: string, kind: string, affinity: readonly Label[], since: number): boolean {
    return affinity.every((l) => (this.lastMatch.get(`${subtree}|${kind}|${pairKey(l)}`) ?? -Infinity) >= since);
  }
}

function parentOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i <= 0 ? '/' : path.slice(0, i);
}
