// What a cell reports to its parent: per kind the free and total slots of its
// subtree, its queue, load and health. Free slots are the parent's dispatch
// credits, so they are conservative: free below (child credits or agent slots)
// minus what this cell already holds queued of that kind.
import type { KindCapacity, QueueDepth, Summary } from '../gen/meshlb/v1/link.js';
import { Priority } from '../gen/meshlb/v1/task.js';
import type { Cell } from './cell.js';

export interface Capacity {
  free: number;
  total: number;
  healthy: number;
}

export interface SubtreeLoad {
  readonly capacity: ReadonlyMap<string, Capacity>;
  readonly healthyAgents: number;
  readonly cpu: number;
  readonly memory: number;
  readonly latencyEwmaMs: number;
  readonly successEwma: number;
}

const RANK_PRIORITY = [
  Priority.PRIORITY_CRITICAL,
  Priority.PRIORITY_HIGH,
  Priority.PRIORITY_NORMAL,
  Priority.PRIORITY_LOW,
];

export function subtreeLoad(cell: Cell, now: number): SubtreeLoad {
  if (cell.agents) return cell.agents.load();
  if (cell.children) return cell.children.load(now);
  return { capacity: new Map(), healthyAgents: 0, cpu: 0, memory: 0, latencyEwmaMs: 0, successEwma: 1 };
}

/**
 * Per kind the free and total slots this cell reports, sorted by kind: the part
 * of a summary the parent link judges before deciding to send one.
 */
export function summaryKinds(cell: Cell, load: SubtreeLoad): KindCapacity[] {
  const kinds: KindCapacity[] = [];
  // A node also takes a small prefetch (a fraction of its slots) to queue
  // locally, so an agent that frees a slot gets work without a round trip.
  const ratio = cell.agents ? cell.settings.prefetchRatio : 0;
  for (const [kind, c] of load.capacity) {
    const extra = c.healthy > 0 ? Math.min(cell.settings.forwardBuffer, Math.ceil(c.total * ratio)) : 0;
    const free = cell.draining ? 0 : Math.max(0, c.free + extra - cell.queue.sizeOfKind(kind));
    kinds.push({ kind, freeSlots: free, totalSlots: c.total, healthyAgents: c.healthy });
  }
  if (kinds.length > 1) kinds.sort((a, b) => (a.kind < b.kind ? -1 : a.kind > b.kind ? 1 : 0));
  return kinds;
}

/** The whole summary; `load` and `kinds` when the caller already computed them (same `now`). */
export function buildSummary(
  cell: Cell,
  seq: number,
  now: number,
  address: string,
  load: SubtreeLoad = subtreeLoad(cell, now),
  kinds: KindCapacity[] = summaryKinds(cell, load),
): Summary {
  const depth = cell.queue.depthByPriority();
  const ranks = [depth.critical, depth.high, depth.normal, depth.low];
  const queue: QueueDepth[] = [];
  for (let i = 0; i < 4; i++) if (ranks[i]! > 0) queue.push({ priority: RANK_PRIORITY[i]!, depth: ranks[i]! });
  let free = 0;
  for (const k of kinds) free += k.freeSlots;
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
    labels: cell.spec.labels.map((l) => ({ key: l.key, value: l.value })),
    draining: cell.draining,
    sentUnixMs: now,
  };
}

/**
 * The shape of a summary's capacity (kinds, totals, healthy agents, draining):
 * a change of it is always worth a summary. Free slots are judged separately
 * against the parent's view (parent-link.ts).
 */
export function summarySignature(s: Summary): string {
  return capacitySignature(s.kinds, s.draining);
}

/** summarySignature from the kinds and the draining flag alone (before the summary is built). */
export function capacitySignature(kinds: readonly KindCapacity[], draining: boolean): string {
  let sig = draining ? 'D' : '';
  for (const k of kinds) sig += `${k.kind}:${k.totalSlots}/${k.healthyAgents};`;
  return sig;
}

/** Exponentially weighted moving average helper. */
export class Ewma {
  value: number;
  private seeded = false;
  constructor(
    private readonly alpha: number,
    initial: number,
  ) {
    this.value = initial;
  }

  add(x: number): void {
    if (!this.seeded) {
      this.value = x;
      this.seeded = true;
    } else this.value += this.alpha * (x - this.value);
  }
}
