// One run of a scenario with one policy per tier, on virtual time: the tasks'
// home side (retries, deadlines, completion), the faults, the summary timers
// and the probes. Deterministic: the scenario's seed drives the workload, and
// each cell's policy gets its own seeded random source.

import { createPolicy, seededRandom, type Picker } from '../../src/policies/index.js';
import { VirtualScheduler } from '../../src/mesh/virtual-scheduler.js';
import { Rng } from '../../src/util/rng.js';
import { SimCell } from './cells.js';
import { Ewma, SimAgent, SimTask, type Home } from './task.js';
import { Metrics, type RunMetrics } from './metrics.js';
import type { CellSpec, PolicyByTier, Scenario, SimSettings } from './types.js';

/** A cell's tick (MeshSettings.tickMs), when summaries may also go early. */
const SUMMARY_TICK_MS = 10;

export interface RunOptions {
  /** Stop this long after the last arrival even if tasks are left (they count as unfinished). */
  readonly maxDrainMs?: number;
  /** Told where each attempt went and when (./trace.ts); nothing else reads it. */
  readonly trace?: TraceSink;
}

/** Per-attempt events of a run, for tracing where tasks went (./trace.ts). */
export interface TraceSink {
  /** The home popped the attempt and sent it on. */
  served?(t: SimTask, now: number): void;
  /** The attempt reached a node cell (from its parent, or submitted there). */
  atNode?(t: SimTask, node: SimCell, now: number): void;
  started?(t: SimTask, a: SimAgent, now: number): void;
  /** The task's successful result is back at home. */
  completed?(t: SimTask, now: number): void;
  /** A cell's picker routed the attempt to `to`. */
  routed?(cell: SimCell, t: SimTask, picker: Picker, to: string, now: number): void;
}

class Run implements Home {
  readonly sched = new VirtualScheduler(0);
  readonly settings: SimSettings;
  readonly baseMs: Readonly<Record<string, number>>;
  readonly tenantWeights: Readonly<Record<string, number>>;
  readonly metrics: Metrics;
  readonly cells: SimCell[] = [];
  readonly agents: SimAgent[] = [];
  readonly root: SimCell;
  private readonly byTarget = new Map<string, SimCell | SimAgent>();
  private finished = 0;

  constructor(
    private readonly sc: Scenario,
    policies: PolicyByTier,
    private readonly trace: TraceSink | undefined,
  ) {
    this.settings = sc.settings;
    this.baseMs = sc.kinds;
    this.tenantWeights = sc.tenants;
    this.metrics = new Metrics(sc.settings.agingMs, sc.tenants);
    const build = (spec: CellSpec, parent: SimCell | undefined): SimCell => {
      const random = seededRandom((sc.seed * 7919 + this.cells.length * 104729 + (sc.settings.policySeed ?? 0)) >>> 0);
      const name = policies[spec.tier];
      const policy = createPolicy(name, sc.settings.policyConfig?.[name], { random });
      const c = new SimCell(spec, parent, policy, this);
      this.cells.push(c);
      this.byTarget.set(spec.id, c);
      for (const a of spec.agents) {
        const agent = new SimAgent(a, c);
        c.addAgent(agent);
        this.agents.push(agent);
        this.byTarget.set(a.id, agent);
      }
      for (const ch of spec.children) c.addChild(build(ch, c));
      return c;
    };
    this.root = build(sc.root, undefined);
  }

  run(opts: RunOptions): RunMetrics {
    const { sched, settings: s } = this;
    const rng = new Rng(this.sc.seed ^ 0x5bd1e995);
    for (const c of this.cells) {
      const parent = c.parent;
      if (parent) {
        // Periodic: every summaryIntervalMs from a random phase (the bench before session 13). Else
        // the mesh's tick (10 ms) sends one when summaryIntervalMs passed since the last, early or not.
        const periodic = s.summaryRule === 'periodic';
        const every = (): void => {
          c.periodicSummary(sched.now(), periodic);
          sched.setTimer(periodic ? s.summaryIntervalMs : SUMMARY_TICK_MS, every);
        };
        sched.setTimer(rng.next() * s.summaryIntervalMs, every);
      }
      // Ticks: notice expired deadlines and rebuild stale pickers, as a cell's tick does.
      const tick = (): void => {
        if (c.up) {
          c.sweepExpired(sched.now());
          c.schedulePump();
        }
        sched.setTimer(100, tick);
      };
      sched.setTimer(rng.next() * 100, tick);
    }
    const tasks = this.sc.tasks.map((t) => new SimTask(t));
    for (const t of tasks) if (t.deadline !== undefined) this.metrics.deadlineTasks++;
    let next = 0;
    const arrive = (): void => {
      const now = sched.now();
      while (next < tasks.length && tasks[next]!.spec.at <= now) {
        const t = tasks[next++]!;
        this.metrics.arrived(t.spec.at);
        this.submit(t, now);
      }
      if (next < tasks.length) sched.setTimer(tasks[next]!.spec.at - now, arrive);
    };
    if (tasks.length > 0) sched.setTimer(tasks[0]!.spec.at, arrive);
    for (const f of this.sc.faults) sched.setTimer(f.at, () => this.fault(f.target, f.durationMs));
    for (const at of this.sc.probeAtMs ?? []) sched.setTimer(at, () => this.probe(at));

    const lastArrival = tasks.length ? tasks[tasks.length - 1]!.spec.at : 0;
    const stopAt = lastArrival + (opts.maxDrainMs ?? 60_000);
    while (this.finished < tasks.length && sched.now() < stopAt) sched.advance(250);
    const end = Math.max(this.metrics.lastCompletion, lastArrival);
    const util = this.agents.map((a) => {
      const upMs = a.upMs + (a.up ? end - a.upSince : 0);
      return upMs > 0 ? Math.min(1, a.busyMs / (a.spec.slots * upMs)) : 0;
    });
    return this.metrics.finish(
      end,
      tasks.length,
      util,
      this.agents.map((a) => a.spec.speed),
    );
  }

  private submit(t: SimTask, now: number): void {
    t.exclude = undefined;
    t.homeServed = false;
    t.laneRankAtServe = Infinity;
    this.metrics.waiting(t, now);
    this.root.receive(t, now);
  }

  // ---- Home ----

  result(t: SimTask, ok: boolean, now: number): void {
    if (!ok) {
      this.retry(t, now);
      return;
    }
    const back = now + (t.path.length - 1) * this.settings.linkMs;
    this.leavePath(t);
    t.done = true;
    this.finished++;
    this.metrics.completedTask(t, back);
    this.trace?.completed?.(t, back);
  }

  lost(t: SimTask, now: number): void {
    this.retry(t, now);
  }

  private retry(t: SimTask, now: number): void {
    this.leavePath(t);
    if (t.attempt >= this.settings.maxAttempts) {
      this.metrics.failedTask();
      this.finished++;
      return;
    }
    t.attempt++;
    this.sched.setTimer(this.settings.retryBackoffMs, () => this.submit(t, now + this.settings.retryBackoffMs));
  }

  expired(t: SimTask, cell: SimCell): void {
    if (cell === this.root && !t.homeServed) this.metrics.unqueued(t);
    this.leavePath(t);
    this.metrics.expired(t);
    this.finished++;
  }

  served(t: SimTask, now: number): void {
    if (t.homeServed) return;
    t.homeServed = true;
    this.metrics.served(t, now);
    this.trace?.served?.(t, now);
  }

  started(t: SimTask, a: SimAgent, now: number): void {
    this.metrics.started(t, a.labelSet, now);
    this.trace?.started?.(t, a, now);
  }

  atNode(t: SimTask, node: SimCell, now: number): void {
    this.trace?.atNode?.(t, node, now);
  }

  routed(cell: SimCell, t: SimTask, picker: Picker, to: string, now: number): void {
    this.trace?.routed?.(cell, t, picker, to, now);
  }

  violation(): void {
    this.metrics.creditViolations++;
  }

  summarySent(): void {
    this.metrics.summaries++;
  }

  private leavePath(t: SimTask): void {
    for (const c of t.path) c.held--;
    t.path = [];
  }

  // ---- Faults ----

  private fault(target: string, durationMs: number): void {
    const x = this.byTarget.get(target);
    if (x === undefined) throw new Error(`sim: no agent or cell ${target}`);
    if (x instanceof SimAgent) this.agentDown(x, durationMs);
    else this.cellDown(x, durationMs);
  }

  private agentDown(a: SimAgent, durationMs: number): void {
    const now = this.sched.now();
    if (!a.up) return;
    const lost = this.stopAgent(a, now);
    a.node.invalidate();
    for (const t of lost) this.lost(t, now);
    this.sched.setTimer(durationMs, () => {
      this.startAgent(a, this.sched.now());
      a.node.invalidate();
    });
  }

  /** The cell and its subtree stop; its parent notices after detectMs and retries what it held. */
  private cellDown(c: SimCell, durationMs: number): void {
    const now = this.sched.now();
    if (!c.up) return;
    const sub = this.subtree(c);
    for (const s of sub) {
      s.up = false;
      s.epoch++;
      s.downRoot = c;
      for (const t of [...s.queue.values()]) c.limbo.push(s.queue.remove(t.id)!);
      s.queue = s.newQueue();
      for (const a of s.agents) if (a.up) c.limbo.push(...this.stopAgent(a, now));
    }
    const failBack = (): void => {
      const lost = c.limbo;
      c.limbo = [];
      for (const t of lost) this.lost(t, this.sched.now());
    };
    this.sched.setTimer(this.settings.detectMs, () => {
      c.parent?.childLost(c);
      failBack();
    });
    this.sched.setTimer(durationMs, () => {
      const t = this.sched.now();
      for (const s of sub) {
        s.up = true;
        s.epoch++;
        s.downRoot = undefined;
        for (const a of s.agents) this.startAgent(a, t);
        s.invalidate();
      }
      failBack();
    });
  }

  private stopAgent(a: SimAgent, now: number): SimTask[] {
    const lost = [...a.running];
    for (const t of lost) {
      t.timer?.cancel();
      a.node.release(a, t, now - t.startedAt);
    }
    a.up = false;
    a.upMs += now - a.upSince;
    return lost;
  }

  private startAgent(a: SimAgent, now: number): void {
    if (a.up) return;
    a.up = true;
    a.upSince = now;
    // A new session: the node knows nothing of it yet (agent-session.ts).
    a.latency = new Ewma(0.1, 0);
    a.success = new Ewma(0.1, 1);
  }

  private subtree(c: SimCell): SimCell[] {
    const out = [c];
    for (const ch of c.children) out.push(...this.subtree(ch));
    return out;
  }

  /** Per agent: running + its share (by slots) of its node's queue; max over mean across live agents. */
  private probe(at: number): void {
    const loads: number[] = [];
    for (const c of this.cells) {
      if (c.tier !== 'node' || !c.up) continue;
      const live = c.agents.filter((a) => a.up);
      const slots = live.reduce((n, a) => n + a.spec.slots, 0);
      for (const a of live) loads.push(a.inFlight + (c.queue.size * a.spec.slots) / Math.max(1, slots));
    }
    const mean = loads.reduce((a, b) => a + b, 0) / Math.max(1, loads.length);
    this.metrics.probes.push({ atMs: at, mean, maxOverMean: mean > 0 ? Math.max(...loads) / mean : 0 });
  }
}

/** Run `sc` with `policies` per tier and return what it measured. */
export function runScenario(sc: Scenario, policies: PolicyByTier, opts: RunOptions = {}): RunMetrics {
  return new Run(sc, policies, opts.trace).run(opts);
}
