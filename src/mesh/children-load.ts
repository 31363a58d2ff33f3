// A cell's subtree load from its children's latest summaries and the credits
// it holds on each link (ChildLinks.load, read by summary.ts). The parent link
// judges whether a summary is due twice per task at low rates (summary-pacer.ts),
// so this is one pass over the links with no closures and, once the kinds are
// known, no allocation per call.
import type { ChildLink } from './child-link.js';
import type { KindCapacity, Summary } from '../gen/meshlb/v1/link.js';
import { mergeLabels, type LabelsOfKind } from './label-groups.js';
import type { Capacity, SubtreeLoad } from './port.js';

const NONE = Object.freeze({ free: 0, total: 0 });

/** A kind's figures, kept between refreshes; `pass` is the refresh that last saw the kind. */
interface KindLoad extends Capacity {
  free: number;
  total: number;
  healthy: number;
  pass: number;
}

/**
 * Refreshed in place (refresh()) rather than made per call: the parent link judges whether a summary is
 * due before every flush toward its parent, and a new object with three maps each time was a tenth of
 * what a middle cell allocated per task at low rates (docs/performance.md, "Allocation at low rate").
 */
class ChildrenLoad implements SubtreeLoad {
  readonly capacity = new Map<string, KindLoad>();
  /** Per kind over the children: the roomiest agent's free slots and the biggest agent (docs/gang.md). */
  private readonly big = new Map<string, { free: number; total: number }>();
  /** Per kind: the most free at one node below (gangs). */
  private readonly atNode = new Map<string, number>();
  private pass = 0;
  /** The summaries of the last refresh's open, non-draining links (labels() merges theirs: label-groups.ts). */
  private readonly summaries: Summary[] = [];
  private readonly ofKind: KindCapacity[] = [];
  healthyAgents = 0;
  cpu = 0;
  memory = 0;
  latencyEwmaMs = 0;
  successEwma = 1;

  refresh(links: Iterable<ChildLink>): this {
    const pass = ++this.pass;
    let cpu = 0;
    let memory = 0;
    let lat = 0;
    let succ = 0;
    let n = 0;
    let healthyAgents = 0;
    this.summaries.length = 0;
    for (const link of links) {
      const s = link.summary;
      if (!s || link.closed) continue;
      n++;
      if (!s.draining) this.summaries.push(s);
      healthyAgents += s.healthyAgents;
      cpu += s.utilization?.cpu ?? 0;
      memory += s.utilization?.memory ?? 0;
      lat += s.latencyEwmaMs;
      succ += s.successEwma;
      for (const [kind, total] of link.total) {
        let c = this.capacity.get(kind);
        if (!c) this.capacity.set(kind, (c = { free: 0, total: 0, healthy: 0, pass: 0 }));
        let m = this.big.get(kind);
        if (!m) this.big.set(kind, (m = { free: 0, total: 0 }));
        if (c.pass !== pass) {
          // First link with the kind in this refresh.
          c.pass = pass;
          c.free = c.total = c.healthy = 0;
          m.free = m.total = 0;
          this.atNode.set(kind, 0);
        }
        c.free += s.draining ? 0 : link.credits(kind);
        c.total += total;
        c.healthy += link.healthy.get(kind) ?? 0;
        const big = link.largest(kind);
        const free = s.draining ? 0 : big.free;
        if (!s.draining) this.atNode.set(kind, Math.max(this.atNode.get(kind)!, link.nodeFree.get(kind) ?? 0));
        m.free = Math.max(m.free, free);
        m.total = Math.max(m.total, big.total);
      }
    }
    // Kinds no link reports any more (rare: a child's agents of the kind all gone).
    for (const [kind, c] of this.capacity)
      if (c.pass !== pass) {
        this.capacity.delete(kind);
        this.big.delete(kind);
        this.atNode.delete(kind);
      }
    this.healthyAgents = healthyAgents;
    this.cpu = n > 0 ? cpu / n : 0;
    this.memory = n > 0 ? memory / n : 0;
    this.latencyEwmaMs = n > 0 ? lat / n : 0;
    this.successEwma = n > 0 ? succ / n : 1;
    return this;
  }

  largest(kind: string): { readonly free: number; readonly total: number } {
    return this.big.get(kind) ?? NONE;
  }

  /** The label sets of `kind` below, merged from the children's (a summary that goes out: O(children × groups)). */
  labels(kind: string): LabelsOfKind {
    const of = this.ofKind;
    of.length = 0;
    for (const s of this.summaries) {
      const k = s.kinds.find((x) => x.kind === kind);
      if (k !== undefined) of.push(k);
    }
    return mergeLabels(of);
  }

  nodeFree(kind: string): number {
    return this.atNode.get(kind) ?? 0;
  }
}

/**
 * The load of the subtree below these links (the open ones with a summary), as one object per `ChildLinks`
 * refreshed at each call: read it before the next call (every caller does, in the same step).
 */
export class ChildrenLoads {
  private readonly load = new ChildrenLoad();

  of(links: Iterable<ChildLink>): SubtreeLoad {
    return this.load.refresh(links);
  }
}
