// One replica of one cell: the home ledger, the queue, the route table and the
// timers; links to the parent and children and (node tier) agent sessions are
// its siblings (parent-link.ts, child-links.ts, agent-sessions.ts), routing is
// dispatcher.ts. Everything here runs on the event loop with no awaits on the
// hot path except the ledger log's commit.
//
// Invariants:
// - `routes` holds every attempt this cell holds that did not come from its
//   own ledger's queue: queued here (via undefined) or sent on (via set), and
//   every home attempt sent on. A result is forwarded along its route's origin
//   exactly once; the route is deleted when it is.
// - Only the ledger decides a task's outcome; a result without a route still
//   reaches the ledger when this cell is the task's home (it fences stale ones).
// - Every queue and map is bounded: the queue by capacity, routes by the queue
//   bound plus credits plus route expiry, the ledger by retention.
import {
  Durability,
  ResultStatus,
  TaskState,
  type Dispatch,
  type TaskRef,
  type TaskResult,
  type TaskSpec,
} from '../gen/meshlb/v1/task.js';
import type { DispatchAck } from '../gen/meshlb/v1/link.js';
import { TaskQueue } from '../queue/index.js';
import type { CellSpec, Topology, Tier } from '../topology/types.js';
import { MeshError, notFound, resourceExhausted } from '../util/errors.js';
import { logger, type Logger } from '../util/log.js';
import { seededRandom } from '../policies/index.js';
import type { BatcherOptions } from './batcher.js';
import { DEFAULT_BATCHER_OPTIONS } from './batcher.js';
import { Dispatcher } from './dispatcher.js';
import {
  isLogged,
  isTerminal,
  Ledger,
  LocalLedgerLog,
  type AcceptedTask,
  type ApplyResult,
  type LedgerCommand,
  type LedgerLog,
  type TaskRecord,
} from './ledger.js';
import {
  LOST_PREFIX,
  pbPriorityName,
  REQUEUE_PREFIX,
  routeKey,
  type CellOptions,
  type Origin,
  type Via,
  type WorkItem,
} from './types.js';
import { TimerWheel } from './wheel.js';
import type { AgentSessions } from './agent-sessions.js';
import type { ChildLinks } from './child-links.js';
import type { ParentLink } from './parent-link.js';

type WheelEntry =
  | { t: 'lease'; id: string; attempt: number }
  | { t: 'retry'; id: string; attempt: number }
  | { t: 'deadline'; id: string }
  | { t: 'route'; key: string; stamp: number };

/** An idle cell's timer fires at least this often (sweeps, periodic summaries, reconnects, queued deadlines). */
export const IDLE_TICK_MS = 50;
/** Granularity of the wheel for leases and route expiries. */
export const SLOW_TICK_MS = 50;

export interface SubmitOutcome {
  readonly id: string;
  readonly existing: boolean;
  readonly state: TaskState;
}

/** Resolved settings of a cell (topology defaults, then options). */
export interface CellSettings {
  readonly heartbeatIntervalMs: number;
  readonly heartbeatTimeoutMs: number;
  readonly maxPayloadBytes: number;
  readonly maxMessageBytes: number;
  readonly queueCapacity: number;
  readonly forwardBuffer: number;
  readonly taskTimeoutMs: number;
  readonly maxAttempts: number;
  readonly summaryIntervalMs: number;
  readonly linkTimeoutMs: number;
  readonly leaseSlackMs: number;
  readonly backoffBaseMs: number;
  readonly backoffMaxMs: number;
  readonly tickMs: number;
  readonly retention: number;
  readonly maxAgentSlots: number;
  readonly prefetchRatio: number;
  readonly batcher: BatcherOptions;
}

export class Cell {
  readonly path: string;
  readonly tier: Tier;
  readonly replicaId: string;
  readonly settings: CellSettings;
  readonly now: () => number;
  readonly random: () => number;
  readonly log: Logger;
  readonly ledger: Ledger;
  readonly ledgerLog: LedgerLog;
  readonly queue: TaskQueue<WorkItem>;
  /** Attempts held here (see the invariants above), by routeKey. */
  readonly routes = new Map<string, WorkItem>();
  readonly dispatcher: Dispatcher;
  children: ChildLinks | undefined;
  parent: ParentLink | undefined;
  agents: AgentSessions | undefined;
  /** Non-home items queued here (bounded by forwardBuffer). */
  forwardQueued = 0;
  draining = false;
  /** Retries and deadlines, at tickMs. */
  private readonly wheel: TimerWheel<WheelEntry>;
  /** Leases and route expiries (seconds away; a few tens of ms late is fine), at SLOW_TICK_MS. */
  private readonly slowWheel: TimerWheel<WheelEntry>;
  /** When the armed timer fires (ms on `now`'s clock). */
  private armedFor = Infinity;
  private timer: NodeJS.Timeout | undefined;
  private idSeq = 0;
  private readonly idPrefix: string;
  readonly stats = { resultsForwarded: 0, staleResults: 0, nacks: 0, spilled: 0, dispatched: 0, creditStalls: 0 };

  constructor(
    readonly topology: Topology,
    readonly spec: CellSpec,
    readonly replica: number,
    readonly opts: CellOptions = {},
  ) {
    this.path = spec.path;
    this.tier = spec.tier;
    this.replicaId = spec.replicas.find((r) => r.replica === replica)?.id ?? `${spec.path}#${replica}`;
    const d = topology.defaults;
    this.settings = {
      heartbeatIntervalMs: opts.heartbeatIntervalMs ?? d.heartbeatIntervalMs,
      heartbeatTimeoutMs: opts.heartbeatTimeoutMs ?? d.heartbeatTimeoutMs,
      maxPayloadBytes: opts.maxPayloadBytes ?? d.maxPayloadBytes,
      maxMessageBytes: d.maxMessageBytes,
      queueCapacity: opts.queueCapacity ?? d.queueCapacity,
      forwardBuffer: opts.forwardBuffer ?? 4096,
      taskTimeoutMs: opts.taskTimeoutMs ?? d.taskTimeoutMs,
      maxAttempts: opts.maxAttempts ?? d.maxAttempts,
      summaryIntervalMs: opts.summaryIntervalMs ?? d.summaryIntervalMs,
      linkTimeoutMs: opts.linkTimeoutMs ?? d.linkTimeoutMs ?? 2000,
      leaseSlackMs: opts.leaseSlackMs ?? 2000,
      backoffBaseMs: opts.backoffBaseMs ?? 50,
      backoffMaxMs: opts.backoffMaxMs ?? 5000,
      tickMs: opts.tickMs ?? 10,
      retention: opts.retention ?? 100_000,
      maxAgentSlots: opts.maxAgentSlots ?? 10_000,
      prefetchRatio: opts.prefetchRatio ?? 0.5,
      batcher: { ...DEFAULT_BATCHER_OPTIONS, ...opts.batcher },
    };
    this.now = opts.now ?? Date.now;
    this.random = opts.random ?? (opts.seed !== undefined ? seededRandom(opts.seed) : Math.random);
    this.log = opts.log ?? logger({ component: 'cell', cell: this.path, replica: this.replicaId });
    this.ledger = new Ledger({ retention: this.settings.retention, defaultMaxAttempts: this.settings.maxAttempts });
    this.ledgerLog = new LocalLedgerLog(this.ledger);
    // Home tasks are bounded at submit (queueCapacity); the queue itself also
    // holds requeues and forwarded items, which must never be refused.
    this.queue = new TaskQueue<WorkItem>({
      capacity: this.settings.queueCapacity + this.settings.forwardBuffer + 1024,
    });
    this.wheel = new TimerWheel(this.settings.tickMs, this.now());
    this.slowWheel = new TimerWheel(Math.max(this.settings.tickMs, SLOW_TICK_MS), this.now());
    this.dispatcher = new Dispatcher(this);
    this.idPrefix = Math.floor(this.random() * 36 ** 6)
      .toString(36)
      .padStart(6, '0');
  }

  get hasParent(): boolean {
    return this.spec.parent !== '';
  }

  start(): void {
    this.arm(this.now());
  }

  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.armedFor = Infinity;
    this.closed = true;
    this.wheel.clear();
    this.slowWheel.clear();
  }

  private closed = false;

  /**
   * Arm the timer for the next tick: the next entry due on either wheel, and
   * at least every IDLE_TICK_MS for the sweeps (heartbeats, periodic summaries,
   * reconnects, queued deadlines). An idle cell so wakes ~20 times a second,
   * not 100 (each wakeup of an idle process costs 100-250 µs of CPU on a
   * loaded VM, mostly outside JavaScript).
   */
  private arm(now: number): void {
    if (this.closed) return;
    let at = now + IDLE_TICK_MS;
    const fine = this.wheel.nextDue(now, IDLE_TICK_MS);
    if (fine !== undefined && fine < at) at = fine;
    const slow = this.slowWheel.nextDue(now, IDLE_TICK_MS);
    if (slow !== undefined && slow < at) at = slow;
    this.setTimer(now, at);
  }

  private setTimer(now: number, at: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.armedFor = at;
    // Real milliseconds, clamped: an injected clock (tests) still ticks at least every IDLE_TICK_MS.
    const delay = Math.min(IDLE_TICK_MS, Math.max(this.settings.tickMs, at - now));
    this.timer = setTimeout(this.onTimer, delay);
    this.timer.unref?.();
  }

  private readonly onTimer = (): void => {
    this.timer = undefined;
    this.armedFor = Infinity;
    this.tick();
    this.arm(this.now());
  };

  /** Schedule a timer-wheel entry; wakes the timer earlier if it sleeps past it. */
  private schedule(dueMs: number, e: WheelEntry): void {
    if (e.t === 'lease' || e.t === 'route') this.slowWheel.add(dueMs, e);
    else this.wheel.add(dueMs, e);
    if (dueMs < this.armedFor && this.timer !== undefined) this.setTimer(this.now(), dueMs);
  }

  /** Periodic: fire due timers; links and agents run their own sweeps from here. */
  tick(): void {
    const now = this.now();
    this.wheel.advance(now, (e) => this.fire(e, now));
    this.slowWheel.advance(now, (e) => this.fire(e, now));
    this.agents?.sweep(now);
    this.parent?.tick(now);
    this.children?.tick(now);
    for (const item of this.queue.expire(now)) this.expired(item);
  }

  // ---------------------------------------------------------------- submit

  /** Validate and accept specs at this (home) cell. Throws MeshError for the batch as a whole. */
  async submit(specs: readonly TaskSpec[]): Promise<SubmitOutcome[]> {
    if (!this.ledgerLog.isLeader()) throw new MeshError(14, 'not the leader');
    const now = this.now();
    const fresh: AcceptedTask[] = [];
    const out: (SubmitOutcome | number)[] = [];
    let newCount = 0;
    for (const spec of specs) {
      const known = spec.idempotencyKey ? this.ledger.idForKey(spec.idempotencyKey) : undefined;
      if (known !== undefined) {
        out.push({ id: known, existing: true, state: this.ledger.get(known)!.state });
        continue;
      }
      newCount++;
      out.push(fresh.length);
      fresh.push({ id: this.nextId(), spec, homeCell: this.path, atMs: now });
    }
    if (newCount > 0 && this.ledger.liveCount + newCount > this.settings.queueCapacity) {
      throw resourceExhausted(
        `cell ${this.path} is saturated (${this.ledger.liveCount} live tasks, capacity ${this.settings.queueCapacity})`,
        this.retryHintMs(),
      );
    }
    // Answers by position in `fresh` (apply answers each command's tasks in order).
    const res: ApplyResult[] = new Array(fresh.length);
    const none: AcceptedTask[] = [];
    const noneAt: number[] = [];
    let logged: AcceptedTask[] | undefined;
    let loggedAt: number[] | undefined;
    for (let i = 0; i < fresh.length; i++) {
      const f = fresh[i]!;
      if (isLogged(f.spec)) {
        (logged ??= []).push(f);
        (loggedAt ??= []).push(i);
      } else {
        none.push(f);
        noneAt.push(i);
      }
    }
    if (none.length > 0) {
      const rs = this.ledger.apply({ type: 'accepted', tasks: none });
      for (let j = 0; j < rs.length; j++) res[noneAt[j]!] = rs[j]!;
    }
    if (logged !== undefined) {
      const [rs] = await this.ledgerLog.propose([{ type: 'accepted', tasks: logged }]);
      for (let j = 0; j < rs!.length; j++) res[loggedAt![j]!] = rs![j]!;
    }
    const outcomes: SubmitOutcome[] = [];
    for (const o of out) {
      if (typeof o !== 'number') {
        outcomes.push(o);
        continue;
      }
      const f = fresh[o]!;
      // Two specs with one key in one batch: apply answers the second with the first's id (existing).
      const r = res[o];
      if (!r || !r.ok) throw new MeshError(13, `accept failed for ${f.id}`);
      if (r.id !== f.id || r.existing) {
        outcomes.push({ id: r.id, existing: true, state: r.state });
        continue;
      }
      outcomes.push({ id: f.id, existing: false, state: r.state });
      const rec = this.ledger.get(f.id)!;
      if (rec.spec.deadlineUnixMs > 0) this.schedule(rec.spec.deadlineUnixMs, { t: 'deadline', id: rec.id });
      this.enqueueHome(rec);
    }
    this.dispatcher.schedule();
    return outcomes;
  }

  private nextId(): string {
    return `${this.idPrefix}${(++this.idSeq).toString(36).padStart(6, '0')}`;
  }

  retryHintMs(): number {
    return Math.min(5000, 100 + Math.floor(this.random() * 100));
  }

  /** Queue the next attempt of a home task. */
  enqueueHome(rec: TaskRecord): void {
    const item = this.makeItem(rec.id, 0, rec.homeCell, rec.spec, { t: 'home' }, undefined, `${rec.id}#next`);
    const r = this.queue.push(item, this.now());
    if (!r.ok && r.reason === 'expired') this.deadLetter(rec.id, 'deadline passed before dispatch');
    else if (!r.ok) this.queue.requeue(item, this.now());
    this.dispatcher.schedule();
  }

  makeItem(
    taskId: string,
    attempt: number,
    homeCell: string,
    spec: TaskSpec,
    origin: Origin,
    exclude: string | undefined,
    id = routeKey(taskId, attempt),
    leaseMs = 0,
    wire: Dispatch | undefined = undefined,
  ): WorkItem {
    // One object shape for every item (no conditional spread): monomorphic access on the hot path.
    return {
      id,
      kind: spec.kind,
      priority: pbPriorityName(spec.priority),
      tenant: spec.tenant,
      deadline: spec.deadlineUnixMs > 0 ? spec.deadlineUnixMs : undefined,
      taskId,
      attempt,
      key: attempt > 0 ? id : '',
      wire,
      homeCell,
      spec,
      leaseMs: leaseMs || (spec.timeoutMs || this.settings.taskTimeoutMs) + this.settings.leaseSlackMs,
      origin,
      exclude,
      via: undefined,
      sentMs: this.now(),
    };
  }

  // -------------------------------------------------------- from elsewhere

  /** Dispatches from the parent (down) or spill-ups from a child (up): queue them, answer acks. */
  acceptForwarded(tasks: readonly Dispatch[], origin: Origin): DispatchAck[] {
    const acks: DispatchAck[] = [];
    const now = this.now();
    for (const d of tasks) {
      const reason = this.checkForwarded(d);
      if (reason) {
        acks.push({ taskId: d.taskId, attempt: d.attempt, accepted: false, reason });
        this.stats.nacks++;
        continue;
      }
      const exclude = origin.t === 'child' ? origin.cell : undefined;
      const item = this.makeItem(
        d.taskId,
        d.attempt,
        d.homeCell,
        d.spec!,
        origin,
        exclude,
        undefined,
        d.leaseMs,
        d.leaseMs > 0 ? d : undefined,
      );
      const key = item.id;
      if (this.routes.has(key)) {
        // A duplicate of an attempt we hold: accept (idempotent), keep the first.
        acks.push({ taskId: d.taskId, attempt: d.attempt, accepted: true, reason: '' });
        continue;
      }
      const r = this.queue.push(item, now);
      if (!r.ok) {
        acks.push({ taskId: d.taskId, attempt: d.attempt, accepted: false, reason: `queue ${r.reason}` });
        this.stats.nacks++;
        continue;
      }
      this.forwardQueued++;
      this.routes.set(key, item);
      this.schedule(now + item.leaseMs + this.settings.leaseSlackMs, { t: 'route', key, stamp: item.sentMs });
      acks.push({ taskId: d.taskId, attempt: d.attempt, accepted: true, reason: '' });
    }
    this.dispatcher.schedule();
    return acks;
  }

  private checkForwarded(d: Dispatch): string {
    if (!d.taskId || d.attempt < 1 || !d.spec || !d.spec.kind || !d.homeCell) return 'malformed dispatch';
    if (d.spec.payload.length > this.settings.maxPayloadBytes) return 'payload too large';
    if (this.draining) return 'draining';
    if (this.forwardQueued >= this.settings.forwardBuffer) return 'buffer full';
    return '';
  }

  /** A dispatched attempt was refused downstream: hold it again here. */
  nacked(key: string, reason: string): void {
    const item = this.routes.get(key);
    if (!item || item.via === undefined) return;
    this.stats.nacks++;
    this.log.debug({ key, reason }, 'dispatch refused downstream; requeued');
    item.via = undefined;
    if (item.origin.t !== 'home') this.forwardQueued++;
    this.queue.requeue(item, this.now());
    this.dispatcher.schedule();
  }

  /** Results from an agent, a child, or the parent (for tasks we spilled up). */
  deliverResults(results: readonly TaskResult[]): void {
    for (const r of results) this.deliverResult(r);
  }

  /** `key` is routeKey(r.taskId, r.attempt) when the caller already has it. */
  deliverResult(r: TaskResult, key = routeKey(r.taskId, r.attempt)): void {
    const item = this.routes.get(key);
    if (item === undefined) {
      if (this.ledger.get(r.taskId)) this.homeResult(r);
      else this.stats.staleResults++;
      return;
    }
    this.routes.delete(key);
    if (item.via === undefined) {
      // Still queued here (a result from a stale path): take it out of the queue.
      if (this.queue.remove(item.id) && item.origin.t !== 'home') this.forwardQueued--;
    }
    this.sendBack(item.origin, r);
  }

  private sendBack(origin: Origin, r: TaskResult): void {
    this.stats.resultsForwarded++;
    switch (origin.t) {
      case 'home':
        this.homeResult(r);
        return;
      case 'parent':
        this.parent?.sendResult(r);
        return;
      case 'child':
        this.children?.sendResult(origin.cell, r);
        return;
    }
  }

  /** Cancels from the parent (down) or a child (for tasks it spilled up). */
  cancelRefs(refs: readonly TaskRef[], why: string): void {
    for (const ref of refs) {
      const key = routeKey(ref.taskId, ref.attempt);
      const item = this.routes.get(key);
      if (item) this.cancelRoute(key, item, why);
    }
  }

  /** Drop an attempt held here and pass the cancel on toward where it went. */
  cancelRoute(key: string, item: WorkItem, why: string): void {
    this.routes.delete(key);
    const ref = { taskId: item.taskId, attempt: item.attempt };
    const via = item.via;
    if (via === undefined) {
      if (this.queue.remove(item.id) && item.origin.t !== 'home') this.forwardQueued--;
      return;
    }
    if (via.t === 'child') this.children?.sendCancel(via.cell, ref);
    else if (via.t === 'parent') this.parent?.sendCancel(ref);
    else this.agents?.cancel(via.agentId, ref, why);
  }

  /**
   * Attempts sent to a place that is gone (agent, child link, parent link):
   * each fails back toward its origin with a `lost:` result, so its home
   * retries it at once elsewhere.
   */
  viaLost(match: (via: Via) => boolean, why: string): number {
    const lost: WorkItem[] = [];
    for (const item of this.routes.values()) if (item.via !== undefined && match(item.via)) lost.push(item);
    for (const item of lost) this.failBack(item, LOST_PREFIX + why);
    if (lost.length > 0) this.dispatcher.schedule();
    return lost.length;
  }

  /** An attempt that could not be handed on after all: back to its origin, not counted. */
  bounce(item: WorkItem, why: string): void {
    this.failBack(item, REQUEUE_PREFIX + why);
  }

  /** Forget the attempt here and send its origin an error result carrying `error` (lost: or requeue:). */
  private failBack(item: WorkItem, error: string): void {
    this.routes.delete(item.key);
    this.sendBack(item.origin, {
      taskId: item.taskId,
      attempt: item.attempt,
      status: ResultStatus.RESULT_STATUS_ERROR,
      output: Buffer.alloc(0),
      error,
      agentId: '',
      nodeCell: this.path,
      runMicros: 0,
    });
  }

  /** The parent link broke: attempts it gave us are failed there already; drop them here. */
  parentLost(): void {
    const drop: [string, WorkItem][] = [];
    for (const e of this.routes) if (e[1].origin.t === 'parent') drop.push(e);
    for (const [key, item] of drop) this.cancelRoute(key, item, 'parent link lost');
    this.viaLost((v) => v.t === 'parent', `parent of ${this.path} unreachable`);
  }

  // ----------------------------------------------------------- home ledger

  /** Commit one command: logged tasks through the log, NONE straight to the state machine. */
  commit(cmd: LedgerCommand, logged: boolean, then?: (r: ApplyResult[]) => void): void {
    if (!logged) {
      const r = this.ledger.apply(cmd);
      then?.(r);
      return;
    }
    this.ledgerLog.propose([cmd]).then(
      (rs) => then?.(rs[0]!),
      (err: unknown) => this.log.error({ err }, 'ledger commit failed'),
    );
  }

  private homeResult(r: TaskResult): void {
    const rec = this.ledger.get(r.taskId);
    if (!rec) return;
    if (isTerminal(rec.state) || rec.attempt !== r.attempt) {
      this.stats.staleResults++;
      return;
    }
    const atMs = this.now();
    const logged = isLogged(rec.spec);
    if (r.status === ResultStatus.RESULT_STATUS_OK) {
      this.commit({ type: 'completed', result: r, atMs }, logged);
      return;
    }
    const requeue = r.error.startsWith(REQUEUE_PREFIX);
    const lost = r.error.startsWith(LOST_PREFIX);
    this.commit(
      {
        type: 'attemptFailed',
        id: r.taskId,
        attempt: r.attempt,
        reason: r.error || 'failed',
        result: r,
        counted: !requeue,
        fatal: r.status === ResultStatus.RESULT_STATUS_FATAL,
        lapse: lost,
        atMs,
      },
      logged,
      (res) => this.afterFailure(res[0]!, lost),
    );
  }

  private afterFailure(res: ApplyResult, immediate: boolean): void {
    if (!res.ok || res.state !== TaskState.TASK_STATE_QUEUED) return;
    const rec = this.ledger.get(res.id)!;
    if (immediate) {
      this.enqueueHome(rec);
      return;
    }
    const n = Math.max(1, rec.failures);
    const cap = Math.min(this.settings.backoffMaxMs, this.settings.backoffBaseMs * 2 ** Math.min(20, n - 1));
    const delay = cap / 2 + this.random() * (cap / 2);
    this.schedule(this.now() + delay, { t: 'retry', id: rec.id, attempt: rec.attempt });
  }

  /** Home dispatch committed: start the lease. */
  leased(item: WorkItem): void {
    this.schedule(this.now() + item.leaseMs, { t: 'lease', id: item.taskId, attempt: item.attempt });
  }

  /** A route stamp for non-home attempts sent on, so forgotten routes expire. */
  routed(item: WorkItem): void {
    if (item.origin.t !== 'home') {
      this.schedule(this.now() + item.leaseMs + this.settings.leaseSlackMs, {
        t: 'route',
        key: item.key,
        stamp: item.sentMs,
      });
    }
  }

  cancel(id: string, reason: string): Promise<TaskRecord> {
    const rec = this.ledger.get(id);
    if (!rec) return Promise.reject(notFound(`task ${id} not found at cell ${this.path}`));
    if (isTerminal(rec.state)) return Promise.resolve(rec);
    return new Promise((resolve) => {
      this.commit(
        { type: 'cancelled', id, reason: reason || 'cancelled by client', atMs: this.now() },
        isLogged(rec.spec),
        () => {
          this.dropAttempt(rec, 'cancelled');
          resolve(rec);
        },
      );
    });
  }

  deadLetter(id: string, reason: string): void {
    const rec = this.ledger.get(id);
    if (!rec || isTerminal(rec.state)) return;
    this.commit({ type: 'deadLettered', id, reason, atMs: this.now() }, isLogged(rec.spec), () =>
      this.dropAttempt(rec, reason),
    );
  }

  /** The task ended or its attempt lapsed: stop the attempt wherever it is. */
  private dropAttempt(rec: TaskRecord, why: string): void {
    const queuedId = `${rec.id}#next`;
    this.queue.remove(queuedId);
    if (rec.attempt > 0) {
      const key = routeKey(rec.id, rec.attempt);
      const item = this.routes.get(key);
      if (item) this.cancelRoute(key, item, why);
    }
  }

  private fire(e: WheelEntry, now: number): void {
    switch (e.t) {
      case 'lease': {
        const rec = this.ledger.get(e.id);
        if (!rec || isTerminal(rec.state) || rec.attempt !== e.attempt || rec.state === TaskState.TASK_STATE_QUEUED)
          return;
        this.dropAttempt(rec, 'lease lapsed');
        this.commit(
          {
            type: 'attemptFailed',
            id: e.id,
            attempt: e.attempt,
            reason: LOST_PREFIX + 'lease lapsed',
            counted: true,
            lapse: true,
            atMs: now,
          },
          isLogged(rec.spec),
          (res) => this.afterFailure(res[0]!, false),
        );
        return;
      }
      case 'retry': {
        const rec = this.ledger.get(e.id);
        if (rec && rec.state === TaskState.TASK_STATE_QUEUED && rec.attempt === e.attempt) this.enqueueHome(rec);
        return;
      }
      case 'deadline':
        this.deadLetter(e.id, 'deadline passed');
        return;
      case 'route': {
        const item = this.routes.get(e.key);
        if (item && item.sentMs === e.stamp) this.cancelRoute(e.key, item, 'route expired');
        return;
      }
    }
  }

  private expired(item: WorkItem): void {
    if (item.origin.t === 'home') this.deadLetter(item.taskId, 'deadline passed while queued');
    else {
      this.forwardQueued--;
      this.routes.delete(item.id);
    }
  }

  /** Counts for summaries and admin. */
  inFlight(): number {
    let n = 0;
    for (const item of this.routes.values()) if (item.via !== undefined) n++;
    return n;
  }
}

export const DURABILITY_NONE = Durability.DURABILITY_NONE;
