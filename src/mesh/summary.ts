// What a cell reports to its parent: per kind the free and total slots of its
// subtree, its queue, load and health. Free slots are the parent's dispatch
// credits, so they are conservative: free below (child credits or agent slots)
// minus what this cell already holds queued of that kind; free never exceeds
// the kind's total slots (credit beyond it goes as prefetch_slots).
import type { KindCapacity, QueueDepth, Summary } from '../gen/meshlb/v1/link.js';
import { Priority, type Label } from '../gen/meshlb/v1/task.js';
import type { TaskQueue } from '../queue/index.js';
import type { Links, SubtreeLoad } from './port.js';
import type { CellSettings } from './settings.js';
import type { WorkItem } from './types.js';
import { UNKNOWN_LABELS } from './label-groups.js';

/** What a summary reads of its cell. */
export interface SummarySource {
  readonly path: string;
  readonly replicaId: string;
  readonly labels: readonly Label[];
  readonly settings: CellSettings;
  readonly queue: TaskQueue<WorkItem>;
  /** Attempts held (queued here for others, or sent on). */
  readonly routes: { readonly size: number };
  readonly links: Links;
  readonly draining: boolean;
  /** Circuit breakers of the cell's targets: free slots they hold back are no credit (dispatcher-breakers.ts). */
  readonly breakers?: { heldBack(kind: string): number; notClosed(): number };
  /** Running attempts a critical task sent here could preempt, per kind (preemptor.ts); absent: none. */
  readonly preemptor?: { preemptible(kind: string, now: number): number };
  /** The cell's forecasts (forecasts.ts): the fields of each kind, and a node's pre-positioned room. */
  readonly forecasts?: {
    forKind(kind: string): { rate: number; serviceMs: number };
    prefetch(kind: string, slots: number, base: number): number;
  };
}

const RANK_PRIORITY = [
  Priority.PRIORITY_CRITICAL,
  Priority.PRIORITY_HIGH,
  Priority.PRIORITY_NORMAL,
  Priority.PRIORITY_LOW,
];

const NO_LOAD: SubtreeLoad = {
  capacity: new Map(),
  healthyAgents: 0,
  cpu: 0,
  memory: 0,
  latencyEwmaMs: 0,
  successEwma: 1,
};

/** Sorted by kind (one function, not a closure per call). */
const byKind = (a: KindCapacity, b: KindCapacity): number => (a.kind < b.kind ? -1 : a.kind > b.kind ? 1 : 0);

export class Summarizer {
  /**
   * The kinds of a judgement that sent no summary (recycle()), filled in again by the next kinds(): the
   * parent link judges before every flush toward its parent, and at low rates nearly every judgement
   * sends nothing, so it allocates nothing once the kinds are known (docs/performance.md, "Allocation at low rate").
   */
  private spare: KindCapacity[] | undefined;

  constructor(private readonly cell: SummarySource) {}

  /** `kinds` (from kinds()) went into no summary and is referenced nowhere: the next kinds() may refill it. */
  recycle(kinds: KindCapacity[]): void {
    this.spare = kinds;
  }

  get draining(): boolean {
    return this.cell.draining;
  }

  load(now: number): SubtreeLoad {
    const { agents, children } = this.cell.links;
    if (agents) return agents.load();
    if (children) return children.load(now);
    return NO_LOAD;
  }

  /**
   * Per kind the free and total slots this cell reports, sorted by kind: the
   * part of a summary the parent link judges before deciding to send one
   * (twice per task at low rates, so the forecast fields wait for build).
   */
  kinds(load: SubtreeLoad, now = 0): KindCapacity[] {
    const cell = this.cell;
    const kinds = this.spare ?? [];
    this.spare = undefined;
    let n = 0;
    // A node also takes a small prefetch (a fraction of its slots) to queue
    // locally, so an agent that frees a slot gets work without a round trip.
    // The parent's credit is what it may send: free below plus that prefetch,
    // minus what waits here already. Idle agents plus the prefetch come to
    // more than the slots there are, so the part of the credit beyond the
    // total goes as prefetch_slots: free never exceeds total (issue 8: two
    // idle agents of 4 slots were reported as 12 free of 8).
    // The forecast may raise that share to what the node expects to run before
    // the parent can answer its next summary, up to its slots (forecasts.ts).
    const ratio = cell.links.agents ? cell.settings.prefetchRatio : 0;
    const draining = cell.draining;
    const forecasts = cell.forecasts;
    for (const [kind, c] of load.capacity) {
      const base = c.healthy > 0 ? Math.ceil(c.total * ratio) : 0;
      const room = ratio > 0 && c.healthy > 0 && forecasts ? forecasts.prefetch(kind, c.total, base) : base;
      const extra = Math.min(cell.settings.forwardBuffer, room);
      const held = cell.breakers?.heldBack(kind) ?? 0;
      const queued = cell.queue.sizeOfKind(kind);
      const credit = draining ? 0 : Math.max(0, c.free - held + extra - queued);
      const free = Math.min(credit, c.total);
      // For tasks of several slots (docs/gang.md): the roomiest agent's free slots, less what
      // waits here (it may go there first), and the biggest agent.
      const big = load.largest?.(kind);
      const largestFree = draining || !big ? free : Math.max(0, Math.min(big.free, c.free - held - queued));
      // For gangs (docs/gang.md): the most free at one node, less what waits here (a node: its own free).
      const below = cell.links.agents ? c.free - held : (load.nodeFree?.(kind) ?? 0);
      const nodeFree = draining ? 0 : Math.max(0, below - queued);
      // A recycled object was in no summary: its speed lists are still the empty ones it was made with.
      const k = (kinds[n++] ??= {
        kind,
        freeSlots: 0,
        totalSlots: 0,
        healthyAgents: 0,
        prefetchSlots: 0,
        preemptible: 0,
        forecastRate: 0, // filled in by build: the parent link judges without them
        forecastServiceMs: 0,
        queued: 0,
        largestFree: 0,
        largestTotal: 0,
        nodeFree: 0,
        speedServiceMs: [],
        speedSlots: [],
        speedFree: [],
        labelGroups: [], // filled in by build, as the speed lists
        unknownLabelKeys: [],
        labelsKnown: false,
      });
      k.kind = kind;
      k.freeSlots = free;
      k.totalSlots = c.total;
      k.healthyAgents = c.healthy;
      k.prefetchSlots = credit - free;
      k.preemptible = draining ? 0 : (cell.preemptor?.preemptible(kind, now) ?? 0);
      k.queued = queued;
      k.largestFree = largestFree;
      k.largestTotal = big ? big.total : c.total;
      k.nodeFree = nodeFree;
    }
    if (kinds.length !== n) kinds.length = n;
    if (n > 1) kinds.sort(byKind);
    return kinds;
  }

  /** The whole summary; `load` and `kinds` when the caller already computed them (same `now`). */
  build(
    seq: number,
    now: number,
    address: string,
    load: SubtreeLoad = this.load(now),
    kinds: KindCapacity[] = this.kinds(load, now),
  ): Summary {
    const cell = this.cell;
    const depth = cell.queue.depthByPriority();
    const ranks = [depth.critical, depth.high, depth.normal, depth.low];
    const queue: QueueDepth[] = [];
    for (let i = 0; i < 4; i++) if (ranks[i]! > 0) queue.push({ priority: RANK_PRIORITY[i]!, depth: ranks[i]! });
    let free = 0;
    for (const k of kinds) {
      free += creditOf(k);
      const f = cell.forecasts?.forKind(k.kind);
      k.forecastRate = f?.rate ?? 0;
      k.forecastServiceMs = f?.serviceMs ?? 0;
      // A node's agents by speed (node-completion.ts): only in a summary that goes out, as it costs O(agents).
      const g = cell.draining ? undefined : load.speed?.(k.kind, k.queued);
      if (g) {
        k.speedServiceMs = g.serviceMs.slice();
        k.speedSlots = g.slots.slice();
        k.speedFree = g.free.slice();
      }
      // The label sets its agents offer (label-groups.ts), for the parent's tasks with affinity.
      const labels = load.labels?.(k.kind) ?? UNKNOWN_LABELS;
      k.labelGroups = labels.groups;
      k.unknownLabelKeys = labels.unknownKeys;
      k.labelsKnown = labels.known;
    }
    return {
      cell: cell.path,
      seq,
      kinds,
      queue,
      utilization: { cpu: load.cpu, memory: load.memory, gpu: 0, network: 0 },
      latencyEwmaMs: load.latencyEwmaMs,
      successEwma: load.successEwma,
      healthyAgents: load.healthyAgents,
      activeTasks: cell.routes.size,
      forecastFreeSlots: free,
      leaderId: cell.replicaId,
      leaderAddress: address,
      labels: cell.labels.map((l) => ({ key: l.key, value: l.value })),
      draining: cell.draining,
      sentUnixMs: now,
      breakersOpen: cell.breakers?.notClosed() ?? 0,
    };
  }
}

/** What the parent may send of the kind before the next summary (its credit basis). */
export const creditOf = (k: KindCapacity): number => k.freeSlots + k.prefetchSlots;

/**
 * The shape of a summary's capacity (kinds, totals, healthy agents, draining,
 * whether a kind has attempts to preempt) is the same in `a` as in `b`, the
 * kinds of the last summary sent (undefined: none since the stream opened): a
 * change of it is always worth a summary. Free slots are judged separately
 * against the parent's view (summary-pacer.ts). Compared field by field: it
 * runs twice per task at low rates.
 */
export function sameShape(a: readonly KindCapacity[], b: readonly KindCapacity[] | undefined): boolean {
  if (b === undefined || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    // A kind gaining attempts to preempt, too: a parent holding a critical task learns it at once.
    if (x.kind !== y.kind || x.totalSlots !== y.totalSlots || x.healthyAgents !== y.healthyAgents) return false;
    if (x.preemptible > 0 !== y.preemptible > 0) return false;
  }
  return true;
}
