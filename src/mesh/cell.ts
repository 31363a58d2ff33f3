// One replica of one cell, put together: the home ledger and its log, the
// queue, the route table, the timers, and the modules that act on them —
// Home (decisions about the tasks submitted here), Relay (attempts passing
// through), Dispatcher (routing the queue), Summarizer (what goes up). The
// links and agent sessions are attached by the replica and reach the cell only
// through CellPort, which this class implements by handing each call to the
// module that owns it. Everything runs on the event loop with no awaits on the
// hot path except the ledger log's commit.
//
// Invariants live beside the state they govern: routes.ts (the route table and
// the forward buffer count), home.ts (attempts and leases), ledger.ts (task
// outcomes), agent-session.ts (slots). Every queue and map is bounded: the
// queue by capacity, routes by the queue bound plus credits plus route expiry,
// the ledger by retention.
import type { DispatchAck } from '../gen/meshlb/v1/link.js';
import type { Dispatch, TaskCheckpoint, TaskRef, TaskResult, TaskSpec } from '../gen/meshlb/v1/task.js';
import { BREAKER_DEFAULTS, createPolicy, seededRandom } from '../policies/index.js';
import { TaskQueue } from '../queue/index.js';
import type { CellSpec, Tier, Topology } from '../topology/types.js';
import { logger, type Logger } from '../util/log.js';
import type { AgentSessions } from './agent-sessions.js';
import { followCellConfig } from './cell-config.js';
import type { ChildLinks } from './child-links.js';
import { Dispatcher } from './dispatcher.js';
import { PREEMPTION_DEFAULTS } from '../flow/preemption.js';
import { Preemptor } from './preemptor.js';
import { CellForecasts, childForecasts } from './forecasts.js';
import type { BreakerGate } from './dispatcher-breakers.js';
import { Home, type SubmitOutcome } from './home.js';
import { Ledger, type TaskRecord } from './ledger.js';
import { SoleLeader, type ReplicatedLog } from './leadership.js';
import { NO_METER, type CellMeter } from './meter.js';
import { NO_TRACER, type CellTracer } from './tracer.js';
import type { ParentLink } from './parent-link.js';
import type { CellPort, Links } from './port.js';
import { Relay } from './relay.js';
import { RouteTable } from './routes.js';
import { realRandom, realScheduler, type Scheduler } from './scheduler.js';
import { resolveSettings, type CellSettings } from './settings.js';
import { StallClock, stallAllowMs } from './stall-clock.js';
import { Summarizer } from './summary.js';
import { CellTimers } from './timers.js';
import { type CellOptions, type CellStats, type GivenRef, type Origin, type Via, type WorkItem } from './types.js';

export class Cell implements CellPort {
  readonly path: string;
  readonly tier: Tier;
  readonly replicaId: string;
  readonly settings: CellSettings;
  readonly scheduler: Scheduler;
  readonly random: () => number;
  readonly log: Logger;
  readonly ledger: Ledger;
  /** The ledger's log and the cell's leadership: local (one replica) or the cell's Raft group. */
  readonly ledgerLog: ReplicatedLog;
  /** Where counts go (metrics); NO_METER unless the replica was given a meter. */
  readonly meter: CellMeter;
  /** Where task spans go; NO_TRACER unless the replica was given a tracer. */
  readonly tracer: CellTracer;
  /** This process's stalls as the parent link and the child links judge silence (CellPort.linkStalls). */
  readonly linkStalls = new StallClock(() => stallAllowMs(this.settings, this.settings.linkTimeoutMs / 4));
  /**
   * This replica makes the cell's decisions now: it leads and its ledger held
   * everything committed before its term when it started leading. Only then
   * does it dispatch, run leases, keep the parent link and take child links
   * and agents; a replica that stops leading drops all of that (soft state).
   */
  private leadingTerm: number | undefined;
  private readonly unsubscribe: (() => void)[] = [];
  /** Home items waiting for their next attempt and forwarded items, in one service order. */
  readonly queue: TaskQueue<WorkItem>;
  readonly routes: RouteTable;
  readonly timers: CellTimers;
  readonly home: Home;
  readonly relay: Relay;
  readonly dispatcher: Dispatcher;
  /** Preemption for critical tasks on saturated kinds (the topology's `preemption:`; off by default). */
  readonly preemptor: Preemptor;
  readonly summaries: Summarizer;
  /** Arrival and service-time forecasts per kind, and what they are used for (forecasts.ts). */
  readonly forecasts: CellForecasts;
  /** What is attached above and below, as the modules use it. */
  readonly links: Links = { parent: undefined, children: undefined, agents: undefined };
  readonly stats: CellStats = { dispatched: 0, spilled: 0, creditStalls: 0, givenBack: 0, pumps: 0 };
  /** The same attachments with their own types (admin, tests, the replica's lifecycle). */
  agents: AgentSessions | undefined;
  children: ChildLinks | undefined;
  parent: ParentLink | undefined;

  constructor(
    readonly topology: Topology,
    readonly spec: CellSpec,
    replica: number,
    opts: CellOptions = {},
  ) {
    this.path = spec.path;
    this.tier = spec.tier;
    this.replicaId = spec.replicas.find((r) => r.replica === replica)?.id ?? `${spec.path}#${replica}`;
    this.settings = resolveSettings(topology.defaults, opts, spec.tier);
    const base = opts.scheduler ?? realScheduler;
    const now = opts.now;
    // A clock given apart from the scheduler replaces its clock only (tests move time by hand).
    this.scheduler = now
      ? { now, setTimer: (ms, fn) => base.setTimer(ms, fn), defer: (fn, batch) => base.defer(fn, batch) }
      : base;
    this.random = opts.random ?? (opts.seed !== undefined ? seededRandom(opts.seed) : realRandom);
    this.log = opts.log ?? logger({ component: 'cell', cell: this.path, replica: this.replicaId });
    this.ledger = new Ledger({
      retention: this.settings.retention,
      defaultMaxAttempts: this.settings.maxAttempts,
      flow: { spec: topology.flow, defaultTimeoutMs: this.settings.taskTimeoutMs },
    });
    this.ledgerLog = opts.replicatedLog ? opts.replicatedLog(this.ledger) : new SoleLeader(this.ledger, this.replicaId);
    // Home tasks are bounded at submit (queueCapacity); the queue itself also
    // holds requeues and forwarded items, which must never be refused.
    this.forecasts = new CellForecasts(
      this.settings.forecast,
      this.settings.summaryIntervalMs,
      this.scheduler.now(),
      (kind) => childForecasts(this.children, kind),
      () => this.summaries.load(this.scheduler.now()),
    );
    this.queue = new TaskQueue<WorkItem>({
      capacity: this.settings.queueCapacity + this.settings.forwardBuffer + 1024,
      onPush: (item, at) => this.forecasts.arrived(item.kind, at),
      ...this.ledger.flow.fairness, // DRR by tenant, or key with a share; runtime weights in the root's ledger
    });
    this.routes = new RouteTable(this.queue);
    // Made before the modules that count into it; it reads the rest of the cell only later (at scrape time).
    this.meter = opts.meter ? opts.meter(this) : NO_METER;
    this.tracer = opts.tracer ? opts.tracer(this) : NO_TRACER;
    this.timers = new CellTimers(
      this.scheduler,
      this.settings.tickMs,
      (e, at) =>
        e.type === 'route'
          ? this.relay.fire(e)
          : e.type === 'resend'
            ? this.home.refusals.wait.fire(e)
            : this.home.fire(e, at),
      (at) => this.sweep(at),
    );
    const wake = (): void => this.dispatcher.schedule();
    const ctx = {
      path: this.path,
      settings: this.settings,
      log: this.log,
      scheduler: this.scheduler,
      tracer: this.tracer,
    };
    this.home = new Home({
      ...ctx,
      random: this.random,
      ledger: this.ledger,
      ledgerLog: this.ledgerLog,
      queue: this.queue,
      routes: this.routes,
      timers: this.timers,
      wake,
      stopAttempt: (item, why) => this.relay.cancelRoute(item, why),
      leaderHint: () => this.leaderHint(),
      leading: () => this.leadingTerm !== undefined,
    });
    this.relay = new Relay({
      ...ctx,
      routes: this.routes,
      timers: this.timers,
      links: this.links,
      home: this.home,
      meter: this.meter,
      wake,
      outcomes: {
        result: (via, r, kind) => {
          this.dispatcher.breakers.result(via, r);
          if (via.type === 'agent' && r.runMicros > 0)
            this.forecasts.served(kind, r.runMicros / 1000, this.scheduler.now());
        },
        lost: (via) => this.dispatcher.breakers.lost(via),
        handedBack: (via) => this.dispatcher.breakers.handedBack(via),
      },
    });
    this.preemptor = new Preemptor({
      path: this.path,
      spec: topology.preemption ?? PREEMPTION_DEFAULTS,
      log: this.log,
      queue: this.queue,
      agents: () => this.agents,
      children: () => this.children,
      placeNow: (id, candidate, why) => this.dispatcher.placeNow(id, candidate, why),
      deliver: (r, key) => this.relay.deliverResult(r, key),
    });
    this.dispatcher = new Dispatcher({
      path: this.path,
      parent: spec.parent,
      policy: createPolicy(spec.policy, spec.policyConfig, { random: this.random }),
      scheduler: this.scheduler,
      queue: this.queue,
      routes: this.routes,
      links: this.links,
      home: this.home,
      relay: this.relay,
      stats: this.stats,
      unplaceableTimeoutMs: this.settings.unplaceableTimeoutMs,
      tracer: this.tracer,
      breaker: spec.breaker ?? BREAKER_DEFAULTS,
      preemptor: this.preemptor,
    });
    this.summaries = new Summarizer(this);
    // The one replica of an unreplicated cell leads from the start (its ledger starts empty).
    if (this.ledgerLog instanceof SoleLeader) this.leadingTerm = 0;
  }

  /** Attach the links and agent sessions (once, before start). */
  attach(parts: { agents?: AgentSessions; children?: ChildLinks; parent?: ParentLink }): void {
    this.agents = this.links.agents = parts.agents;
    this.children = this.links.children = parts.children;
    this.parent = this.links.parent = parts.parent;
  }

  /** The circuit breakers of this cell's targets (agents or children). */
  get breakers(): BreakerGate {
    return this.dispatcher.breakers;
  }

  get labels(): CellSpec['labels'] {
    return this.spec.labels;
  }

  /** Refusing forwarded work and reporting no free slots (a drain order, or shutting down). */
  get draining(): boolean {
    return this.relay.draining;
  }

  set draining(drain: boolean) {
    this.relay.draining = drain;
  }

  get leading(): boolean {
    return this.leadingTerm !== undefined;
  }

  /** Who leads this cell, as far as this replica knows (for redirects and forwarding). */
  leaderHint(): { leading: boolean; leader: string; leaderAddress: string } {
    const l = this.ledgerLog.leader();
    return { leading: this.leading, leader: l?.id ?? '', leaderAddress: l?.address ?? '' };
  }

  start(): void {
    // The operator's drain, policy and cordons, from the log (after attach: cordons reach the agent sessions).
    followCellConfig(this);
    this.timers.start();
    if (this.ledgerLog instanceof SoleLeader) {
      this.parent?.start();
      return;
    }
    this.unsubscribe.push(
      this.ledgerLog.onLeading((term) => this.lead(term)),
      this.ledgerLog.onLeaderChange((ev) => {
        if (!ev.self && this.leading) this.stepDown(ev.leader);
      }),
    );
    // Leading already (a one-replica group elects itself before start()): confirm, then lead.
    if (this.ledgerLog.isLeader()) {
      void this.ledgerLog.readIndex().then(
        () => {
          const term = this.ledgerLog.replication()?.term ?? 0;
          if (this.ledgerLog.isLeader() && !this.leading) this.lead(term);
        },
        () => undefined,
      );
    }
  }

  close(): void {
    for (const u of this.unsubscribe.splice(0)) u();
    this.leadingTerm = undefined;
    this.timers.close();
    this.meter.close();
  }

  /** This replica now decides for the cell: rebuild the queue and leases from the ledger, link up. */
  private lead(term: number): void {
    if (this.leadingTerm === term) return;
    this.leadingTerm = term;
    this.home.leadTerm(term);
    const resumed = this.home.recovery.resume();
    if (!(this.ledgerLog instanceof SoleLeader)) this.log.info({ term, ...resumed }, 'leading the cell');
    this.parent?.start();
    this.dispatcher.invalidate();
  }

  /** Another replica leads now: drop everything only a leader holds; links and agents go to the new leader. */
  private stepDown(leader: string): void {
    this.log.warn({ leader, term: this.leadingTerm }, 'no longer leading the cell');
    this.leadingTerm = undefined;
    this.parent?.stop();
    this.children?.closeAll();
    this.agents?.closeAll();
    this.home.recovery.suspend();
    this.relay.clear();
    this.home.checkpoints.clear();
  }

  /** Fire due timers and run the sweeps now (the timer does this by itself; tests call it). */
  tick(): void {
    this.timers.tick();
  }

  /** Every tick, after the due wheel entries: links and agents run their sweeps, queued deadlines expire. */
  private sweep(now: number): void {
    const { agents, parent, children } = this.links;
    agents?.sweep(now);
    parent?.tick(now);
    children?.tick(now);
    this.preemptor.sweep(now);
    this.dispatcher.sweep(now);
    this.forecasts.tick(now);
    this.home.sweepPermits(now);
    for (const item of this.queue.expire(now)) {
      if (item.origin.type === 'home') this.home.expiredQueued(item);
      else this.relay.expiredQueued(item);
    }
  }

  submit(specs: readonly TaskSpec[]): Promise<SubmitOutcome[]> {
    return this.home.submit(specs);
  }

  cancel(id: string, reason: string): Promise<TaskRecord> {
    return this.home.cancel(id, reason);
  }

  /** Attempts sent on from here (summaries and admin). */
  inFlight(): number {
    return this.routes.inFlight();
  }

  // ------------------------------------------------------------- CellPort

  acceptForwarded(tasks: readonly Dispatch[], origin: Origin): DispatchAck[] {
    return this.relay.acceptForwarded(tasks, origin);
  }

  deliverResult(r: TaskResult, key?: string): void {
    // A preempted attempt's answer: its slot goes to the preempting task, the attempt home as preempted.
    if (key !== undefined && this.preemptor.isVictim(key)) r = this.preemptor.answered(key, r);
    this.relay.deliverResult(r, key);
  }

  deliverResults(results: readonly TaskResult[], from?: Via): void {
    this.relay.deliverResults(results, from);
  }

  deliverCheckpoint(cp: TaskCheckpoint): void {
    this.relay.deliverCheckpoint(cp);
  }

  nacked(key: string, reason: string, send = 0): void {
    this.relay.nacked(key, reason, send);
  }

  queuedOfKind(kind: string): number {
    return this.queue.sizeOfKind(kind);
  }

  giveBack(kind: string, max: number): GivenRef[] {
    return this.dispatcher.giveBack(kind, max);
  }

  bounce(item: WorkItem, why: string): void {
    this.relay.bounce(item, why);
  }

  cancelRefs(refs: readonly TaskRef[], why: string): void {
    this.relay.cancelRefs(refs, why);
  }

  agentLost(agentId: string, why: string): number {
    return this.relay.agentLost(agentId, why);
  }

  childLost(child: string): void {
    this.relay.childLost(child);
  }

  parentLost(): void {
    this.relay.parentLost();
  }

  candidatesChanged(): void {
    this.dispatcher.invalidate();
  }

  readonly agentChanged = (agentId: string): void => this.dispatcher.changed(agentId);

  slotFreed(candidate: string, kind: string, slots = 1): void {
    this.dispatcher.release(candidate, kind, slots);
  }

  capacityChanged(): void {
    this.links.parent?.capacityChanged();
  }

  heldFromParent(max: number): TaskRef[] {
    return this.relay.heldFromParent(max);
  }

  childHolds(child: string, refs: readonly TaskRef[]): void {
    this.relay.childHolds(child, refs);
  }

  setDraining(drain: boolean): void {
    this.relay.draining = drain;
    this.capacityChanged();
  }
}
