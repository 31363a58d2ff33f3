// The simulated cells. Each cell runs the real TaskQueue and the real
// policy's picker with the dispatch loop of src/mesh/dispatcher.ts (per kind, in
// the mesh's order of kinds (src/mesh/kind-order.ts), while credits last; parked tasks requeued keeping their age; spill up when
// no candidate has the kind). What is simplified, and why it does not change
// a placement: links are a fixed delay with no loss; a summary is the mesh's
// (free + prefetch − queued per kind, active, queue depth, latency and success
// EWMAs), sent when the mesh's pacer would send it (./pacer.ts: at least every
// summaryIntervalMs, and early when the parent's credit view is off) and
// delivered staleMs later; a parent's view of its children is in views.ts.

import {
  makeCandidate,
  QUEUE_HELD,
  speedGroups,
  type AgentFigures,
  type Candidate,
  type Picker,
  type Policy,
  type SpeedGroups,
} from '../../src/policies/index.js';
import { TaskQueue } from '../../src/queue/index.js';
import { kindOrder } from '../../src/mesh/kind-order.js';
import { Ewma, type SimAgent, type SimTask, type Home } from './task.js';
import type { CellSpec, SimTier } from './types.js';
import { ChildViews, type Aggregate, type SimSummary } from './views.js';
import { SimPacer } from './pacer.js';

/** A node cell's tick (MeshSettings.tickMs default): a task held back for a faster agent is looked at again this soon. */
const TICK_MS = 10;

export class SimCell {
  readonly id: string;
  readonly tier: SimTier;
  readonly children: SimCell[] = [];
  readonly agents: SimAgent[] = [];
  readonly agentById = new Map<string, SimAgent>();
  queue: TaskQueue<SimTask>;
  up = true;
  epoch = 0;
  /** Tasks of the current attempt in this subtree (queued here or below). */
  held = 0;
  /** While down: the outage's top cell, whose limbo collects tasks sent into it. */
  downRoot: SimCell | undefined = undefined;
  limbo: SimTask[] = [];
  completions = 0;
  private lastQps = { at: 0, count: 0, value: 0 };
  private readonly views = new ChildViews<SimCell>();
  private picker: Picker | undefined = undefined;
  private dirty = true;
  private builtAt = -Infinity;
  private pumpScheduled = false;
  /** A held-back task's re-pump is armed (one at a time). */
  private tickArmed = false;
  /** When summaries go up (./pacer.ts); a judgement is armed for this turn. */
  private readonly pacer = new SimPacer();
  /** Per kind, the sequence number of the last dispatch taken in from the parent (summaries carry it). */
  private readonly received = new Map<string, number>();
  private judgeArmed = false;

  constructor(
    readonly spec: CellSpec,
    readonly parent: SimCell | undefined,
    readonly policy: Policy,
    private readonly home: Home,
  ) {
    this.id = spec.id;
    this.tier = spec.tier;
    this.queue = this.newQueue();
  }

  newQueue(): TaskQueue<SimTask> {
    // Tenant weights as DRR quanta (the queue supports them; the mesh does not configure them yet).
    const w = this.home.tenantWeights;
    return new TaskQueue<SimTask>({
      capacity: 1_000_000,
      agingMs: this.home.settings.agingMs,
      tenantQuantum: (t) => w[t] ?? 1,
    });
  }

  addChild(c: SimCell): void {
    this.children.push(c);
    this.views.add(c);
  }

  addAgent(a: SimAgent): void {
    this.agents.push(a);
    this.agentById.set(a.spec.id, a);
  }

  invalidate(): void {
    this.dirty = true;
    this.schedulePump();
  }

  schedulePump(): void {
    this.changed();
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    this.home.sched.defer(() => this.pump());
  }

  /**
   * Something moved the capacity or the queue: the pacer judges on this turn, after the pump (as
   * the parent link judges before each flush). Only with a rule that sends early.
   */
  private changed(): void {
    if (this.parent === undefined || this.judgeArmed || this.home.settings.summaryRule === 'periodic') return;
    this.judgeArmed = true;
    this.home.sched.defer(() => {
      this.judgeArmed = false;
      this.judge();
    });
  }

  private judge(): void {
    if (!this.up) return;
    const now = this.home.sched.now();
    const st = this.home.settings;
    const s = this.summarize(now);
    if (this.pacer.due(now, st.summaryRule, s, st.speedCheckMs)) this.sendSummary(s);
  }

  /**
   * From the cell's tick: a summary at least every summaryIntervalMs (`always`: the periodic
   * rule's own timer), and a speed judgement its rate bound put off.
   */
  periodicSummary(now: number, always: boolean): void {
    if (!this.up || !this.parent) return;
    if (always || now - this.pacer.lastSentAt >= this.home.settings.summaryIntervalMs)
      this.sendSummary(this.summarize(now));
    else if (this.pacer.speedRecheck(now, this.home.settings.speedCheckMs)) this.judge();
  }

  private sendSummary(s: SimSummary): void {
    const parent = this.parent!;
    this.pacer.sent(s);
    this.home.summarySent();
    const st = this.home.settings;
    this.home.sched.setTimer(st.staleMs + st.linkMs, () => parent.deliver(this, s));
  }

  /** A task arrives from the parent (or is submitted here, at home). */
  receive(t: SimTask, now: number, fromChild = false): void {
    if (!this.up) {
      this.downRoot!.limbo.push(t);
      return;
    }
    const r = this.queue.push(t, now);
    if (!r.ok) {
      if (r.reason === 'expired') this.home.expired(t, this);
      else this.home.lost(t, now);
      return;
    }
    if (!fromChild) {
      if (this.tier === 'node') this.home.atNode(t, this, now);
      if (this.parent) {
        this.pacer.accepted(t.kind);
        this.received.set(t.kind, t.sendSeq);
      }
      t.path.push(this);
      this.held++;
      this.checkCredit(t.kind);
    }
    this.schedulePump();
  }

  /**
   * The node must never hold more of a kind than its slots plus the prefetch
   * it ever advertised: all its agents' slots, since one that died after a
   * summary leaves its credit spent legitimately (checked where agents have a
   * single kind: shared slots make per-kind credits overlap by design).
   */
  private checkCredit(kind: string): void {
    if (this.tier !== 'node' || this.agents.some((a) => a.spec.kinds.length > 1)) return;
    let total = 0;
    let running = 0;
    for (const a of this.agents) {
      if (a.spec.kinds[0] !== kind) continue;
      total += a.spec.slots;
      running += a.inFlight;
    }
    if (this.queue.sizeOfKind(kind) + running > total + this.prefetch(total)) this.home.violation();
  }

  private prefetch(total: number): number {
    const s = this.home.settings;
    return total > 0 ? Math.min(s.forwardBuffer, Math.ceil(total * s.prefetchRatio)) : 0;
  }

  private getPicker(now: number): Picker {
    if (this.dirty || this.picker === undefined || now - this.builtAt >= this.home.settings.pickerRefreshMs) {
      this.picker = this.policy.buildPicker(this.candidates(now), now);
      this.dirty = false;
      this.builtAt = now;
    }
    return this.picker;
  }

  pump(): void {
    this.pumpScheduled = false;
    if (!this.up || this.queue.size === 0) return;
    const now = this.home.sched.now();
    const picker = this.getPicker(now);
    const parked: { task: SimTask; enqueuedAt: number }[] = [];
    let held = false;
    for (const kind of kindOrder(this.queue, now)) {
      let budget = this.queue.sizeOfKind(kind);
      if (!picker.hasKind(kind)) {
        // No candidate has the kind: hand its tasks up (the home keeps them).
        if (this.parent) for (let p; budget-- > 0 && (p = this.queue.popKind(kind, now));) this.spill(p.task, now);
        continue;
      }
      let ahead = 0;
      while (budget-- > 0 && picker.credits(kind) > 0) {
        const p = this.queue.popKind(kind, now);
        if (!p) break;
        const t = p.task;
        const info = {
          kind,
          priority: t.priority,
          tenant: t.tenant,
          ...(t.spec.affinity ? { affinity: t.spec.affinity } : {}),
          ...(t.exclude ? { exclude: t.exclude } : {}),
          // As the dispatcher at a node, for the tasks homed there (the entry cell): tasks of the kind
          // set aside before it, and its wait here.
          ...(this.tier === 'node' && this.parent === undefined
            ? { queuedAhead: ahead, waitedMs: now - p.enqueuedAt }
            : {}),
        };
        const r = picker.pick(info);
        if (r === QUEUE_HELD) held = true;
        if (r.type === 'route') {
          if (this.parent === undefined) this.home.served(t, now);
          this.home.routed(this, t, picker, r.candidate, now);
          this.route(t, r.candidate, now);
        } else if (r.type === 'spillUp' && this.parent) {
          this.spill(t, now);
        } else if (r.type === 'reject') {
          throw new Error(`sim: task ${t.id} rejected: ${r.reason}`);
        } else {
          parked.push(p);
          ahead++;
        }
      }
    }
    for (const p of parked) this.queue.requeue(p.task, p.enqueuedAt);
    // Held back for a faster agent: the cell's tick pumps again (the dispatcher's sweep).
    if (held && !this.tickArmed) {
      this.tickArmed = true;
      this.home.sched.setTimer(TICK_MS, () => {
        this.tickArmed = false;
        this.schedulePump();
      });
    }
    this.sweepExpired(now);
  }

  sweepExpired(now: number): void {
    for (const t of this.queue.expire(now)) this.home.expired(t, this);
  }

  private spill(t: SimTask, now: number): void {
    this.held--;
    t.path.pop();
    (t.exclude ??= []).push(this.id);
    const parent = this.parent!;
    this.home.sched.setTimer(this.home.settings.linkMs, () => parent.receive(t, now + this.home.settings.linkMs, true));
  }

  private route(t: SimTask, to: string, now: number): void {
    if (this.tier === 'node') {
      this.start(this.agentById.get(to)!, t, now);
      return;
    }
    const link = this.home.settings.linkMs;
    const child = this.views.child(to);
    t.sendSeq = this.views.sent(to, t.kind);
    this.home.sched.setTimer(link, () => child.receive(t, this.home.sched.now()));
  }

  private start(a: SimAgent, t: SimTask, now: number): void {
    a.inFlight++;
    a.heldByKind.set(t.kind, (a.heldByKind.get(t.kind) ?? 0) + 1);
    if (a.inFlight > a.spec.slots) this.home.violation();
    a.running.add(t);
    const slow = now - a.upSince < a.spec.slowStartMs ? a.spec.slowStartFactor : 1;
    t.runMs = ((this.home.baseMs[t.kind] ?? 100) * t.spec.work * slow) / a.spec.speed;
    t.startedAt = now;
    t.agent = a;
    this.home.started(t, a, now);
    const ok = (t.spec.failDraws[t.attempt - 1] ?? 1) >= a.spec.failRate;
    t.timer = this.home.sched.setTimer(t.runMs, () => this.finish(a, t, ok));
  }

  private finish(a: SimAgent, t: SimTask, ok: boolean): void {
    const now = this.home.sched.now();
    this.release(a, t, t.runMs);
    a.latency.add(t.runMs);
    if (a.spec.kinds.length > 1) {
      let k = a.latencyByKind.get(t.kind);
      if (k === undefined) a.latencyByKind.set(t.kind, (k = new Ewma(0.1, 0)));
      k.add(t.runMs);
    }
    a.success.add(ok ? 1 : 0);
    this.completions++;
    // A freed slot goes back to the live picker (the mesh's slotFreed): no rebuild.
    if (!this.dirty) this.picker?.release(a.spec.id, t.kind);
    this.schedulePump();
    this.home.result(t, ok, now);
  }

  /** Take the task off its agent (finished after `ranMs`, or lost). */
  release(a: SimAgent, t: SimTask, ranMs: number): void {
    a.inFlight--;
    a.heldByKind.set(t.kind, a.heldByKind.get(t.kind)! - 1);
    a.running.delete(t);
    a.busyMs += ranMs;
    t.timer = undefined;
    t.agent = undefined;
  }

  /** The parent receives a child's summary staleMs after it was taken. */
  deliver(child: SimCell, s: SimSummary): void {
    if (this.up && this.views.deliver(child.id, s)) this.invalidate();
  }

  /** The parent noticed the child is gone: no more dispatches until it reports again. */
  childLost(child: SimCell): void {
    this.views.lost(child);
    this.invalidate();
  }

  candidates(now: number): Candidate[] {
    const out: Candidate[] = [];
    if (this.tier === 'node') {
      for (const a of this.agents) {
        if (!a.up) continue;
        const shared = { free: Math.max(0, a.spec.slots - a.inFlight), total: a.spec.slots };
        const slots = new Map<string, { free: number; total: number }>();
        if (a.spec.kinds.length === 1) slots.set(a.spec.kinds[0]!, shared);
        else
          for (const k of a.spec.kinds)
            slots.set(k, {
              free: a.spec.slots - (a.heldByKind.get(k) ?? 0),
              total: a.spec.slots,
              ...(this.home.settings.kindLatency ? { latencyEwmaMs: a.latencyByKind.get(k)?.value ?? 0 } : {}),
            });
        out.push(
          makeCandidate({
            id: a.spec.id,
            slots,
            ...(a.spec.kinds.length > 1 ? { sharedSlots: shared } : {}),
            active: a.inFlight,
            latencyEwmaMs: a.latency.value,
            successEwma: a.success.value,
            labels: a.spec.labels,
            // The node's own counts of what it assigned: nothing here is stale.
            summaryAgeMs: 0,
          }),
        );
      }
      return out;
    }
    return this.views.candidates(now);
  }

  /** What this cell reports up now (summary.ts: credit = free + prefetch − queued, per kind). */
  summarize(now: number): SimSummary {
    const a: Aggregate = {
      kinds: new Map(),
      labels: new Map(),
      healthy: 0,
      qps: 0,
      successSum: 0,
      children: 0,
      latencySum: 0,
      latencyN: 0,
    };
    for (const l of this.spec.labels) a.labels.set(l.key + '\0' + l.value, l);
    if (this.tier === 'node') this.aggregateAgents(a, now);
    else this.views.aggregate(a);
    for (const [k, c] of a.kinds) c.credit = Math.max(0, c.credit - this.queue.sizeOfKind(k));
    const speed = this.tier === 'node' && this.home.settings.speedGroups ? this.speedGroups(a) : undefined;
    return {
      ...(speed ? { speed } : {}),
      epoch: this.epoch,
      takenAt: now,
      kinds: a.kinds,
      active: this.held,
      queueDepth: this.queue.size,
      latencyEwmaMs: a.latencyN ? a.latencySum / a.latencyN : 0,
      successEwma: a.children ? a.successSum / a.children : 1,
      qps: a.qps,
      healthyAgents: a.healthy,
      labels: [...a.labels.values()],
      received: new Map(this.received),
    };
  }

  /** A node's agents by speed per kind, with the mesh's code (src/mesh/node-completion.ts does the same). */
  private speedGroups(a: Aggregate): Map<string, SpeedGroups> {
    const out = new Map<string, SpeedGroups>();
    for (const kind of a.kinds.keys()) {
      const figures: AgentFigures[] = [];
      for (const ag of this.agents) {
        if (!ag.up || !ag.spec.kinds.includes(kind)) continue;
        const free = Math.max(0, ag.spec.slots - ag.inFlight);
        const own = this.home.settings.kindLatency ? (ag.latencyByKind.get(kind)?.value ?? 0) : 0;
        figures.push({
          latencyEwmaMs: own > 0 ? own : ag.latency.value,
          successEwma: ag.success.value,
          cpu: 0,
          memory: 0,
          slots: ag.spec.slots,
          free: ag.spec.kinds.length === 1 ? free : Math.min(free, ag.spec.slots - (ag.heldByKind.get(kind) ?? 0)),
        });
      }
      const c = speedGroups(figures, this.queue.sizeOfKind(kind));
      if (c) out.set(kind, c);
    }
    return out;
  }

  /** A node's agents into its summary: free slots plus prefetch per kind, EWMAs, completions per second. */
  private aggregateAgents(a: Aggregate, now: number): void {
    for (const ag of this.agents) {
      if (!ag.up) continue;
      a.healthy++;
      a.children++;
      for (const k of ag.spec.kinds) {
        const c = a.kinds.get(k) ?? { credit: 0, total: 0, healthy: 0 };
        c.credit += Math.max(0, ag.spec.slots - ag.inFlight);
        c.total += ag.spec.slots;
        c.healthy++;
        a.kinds.set(k, c);
      }
      if (ag.latency.value > 0) {
        a.latencySum += ag.latency.value;
        a.latencyN++;
      }
      a.successSum += ag.success.value;
      for (const l of ag.spec.labels) a.labels.set(l.key + '\0' + l.value, l);
    }
    for (const c of a.kinds.values()) c.credit += this.prefetch(c.total);
    const dt = now - this.lastQps.at;
    if (dt >= 200) {
      const rate = ((this.completions - this.lastQps.count) / dt) * 1000;
      this.lastQps = { at: now, count: this.completions, value: this.lastQps.value * 0.5 + rate * 0.5 };
    }
    a.qps = this.lastQps.value;
  }
}
