// A cell's subtree load from its children's latest summaries and the credits
// it holds on each link (ChildLinks.load, read by summary.ts). The parent link
// judges whether a summary is due twice per task at low rates (summary-pacer.ts),
// so this is one pass over the links with no closures per call.
import type { ChildLink } from './child-link.js';
import type { Capacity, SubtreeLoad } from './port.js';

const NONE = Object.freeze({ free: 0, total: 0 });

class ChildrenLoad implements SubtreeLoad {
  readonly capacity = new Map<string, Capacity>();
  /** Per kind over the children: the roomiest agent's free slots and the biggest agent (docs/gang.md). */
  private readonly big = new Map<string, { free: number; total: number }>();
  /** Per kind: the most free at one node below (gangs). */
  private readonly atNode = new Map<string, number>();
  healthyAgents = 0;
  cpu = 0;
  memory = 0;
  latencyEwmaMs = 0;
  successEwma = 1;

  constructor(links: Iterable<ChildLink>) {
    let cpu = 0;
    let memory = 0;
    let lat = 0;
    let succ = 0;
    let n = 0;
    for (const link of links) {
      const s = link.summary;
      if (!s || link.closed) continue;
      n++;
      this.healthyAgents += s.healthyAgents;
      cpu += s.utilization?.cpu ?? 0;
      memory += s.utilization?.memory ?? 0;
      lat += s.latencyEwmaMs;
      succ += s.successEwma;
      for (const [kind, total] of link.total) {
        let c = this.capacity.get(kind);
        if (!c) this.capacity.set(kind, (c = { free: 0, total: 0, healthy: 0 }));
        c.free += s.draining ? 0 : link.credits(kind);
        c.total += total;
        c.healthy += link.healthy.get(kind) ?? 0;
        const big = link.largest(kind);
        const free = s.draining ? 0 : big.free;
        if (!s.draining) this.atNode.set(kind, Math.max(this.atNode.get(kind) ?? 0, link.nodeFree.get(kind) ?? 0));
        const m = this.big.get(kind);
        if (!m) this.big.set(kind, { free, total: big.total });
        else {
          m.free = Math.max(m.free, free);
          m.total = Math.max(m.total, big.total);
        }
      }
    }
    if (n > 0) {
      this.cpu = cpu / n;
      this.memory = memory / n;
      this.latencyEwmaMs = lat / n;
      this.successEwma = succ / n;
    }
  }

  largest(kind: string): { readonly free: number; readonly total: number } {
    return this.big.get(kind) ?? NONE;
  }

  nodeFree(kind: string): number {
    return this.atNode.get(kind) ?? 0;
  }
}

/** The load of the subtree below these links (the open ones with a summary). */
export function childrenLoad(links: Iterable<ChildLink>): SubtreeLoad {
  return new ChildrenLoad(links);
}
