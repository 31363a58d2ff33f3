// What a run measures. Completion time is arrival at the home (entry) cell to
// the successful result back there, across retries. The definitions of the
// fairness and priority measures are written beside their code; docs/policies.md
// repeats them.

import { PRIORITY_RANK } from '../../src/queue/index.js';
import type { Label } from '../../src/policies/index.js';
import type { SimTask } from './task.js';

/** One waiting task in the inversion index; `seq` must match the task's to be live. */
interface WaitEntry {
  readonly task: SimTask;
  readonly seq: number;
}

/** Tasks waiting (enqueued at home, not started on an agent) per class and base rank, oldest first. */
class WaitClass {
  readonly fifo: WaitEntry[][] = [[], [], [], []];
  readonly head = [0, 0, 0, 0];
  constructor(readonly affinity: readonly Label[]) {}

  /** Oldest live entry of rank r (drops dead ones from the front). */
  oldest(r: number): SimTask | undefined {
    const q = this.fifo[r]!;
    let h = this.head[r]!;
    while (h < q.length && q[h]!.task.waitSeq !== q[h]!.seq) h++;
    if (h > 1024 && h * 2 > q.length) {
      q.splice(0, h);
      h = 0;
    }
    this.head[r] = h;
    return h < q.length ? q[h]!.task : undefined;
  }
}

export interface RunMetrics {
  readonly completed: number;
  readonly failed: number;
  readonly unfinished: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly p999Ms: number;
  readonly meanMs: number;
  /** Completed tasks per second from the first arrival to the last completion. */
  readonly throughput: number;
  readonly utilizationMean: number;
  /** Coefficient of variation (std/mean) of utilization across agents. */
  readonly utilizationCv: number;
  /** The same over the agents that ran anything (utilization above 0). */
  readonly utilizationCvBusy: number;
  /** Per speed class (x1-2, x2-4, x4-8: an octave of speed each), its agents' mean utilization and CV. */
  readonly utilizationBySpeed: readonly {
    readonly speeds: string;
    readonly agents: number;
    readonly mean: number;
    readonly cv: number;
  }[];
  /** Mean total-variation distance between backlogged tenants' service shares and their weights (0..1). */
  readonly tenantShareError: number | null;
  readonly inversions: number;
  readonly inversionsBeyondAging: number;
  readonly deadlineTasks: number;
  readonly deadlineMisses: number;
  /** Assignments past an agent's slots or deliveries past a node's advertised credit (must be 0). */
  readonly creditViolations: number;
  /** Summaries the child cells sent their parents, per task (arrived). */
  readonly summariesPerTask: number;
  /** max/mean per-agent load at each probe time. */
  readonly probes: readonly { readonly atMs: number; readonly maxOverMean: number; readonly mean: number }[];
  /** Completion-time quantiles for the CDF chart: [quantile, ms]. */
  readonly cdf: readonly (readonly [number, number])[];
  readonly utilizationByAgent: readonly number[];
  /** Per kind: completed tasks and their p50/p99 completion times (ms). */
  readonly byKind: Readonly<
    Record<string, { readonly completed: number; readonly p50Ms: number; readonly p99Ms: number }>
  >;
}

export class Metrics {
  private times: number[] = [];
  private readonly timesByKind = new Map<string, number[]>();
  completed = 0;
  failed = 0;
  deadlineTasks = 0;
  deadlineMisses = 0;
  inversions = 0;
  inversionsBeyondAging = 0;
  creditViolations = 0;
  summaries = 0;
  firstArrival = Infinity;
  lastCompletion = 0;
  readonly probes: { atMs: number; maxOverMean: number; mean: number }[] = [];
  private readonly classes = new Map<string, Map<string, WaitClass>>();
  private waitSeq = 0;
  // Tenant shares: per lane (kind/priority) and tenant, backlog at home and pops this window.
  private readonly backlog = new Map<string, Map<string, number>>();
  private readonly emptied = new Set<string>();
  private readonly pops = new Map<string, Map<string, number>>();
  /** Per lane, the tenants with a backlog when the window began. */
  private startBacklogged = new Map<string, string[]>();
  private windowStart = 0;
  private shareErrSum = 0;
  private shareWeight = 0;

  constructor(
    private readonly agingMs: number,
    private readonly weights: Readonly<Record<string, number>>,
    private readonly shareWindowMs = 1000,
  ) {}

  arrived(now: number): void {
    if (now < this.firstArrival) this.firstArrival = now;
  }

  /** The task (re)enters the home queue: it waits from now for the inversion check. */
  waiting(t: SimTask, now: number): void {
    t.enqAt = now;
    t.waitSeq = ++this.waitSeq;
    const key = t.affinityKey;
    let byKind = this.classes.get(t.kind);
    if (!byKind) this.classes.set(t.kind, (byKind = new Map()));
    let c = byKind.get(key);
    if (!c) byKind.set(key, (c = new WaitClass(t.spec.affinity ?? [])));
    c.fifo[PRIORITY_RANK[t.priority]]!.push({ task: t, seq: t.waitSeq });
    const lane = laneOf(t);
    let m = this.backlog.get(lane);
    if (!m) this.backlog.set(lane, (m = new Map()));
    m.set(t.tenant, (m.get(t.tenant) ?? 0) + 1);
  }

  /** Popped at home and sent on (routed or spilled): a service turn for its tenant. */
  served(t: SimTask, now: number): void {
    t.laneRankAtServe = this.laneRank(t, now);
    this.rollWindow(now);
    const lane = laneOf(t);
    const m = this.backlog.get(lane)!;
    const left = m.get(t.tenant)! - 1;
    m.set(t.tenant, left);
    if (left === 0) this.emptied.add(lane + '\0' + t.tenant);
    let p = this.pops.get(lane);
    if (!p) this.pops.set(lane, (p = new Map()));
    p.set(t.tenant, (p.get(t.tenant) ?? 0) + 1);
  }

  /** Left the home queue without being served (expired, cancelled with a dead cell...). */
  unqueued(t: SimTask): void {
    const lane = laneOf(t);
    const m = this.backlog.get(lane)!;
    const left = m.get(t.tenant)! - 1;
    m.set(t.tenant, left);
    if (left === 0) this.emptied.add(lane + '\0' + t.tenant);
  }

  /** Effective rank of the task's lane (kind, base priority) now: its own, or its lane's oldest waiting. */
  private laneRank(t: SimTask, now: number): number {
    const rank = PRIORITY_RANK[t.priority];
    let lane = this.eff(t, now);
    for (const c of this.classes.get(t.kind)!.values()) {
      const o = c.oldest(rank);
      if (o !== undefined) lane = Math.min(lane, this.eff(o, now));
    }
    return lane;
  }

  /** Base rank minus one level per agingMs waited since it entered the home queue. */
  private eff(x: SimTask, now: number): number {
    return Math.max(0, PRIORITY_RANK[x.priority] - Math.floor(Math.max(0, now - x.enqAt) / this.agingMs));
  }

  /**
   * The task starts on an agent with labels `agentLabels`. The queue serves
   * lanes (kind, base priority) by effective rank: base rank minus one level
   * per agingMs its oldest task waited; inside a lane, tenants take turns. So
   * an inversion is a start while another lane of the same kind holds a
   * waiting task this agent could run whose effective rank is lower than this
   * task's lane's, both when home chose this task and now (tenant turns inside
   * a lane are fairness, not inversions). Beyond the aging bound: that better
   * task already ranked better than this lane agingMs ago, so the inversion
   * has lasted a whole aging period (not a task crossing an aging step while
   * this one was in flight or buffered below).
   */
  started(t: SimTask, agentLabels: ReadonlySet<string>, now: number): void {
    t.waitSeq = -1; // no longer waiting
    const rank = PRIORITY_RANK[t.priority];
    const lane = Math.min(this.laneRank(t, now), t.laneRankAtServe);
    if (lane === 0) return;
    let inverted = false;
    let beyond = false;
    for (const c of this.classes.get(t.kind)!.values()) {
      if (!c.affinity.every((l) => agentLabels.has(l.key + '\0' + l.value))) continue;
      for (let r = 0; r < 4; r++) {
        if (r === rank) continue;
        const h = c.oldest(r);
        if (h === undefined || this.eff(h, now) >= lane) continue;
        inverted = true;
        const then = now - this.agingMs;
        if (h.enqAt <= then && this.eff(h, then) < lane) beyond = true;
      }
    }
    if (inverted) this.inversions++;
    if (beyond) this.inversionsBeyondAging++;
  }

  completedTask(t: SimTask, now: number): void {
    this.completed++;
    this.times.push(now - t.spec.at);
    let k = this.timesByKind.get(t.kind);
    if (!k) this.timesByKind.set(t.kind, (k = []));
    k.push(now - t.spec.at);
    if (now > this.lastCompletion) this.lastCompletion = now;
    if (t.deadline !== undefined && now > t.deadline) this.deadlineMisses++;
  }

  /** Ended in a queue past its deadline: no longer waiting. */
  expired(t: SimTask): void {
    t.waitSeq = -1;
    this.deadlineMisses++;
    this.failed++;
  }

  failedTask(): void {
    this.failed++;
  }

  private rollWindow(now: number): void {
    if (now - this.windowStart < this.shareWindowMs) return;
    for (const [lane, started] of this.startBacklogged) {
      // Backlogged all window: queued at its start and never emptied since.
      const tenants = started.filter((tn) => !this.emptied.has(lane + '\0' + tn));
      if (tenants.length < 2) continue;
      const p = this.pops.get(lane);
      let n = 0;
      let w = 0;
      for (const tn of tenants) {
        n += p?.get(tn) ?? 0;
        w += this.weights[tn] ?? 1;
      }
      if (n < 20) continue;
      let tv = 0;
      for (const tn of tenants) tv += Math.abs((p?.get(tn) ?? 0) / n - (this.weights[tn] ?? 1) / w);
      this.shareErrSum += (tv / 2) * n;
      this.shareWeight += n;
    }
    this.pops.clear();
    this.emptied.clear();
    this.startBacklogged = new Map();
    for (const [lane, m] of this.backlog) {
      const ts = [...m].filter(([, n]) => n > 0).map(([tn]) => tn);
      if (ts.length >= 2) this.startBacklogged.set(lane, ts);
    }
    this.windowStart = now;
  }

  finish(end: number, totalTasks: number, utilization: readonly number[], speeds: readonly number[]): RunMetrics {
    const ts = Float64Array.from(this.times).sort();
    const q = (p: number): number => (ts.length === 0 ? NaN : ts[Math.min(ts.length - 1, Math.floor(p * ts.length))]!);
    const mean = ts.length ? ts.reduce((a, b) => a + b, 0) / ts.length : NaN;
    const um = utilization.reduce((a, b) => a + b, 0) / Math.max(1, utilization.length);
    const uv = utilization.reduce((a, b) => a + (b - um) ** 2, 0) / Math.max(1, utilization.length);
    const span = Math.max(1, Math.max(end, this.lastCompletion) - this.firstArrival);
    const cdf: [number, number][] = [];
    for (let i = 1; i <= 50; i++) {
      const p = 1 - Math.pow(10, (-3 * i) / 50); // 0.13 .. 0.999, dense in the tail
      cdf.push([p, q(p)]);
    }
    cdf.unshift([0, ts[0] ?? NaN], [0.5, q(0.5)]);
    cdf.sort((a, b) => a[0] - b[0]);
    return {
      completed: this.completed,
      failed: this.failed,
      unfinished: totalTasks - this.completed - this.failed,
      p50Ms: q(0.5),
      p99Ms: q(0.99),
      p999Ms: q(0.999),
      meanMs: mean,
      throughput: (this.completed / span) * 1000,
      utilizationMean: um,
      utilizationCv: um > 0 ? Math.sqrt(uv) / um : 0,
      utilizationCvBusy: cvOf(utilization.filter((u) => u > 0)).cv,
      utilizationBySpeed: [1, 2, 4].flatMap((lo) => {
        const us = utilization.filter((_, i) => speeds[i]! >= lo && (speeds[i]! < 2 * lo || lo === 4));
        return us.length ? [{ speeds: `x${lo}-${2 * lo}`, agents: us.length, ...cvOf(us) }] : [];
      }),
      tenantShareError: this.shareWeight > 0 ? this.shareErrSum / this.shareWeight : null,
      inversions: this.inversions,
      inversionsBeyondAging: this.inversionsBeyondAging,
      deadlineTasks: this.deadlineTasks,
      deadlineMisses: this.deadlineMisses,
      creditViolations: this.creditViolations,
      summariesPerTask: this.summaries / Math.max(1, totalTasks),
      probes: this.probes,
      cdf,
      utilizationByAgent: utilization,
      byKind: Object.fromEntries(
        [...this.timesByKind].map(([kind, xs]) => {
          const s = Float64Array.from(xs).sort();
          const at = (p: number): number => s[Math.min(s.length - 1, Math.floor(p * s.length))]!;
          return [kind, { completed: s.length, p50Ms: at(0.5), p99Ms: at(0.99) }];
        }),
      ),
    };
  }
}

function laneOf(t: SimTask): string {
  return t.kind + '\0' + t.priority;
}

/** Mean and coefficient of variation (std/mean) of `xs`. */
function cvOf(xs: readonly number[]): { mean: number; cv: number } {
  const m = xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
  const v = xs.reduce((a, b) => a + (b - m) ** 2, 0) / Math.max(1, xs.length);
  return { mean: m, cv: m > 0 ? Math.sqrt(v) / m : 0 };
}
