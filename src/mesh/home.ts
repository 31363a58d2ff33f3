// The home of tasks: what a cell decides once about the tasks submitted to it
// — accept (submit, in home-submit.ts), start an attempt, record a result,
// retry after a failure or a lapsed lease, cancel, dead-letter. Every decision is a
// LedgerCommand committed through the LedgerLog (logged tasks) or applied at
// once (durability NONE); the ledger fences stale attempts, this module only
// proposes and then acts on what was committed: queue the next attempt, arm
// its lease or backoff, stop an attempt that ended.
//
// Invariants:
// - a home task waits in the queue (as `taskId#next`) only while its ledger
//   state is QUEUED; its attempt number comes from the ledger when it leaves
//   the cell (startAttempts, or its `accepted` entry: start-at-accept.ts);
// - every attempt sent on holds a lease entry on the timers; a lease that
//   fires for an attempt that is still current fails it as lost;
// - only committed commands move a task: results, failures and cancels for an
//   attempt that is not current change nothing (the ledger answers `stale`).
import { MeshFailure, ResultStatus, TaskState, type TaskResult, type TaskSpec } from '../gen/meshlb/v1/task.js';
import { permitRef, rateLimitedFor } from '../flow/flow-state.js';
import { FlowGate } from '../flow/gate.js';
import type { TaskQueue } from '../queue/index.js';
import { notFound } from '../util/errors.js';
import { notLeadingError, type LeaderHint } from './port.js';
import type { Logger } from '../util/log.js';
import { clip } from '../util/limits.js';
import { taskLogFields } from '../util/trace-context.js';
import {
  isLogged,
  isTerminal,
  type ApplyResult,
  type Ledger,
  type LedgerCommand,
  type LedgerLog,
  type TaskRecord,
} from './ledger.js';
import { HomeRecovery } from './home-recovery.js';
import { submitTraced, TaskIds, type SubmitOutcome } from './home-submit.js';
import { DebounceHold, withLedgerSpec } from './debounce-hold.js';
import { HomeCheckpoints, resumableOf } from './home-checkpoints.js';
import { HomeRefusals } from './home-refusals.js';
import { dispatchedOf, itemLogged, StartAtAccept, startsDecided, type StartOut } from './start-at-accept.js';
import type { RouteTable } from './routes.js';
import type { CellTracer } from './tracer.js';
import type { Scheduler } from './scheduler.js';
import { leaseFor, retryBackoff, spilledLeaseFor, type CellSettings } from './settings.js';
import type { CellTimers, WheelEntry } from './timers.js';
import { FROM_HOME, makeItem, nextAttemptId, routeKey, TO_PARENT, unplaceableWhy, type WorkItem } from './types.js';

export type { SubmitOutcome } from './home-submit.js';

export interface HomeDeps {
  readonly path: string;
  readonly settings: CellSettings;
  readonly log: Logger;
  readonly scheduler: Scheduler;
  readonly random: () => number;
  readonly ledger: Ledger;
  readonly ledgerLog: LedgerLog;
  readonly queue: TaskQueue<WorkItem>;
  readonly routes: RouteTable;
  readonly timers: CellTimers;
  /** Queued work changed: pump on the next turn. */
  readonly wake: () => void;
  /** Stop an attempt held in the route table wherever it went (a cancel toward it). */
  readonly stopAttempt: (item: WorkItem, why: string) => void;
  /** This replica decides for the cell now (leader, caught up); the hint names the leader otherwise. */
  readonly leaderHint: () => LeaderHint;
  /** The cheap check of the hint's `leading` (on every timer entry and commit). */
  readonly leading: () => boolean;
  readonly tracer: CellTracer;
}

export class Home {
  readonly path: string;
  readonly settings: CellSettings;
  readonly log: Logger;
  readonly scheduler: Scheduler;
  readonly ledger: Ledger;
  readonly d: HomeDeps;
  /** Tasks with a retry armed (QUEUED, deliberately not in the queue yet). */
  readonly retrying = new Set<string>();
  /** Failover and repair: back on track from the ledger (home-recovery.ts). */
  readonly recovery: HomeRecovery;
  /** Ids of the tasks this replica accepts (home-submit.ts). */
  readonly ids: TaskIds;
  /** Home tasks waiting for their concurrency or rate-limit key (src/flow/gate.ts): soft, the leader's. */
  readonly flow: FlowGate<WorkItem>;
  /** Lingering permits whose return is proposed and not yet applied (once each). */
  private readonly returning = new Set<string>();
  /** Debounced tasks kept out of the queue until their window ends (debounce-hold.ts): soft, the leader's. */
  readonly debounce = new DebounceHold(this);
  /** Checkpoints of running attempts on their way to the ledger, coalesced (home-checkpoints.ts). */
  readonly checkpoints: HomeCheckpoints;
  /** New logged tasks placed as they are accepted start in that entry (start-at-accept.ts). */
  readonly atAccept: StartAtAccept = new StartAtAccept(this);
  /** Attempts refused before they started keep their number (home-refusals.ts). */
  readonly refusals: HomeRefusals;

  constructor(deps: HomeDeps) {
    this.d = deps;
    this.path = deps.path;
    this.settings = deps.settings;
    this.log = deps.log;
    this.scheduler = deps.scheduler;
    this.ledger = deps.ledger;
    this.recovery = new HomeRecovery(this);
    this.checkpoints = new HomeCheckpoints(this);
    this.ids = new TaskIds(deps.random);
    this.refusals = new HomeRefusals(deps);
    const { queue, scheduler } = deps;
    this.flow = new FlowGate<WorkItem>(
      deps.ledger.flow,
      {
        requeue: (item, at) => {
          queue.requeue(item, at);
          deps.wake();
        },
        later: (ms, fn) => void scheduler.setTimer(ms, fn),
      },
      () => scheduler.now(),
    );
    // A permit came back or a limit or share changed (applied on every replica): the leader lets waiting tasks go.
    deps.ledger.flow.onFreed((key) => deps.leading() && this.flow.freed(key));
    deps.ledger.flow.shares.onFreed((tenant) => deps.leading() && this.flow.tenants.freed(tenant));
  }

  /** Validate and accept specs at this (home) cell (home-submit.ts). Throws MeshError for the batch as a whole. */
  submit(specs: readonly TaskSpec[]): Promise<SubmitOutcome[]> {
    return submitTraced(this, this.ids, specs, this.d.tracer);
  }

  /** Throws FAILED_PRECONDITION with the leader hint on a follower, UNAVAILABLE while no leader is ready. */
  mustLead(): void {
    if (this.d.leading()) return;
    throw notLeadingError(this.path, this.d.leaderHint());
  }

  /** This replica leads `term` (0: an unreplicated cell): task ids name it (TaskIds.leadTerm). */
  leadTerm(term: number): void {
    this.ids.leadTerm(term);
  }

  /** A retry hint for saturated answers: 100-200 ms, jittered. */
  retryHintMs(): number {
    return Math.min(5000, 100 + Math.floor(this.d.random() * 100));
  }

  /** Queue the next attempt of a home task (also used by recovery). */
  enqueue(rec: TaskRecord): void {
    if (rec.spec.debounceKey && this.debounce.hold(rec)) return;
    const { queue, settings } = this.d;
    const now = this.scheduler.now();
    const item = makeItem(
      rec.id,
      0,
      rec.homeCell,
      rec.spec,
      FROM_HOME,
      undefined,
      nextAttemptId(rec.id),
      leaseFor(rec.spec, settings),
      undefined,
      now,
    );
    // Every attempt of a home task measures from its submit (metrics: submit -> agent start).
    item.arrivedMs = rec.createdMs;
    const r = queue.push(item, now);
    if (!r.ok && r.reason === 'expired') this.deadLetter(rec.id, 'deadline passed before dispatch');
    else if (!r.ok) queue.requeue(item, now);
    this.d.wake();
  }

  /** New home attempts get their numbers (a `dispatched` command per durability per pump), logged ones once committed. */
  startAttempts(items: readonly WorkItem[], out: StartOut): void {
    if (items.length === 0) return;
    const { ledger, ledgerLog } = this.d;
    // A pump's new tasks are mostly of one durability: then `items` is that list as it is (no copy, no closure).
    const mixed = items.some(itemLogged);
    const none = mixed ? items.filter((it) => !itemLogged(it)) : items;
    const atMs = this.scheduler.now();
    // An admitted start (flow gate: keys, tenant shares) stays pending, its child's credit promised, until decided.
    if (none.length > 0) {
      this.started(none, ledger.apply(dispatchedOf(ledger, none, atMs)), out.send);
      startsDecided(none, this.flow, out);
    }
    if (!mixed) return;
    const logged = items.filter(itemLogged);
    // Checkpoints not logged yet go first, in the same entry: the new attempts resume from them.
    const before = this.checkpoints.takePending(logged);
    ledgerLog.propose([...before, dispatchedOf(ledger, logged, atMs)]).then(
      (rs) => {
        startsDecided(logged, this.flow, out);
        this.started(logged, rs[before.length]!, out.send);
      },
      // The items left the queue: repair() queues them again (or leases them, if the command commits late).
      (err: unknown) => {
        startsDecided(logged, this.flow, out);
        this.recovery.proposalFailed(err, 'dispatch');
      },
    );
  }

  started(items: readonly WorkItem[], results: ApplyResult[], send: (item: WorkItem) => void): void {
    // Committed after this replica stopped leading: the new leader leases these attempts from its ledger.
    if (!this.d.leading()) return;
    const { routes, timers } = this.d;
    const now = this.scheduler.now();
    for (let i = 0; i < items.length; i++) {
      const item = withLedgerSpec(items[i]!, this.ledger);
      const res = results[i]!;
      // Past its key's limit after all (the ledger decides): it waits again. Cancelled or ended
      // meanwhile: nothing to send (its credit returns with the next summary).
      if (!res.ok) {
        const rec = res.why === 'limited' ? this.ledger.live(res.id) : undefined;
        if (rec?.state === TaskState.TASK_STATE_QUEUED) this.enqueue(rec);
        continue;
      }
      item.attempt = res.attempt;
      item.key = routeKey(item.taskId, item.attempt);
      item.checkpoint = resumableOf(this.ledger.live(item.taskId));
      // Handed up, it may wait at the top for an agent of its kind (unplaceable.ts): the lease covers that.
      if (item.via === TO_PARENT) item.leaseMs = spilledLeaseFor(item.spec, this.settings);
      routes.sent(item);
      item.leaseDue = now + item.leaseMs;
      timers.schedule(item.leaseDue, { type: 'lease', id: item.taskId, attempt: item.attempt });
      send(item);
    }
  }

  /** A result for one of our tasks (fenced by the ledger: stale attempts are dropped). */
  result(r: TaskResult): void {
    // An agent answered an attempt whose permit lingers: done with it (a mesh failure says nothing of it).
    const fromAgent = r.agentId !== '' && r.meshFailure === MeshFailure.MESH_FAILURE_UNSPECIFIED;
    if (fromAgent && this.ledger.flow.isLingering(permitRef(r.taskId, r.attempt)))
      this.returnPermit(r.taskId, r.attempt);
    const rec = this.ledger.live(r.taskId);
    if (!rec || rec.attempt !== r.attempt) return; // ended, or stale: fenced
    const atMs = this.scheduler.now();
    const logged = isLogged(rec.spec);
    if (r.status === ResultStatus.RESULT_STATUS_OK) {
      this.commit({ type: 'completed', result: r, atMs }, logged);
      return;
    }
    if (r.meshFailure === MeshFailure.MESH_FAILURE_UNPLACEABLE) {
      // Nowhere above had an agent of its kind for unplaceableTimeoutMs: it ends as it would have here
      // (unless that attempt already ended: `deadLettered` is not fenced by attempt in the ledger).
      if (rec.state !== TaskState.TASK_STATE_QUEUED) this.deadLetter(r.taskId, unplaceableWhy(rec.spec, r.error));
      return;
    }
    const handedBack = r.status === ResultStatus.RESULT_STATUS_HANDED_BACK; // migrated: at once, uncounted
    const preempted = r.meshFailure === MeshFailure.MESH_FAILURE_PREEMPTED;
    const requeue = handedBack || preempted || r.meshFailure === MeshFailure.MESH_FAILURE_REQUEUE;
    // Preempted, not answered within its grace (no agent named): it may still run, so its permit lingers.
    const lost = r.meshFailure === MeshFailure.MESH_FAILURE_LOST || (preempted && r.agentId === '');
    this.commit(
      {
        type: 'attemptFailed',
        id: r.taskId,
        attempt: r.attempt,
        reason: r.error || 'failed',
        result: r,
        // A refused dispatch never started; a RATE_LIMITED answer is the downstream's, not the task's, fault.
        counted: !requeue && r.status !== ResultStatus.RESULT_STATUS_RATE_LIMITED,
        fatal: r.status === ResultStatus.RESULT_STATUS_FATAL,
        lapse: lost,
        atMs,
      },
      logged,
      (res) => this.afterFailure(res[0]!, lost || handedBack),
    );
  }

  /** A failed attempt was committed: queue the task again, at once (lost) or after backoff. */
  afterFailure(res: ApplyResult, immediate: boolean): void {
    if (!res.ok || res.state !== TaskState.TASK_STATE_QUEUED) return;
    // Another command of the same batch may have ended it since (a cancel): nothing to queue then.
    const rec = this.ledger.live(res.id);
    if (!rec) return;
    if (immediate) {
      this.enqueue(rec);
      return;
    }
    // An agent's RATE_LIMITED answer says how long; otherwise backoff with jitter.
    const delay = rateLimitedFor(rec.result) || retryBackoff(this.d.settings, rec.failures, this.d.random);
    this.retrying.add(rec.id);
    this.d.timers.schedule(this.scheduler.now() + delay, { type: 'retry', id: rec.id, attempt: rec.attempt });
  }

  cancel(id: string, reason: string): Promise<TaskRecord> {
    try {
      this.mustLead();
    } catch (err) {
      return Promise.reject(err);
    }
    const rec = this.ledger.get(id);
    if (!rec) return Promise.reject(notFound(`task ${id} not found at cell ${this.path}`));
    if (isTerminal(rec.state)) return Promise.resolve(rec);
    return new Promise((resolve, reject) => {
      this.commit(
        { type: 'cancelled', id, reason: reason || 'cancelled by client', atMs: this.scheduler.now() },
        isLogged(rec.spec),
        () => {
          this.dropAttempt(rec, 'cancelled');
          resolve(rec);
        },
        reject,
      );
    });
  }

  deadLetter(id: string, reason: string): void {
    const rec = this.ledger.live(id);
    if (!rec) return;
    this.commit({ type: 'deadLettered', id, reason, atMs: this.scheduler.now() }, isLogged(rec.spec), () => {
      this.dropAttempt(rec, reason);
      this.log.info({ ...taskLogFields(id, rec.spec.traceParent), reason: clip(reason) }, 'task dead-lettered');
    });
  }

  /** A home item's deadline passed while it waited in the queue. */
  expiredQueued(item: WorkItem): void {
    this.deadLetter(item.taskId, 'deadline passed while queued');
  }

  /** A lease, retry or deadline entry came due. */
  fire(e: Exclude<WheelEntry, { type: 'route' | 'resend' }>, now: number): void {
    // Timers armed while leading are moot after a step-down: the new leader re-arms its own.
    if (!this.d.leading()) return;
    switch (e.type) {
      case 'lease': {
        const rec = this.ledger.live(e.id);
        if (!rec || rec.attempt !== e.attempt || rec.state === TaskState.TASK_STATE_QUEUED) return;
        if (!this.refusals.lapsed(e.id, e.attempt, now)) return;
        this.dropAttempt(rec, 'lease lapsed');
        this.commit(
          {
            type: 'attemptFailed',
            id: e.id,
            attempt: e.attempt,
            reason: 'lost: lease lapsed',
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
        this.retrying.delete(e.id);
        const rec = this.ledger.live(e.id);
        if (rec && rec.state === TaskState.TASK_STATE_QUEUED && rec.attempt === e.attempt) this.enqueue(rec);
        return;
      }
      case 'deadline':
        this.deadLetter(e.id, 'deadline passed');
        return;
    }
  }

  /** From the cell's tick: lingering permits whose time has come go back through the log. */
  sweepPermits(now: number): void {
    if (!this.d.leading()) return;
    for (const ref of this.ledger.flow.due(now)) {
      const i = ref.lastIndexOf('#');
      this.returnPermit(ref.slice(0, i), Number(ref.slice(i + 1)));
    }
  }

  private returnPermit(id: string, attempt: number): void {
    const ref = permitRef(id, attempt);
    if (this.returning.has(ref)) return;
    this.returning.add(ref);
    const done = (): void => void this.returning.delete(ref);
    // Only keyed (LOGGED) tasks hold permits; a failed proposal is retried by the next sweep.
    this.commit({ type: 'permitReturned', id, attempt, atMs: this.scheduler.now() }, true, done, done);
  }

  /** A task whose key is at its limit under the cancel-newest strategy ends CANCELLED instead of waiting. */
  cancelForFlow(id: string, why: string): void {
    this.cancel(id, why).catch((err: unknown) => this.log.warn({ err: String(err), id }, 'flow cancel failed'));
  }

  /** The task ended or its attempt lapsed: stop the attempt wherever it is. */
  dropAttempt(rec: TaskRecord, why: string): void {
    this.d.queue.remove(nextAttemptId(rec.id));
    this.flow.forget(rec.id);
    if (rec.attempt > 0) {
      const item = this.d.routes.get(routeKey(rec.id, rec.attempt));
      if (item) this.d.stopAttempt(item, why);
    }
  }

  /**
   * Commit one command: logged tasks through the log, NONE straight to the
   * state machine. A proposal can fail (a timeout under load, an election):
   * its outcome is then unknown, and repair() puts the tasks it touched back
   * on track from what the ledger says.
   */
  commit(
    cmd: LedgerCommand,
    logged: boolean,
    then?: (r: ApplyResult[]) => void,
    failed?: (err: unknown) => void,
  ): void {
    if (!logged) {
      const r = this.ledger.apply(cmd);
      then?.(r);
      return;
    }
    this.d.ledgerLog.propose([cmd]).then(
      (rs) => then?.(rs[0]!),
      (err: unknown) => {
        this.recovery.proposalFailed(err, cmd.type);
        failed?.(err);
      },
    );
  }
}
