// The home task ledger: a replicated state machine.
//
// Everything a cell must decide once about the tasks it is home for (accept,
// start an attempt, complete, fail, cancel, dead-letter) is a LedgerCommand.
// `apply(cmd)` is deterministic: it reads no clock (times travel in the
// command), no randomness, does no IO, so every replica that applies the same
// commands in the same order holds the same ledger. Callers never call apply
// for logged tasks directly: they go through a LedgerLog: LocalLedgerLog applies
// at once on the one replica of a cell, RaftLedgerLog (raft-ledger-log.ts)
// replicates the commands through the cell's Raft group first. snapshot() and
// restore() carry the whole state, so Raft can compact the log behind it
// (ledger-snapshot.ts). The commands, their answers and the task record are in
// ledger-record.ts. How tasks are held and read is ledger-tasks.ts: a live
// task as its record object, a terminal one as its encoded record
// (ledger-retained.ts), read back as a copy by get(); the mesh's own paths
// look up live tasks with live(), has() and stateOf(), which decode nothing.
//
// Invariants (checked by test/mesh/ledger.test.ts):
// - one idempotency key names one task id for as long as the task is retained;
// - a task reaches a terminal state at most once; later commands for it are
//   answered `terminal` and change nothing;
// - a result or failure for an attempt other than the current one is `stale`;
// - a new attempt starts only from QUEUED (after the last one ended), so every
//   attempt that may have run ends once, counted or not: at most max_attempts
//   counted ones run (the attempt number, a fence, also counts dispatches
//   refused before they started past the home's bound: home-refusals.ts);
// - at most `retention` terminal tasks are kept; the oldest is evicted first;
// - only a `replayed` command reopens a terminal task (FAILED, DEAD_LETTERED,
//   CANCELLED; never COMPLETED), as a new attempt series: so a task reaches a
//   terminal state at most once per series, and its attempt number never
//   goes back (a result of an attempt before the replay stays stale).
//
// The cell's operator settings (drain, policy, cordoned agents), flow control
// (`flow`, src/flow/flow-state.ts: permits per concurrency key, rate state) and
// debounce and singleton keys (`keyed`, src/flow/keyed.ts) are in the same log
// and snapshot: the cell's one replicated state machine.
import { TaskState } from '../gen/meshlb/v1/task.js';
import { FlowState, NO_FLOW, strategyOf, type FlowConfig } from '../flow/flow-state.js';
import { KeyedTasks } from '../flow/keyed.js';
import { applyCheckpoint, dropCheckpointData } from './ledger-checkpoint.js';
import { LedgerTasks } from './ledger-tasks.js';
import { decodeSnapshot, encodeSnapshot } from './ledger-snapshot.js';
import { applyShareSet } from './ledger-shares.js';
import {
  applyConfig,
  configToProto,
  emptyConfig,
  restoreConfig,
  keepResult,
  newRecord,
  type AcceptedTask,
  type ApplyResult,
  type CellConfig,
  type LedgerCommand,
  type TaskRecord,
} from './ledger-record.js';

export { isLogged, isTerminal, MAX_CORDONED, toProtoTask } from './ledger-record.js';
export { LocalLedgerLog, type LedgerLog } from './ledger-log.js';
export type { AcceptedTask, ApplyResult, CellConfig, LedgerCommand, TaskRecord } from './ledger-record.js';
export type { TaskEntry } from './ledger-tasks.js';

export interface LedgerOptions {
  /** Terminal tasks kept for Get/Watch and idempotency; the oldest is evicted first. */
  readonly retention: number;
  /** Used when a spec says max_attempts 0. */
  readonly defaultMaxAttempts: number;
  /** Concurrency and rate limits per key (src/flow); default none. */
  readonly flow?: FlowConfig;
}

/** Called for every transition into a terminal state (exactly once per task). */
export type TerminalListener = (rec: TaskRecord) => void;
/** Called for every change of a task record (watchers). */
export type ChangeListener = (rec: TaskRecord) => void;

/** A hard cap on attempts, counted or not, so nothing cycles forever. */
const UNCOUNTED_ATTEMPT_SLACK = 20;

export class Ledger extends LedgerTasks {
  private readonly terminalListeners: TerminalListener[] = [];
  private readonly changeListeners: ChangeListener[] = [];
  /** Told after restore() replaced the whole ledger (no per-record change was reported for it). */
  private readonly restoreListeners: (() => void)[] = [];
  readonly counters = { accepted: 0, completed: 0, failed: 0, cancelled: 0, deadLettered: 0 };
  /** The operator's settings of the cell (drain, policy, cordons). */
  readonly config: CellConfig = emptyConfig();
  /** Told after a config command applied, and after restore(). */
  private readonly configListeners: ((c: CellConfig) => void)[] = [];
  /** Permits per concurrency key, runtime limits, rate state: replicated with the tasks (src/flow). */
  readonly flow: FlowState;
  /** Debounce and singleton keys: which task each names (src/flow/keyed.ts). */
  readonly keyed = new KeyedTasks();

  constructor(private readonly opts: LedgerOptions) {
    super(opts.retention);
    this.flow = new FlowState(opts.flow ?? NO_FLOW);
  }

  onTerminal(l: TerminalListener): void {
    this.terminalListeners.push(l);
  }

  onChange(l: ChangeListener): void {
    this.changeListeners.push(l);
  }

  onRestored(l: () => void): void {
    this.restoreListeners.push(l);
  }

  onConfig(l: (c: CellConfig) => void): void {
    this.configListeners.push(l);
  }

  maxAttempts(rec: TaskRecord): number {
    return rec.spec.maxAttempts > 0 ? rec.spec.maxAttempts : this.opts.defaultMaxAttempts;
  }

  /** Apply one command. Deterministic; never throws on well-formed commands. */
  apply(cmd: LedgerCommand): ApplyResult[] {
    switch (cmd.type) {
      case 'accepted':
        return cmd.tasks.map((t) => this.accept(t));
      case 'dispatched':
        return cmd.refs.map((r) => this.dispatched(r.id, r.attempt, cmd.atMs));
      case 'running': {
        const r = this.current(cmd.id, cmd.attempt);
        if (!r.ok) return [r.res];
        if (r.rec.state === TaskState.TASK_STATE_DISPATCHED) this.touch(r.rec, TaskState.TASK_STATE_RUNNING, cmd.atMs);
        return [this.ok(r.rec)];
      }
      case 'completed': {
        const r = this.current(cmd.result.taskId, cmd.result.attempt);
        if (!r.ok) return [r.res];
        r.rec.result = cmd.result;
        this.flow.ended(r.rec.id, r.rec.attempt);
        this.finish(r.rec, TaskState.TASK_STATE_COMPLETED, '', cmd.atMs);
        return [this.ok(r.rec)];
      }
      case 'attemptFailed':
        return [this.attemptFailed(cmd)];
      case 'cancelled':
      case 'deadLettered': {
        const rec = this.tasks.get(cmd.id);
        if (rec === undefined) return [{ ok: false, id: cmd.id, why: 'unknown' }];
        if (typeof rec === 'number') return [this.terminal(cmd.id, rec)];
        const to = cmd.type === 'cancelled' ? TaskState.TASK_STATE_CANCELLED : TaskState.TASK_STATE_DEAD_LETTERED;
        this.stop(rec, to, cmd.reason, cmd.atMs);
        return [this.ok(rec)];
      }
      case 'replayed':
        return cmd.ids.map((id) => this.replay(id, cmd.reason, cmd.atMs));
      case 'cellDrained':
      case 'policySet':
      case 'agentCordoned':
      case 'versionRampSet':
        // Refused (a cordon past MAX_CORDONED) or changed: listeners are told only of changes.
        return [applyConfig(this.config, cmd) ?? this.configChanged()];
      case 'permitReturned':
        this.flow.returned(cmd.id, cmd.attempt);
        return [{ ok: true, id: cmd.id, state: TaskState.TASK_STATE_UNSPECIFIED, attempt: cmd.attempt }];
      case 'flowLimitSet':
        this.flow.setLimit(cmd.key, cmd.limit, strategyOf(cmd.strategy ?? ''));
        return [{ ok: true, id: cmd.key, state: TaskState.TASK_STATE_UNSPECIFIED, attempt: 0 }];
      case 'checkpointed': {
        const v = this.tasks.get(cmd.checkpoint.taskId);
        if (typeof v === 'number') return [this.terminal(cmd.checkpoint.taskId, v)];
        return [applyCheckpoint(v, cmd.checkpoint, cmd.atMs)];
      }
      case 'tenantWeightSet':
      case 'tenantShareSet': // a share counts the tenant's attempts out now
      case 'keyShareSet': // a key's slots are its permits, counted from its first attempt
        return [applyShareSet(this.flow, cmd, this.liveRecords())];
    }
  }

  /** A new attempt series for a task that ended other than COMPLETED. */
  private replay(id: string, reason: string, atMs: number): ApplyResult {
    const h = this.tasks.get(id);
    if (h === undefined) return { ok: false, id, why: 'unknown' };
    if (typeof h !== 'number') return { ok: false, id, why: 'live', state: h.state };
    if (this.retained.state(h) === TaskState.TASK_STATE_COMPLETED) return this.terminal(id, h);
    const rec = this.reopened(id, h);
    rec.failures = 0;
    rec.attemptBase = rec.attempt;
    rec.replays++;
    rec.result = undefined;
    rec.reason = reason;
    this.touch(rec, TaskState.TASK_STATE_QUEUED, atMs);
    return this.ok(rec);
  }

  private configChanged(): ApplyResult {
    for (const l of this.configListeners) l(this.config);
    return { ok: true, id: '', state: TaskState.TASK_STATE_UNSPECIFIED, attempt: 0 };
  }

  private accept(t: AcceptedTask): ApplyResult {
    const key = t.spec.idempotencyKey;
    if (key) {
      const existing = this.idForKey(key);
      if (existing !== undefined) return this.known(existing);
    }
    if (this.tasks.has(t.id)) return this.known(t.id);
    // A debounce or singleton key may fold the submit into a live task (src/flow/keyed.ts).
    const k = this.keyed.admit(t.id, t.spec, t.atMs, (id) => this.live(id));
    if (k.type !== 'new') {
      if (k.type === 'merged') this.changed(this.live(k.rec.id)!);
      return { ok: true, id: k.rec.id, existing: true, state: k.rec.state, attempt: k.rec.attempt };
    }
    const rec = newRecord(t);
    this.added(rec);
    this.counters.accepted++;
    this.changed(rec);
    if (!k.replaces) return this.ok(rec);
    const why = `singleton key ${t.spec.singletonKey}: replaced by task ${t.id}`;
    this.stop(this.live(k.replaces.id)!, TaskState.TASK_STATE_CANCELLED, why, t.atMs);
    return { ...this.ok(rec), replaced: k.replaces.id };
  }

  /** Cancelled or dead-lettered: an attempt still out may run on at its agent, so its permit lingers. */
  private stop(rec: TaskRecord, to: TaskState, reason: string, atMs: number): void {
    if (rec.state !== TaskState.TASK_STATE_QUEUED) this.flow.stopped(rec.spec, rec.id, rec.attempt, atMs);
    this.finish(rec, to, reason, atMs);
  }

  private dispatched(id: string, attempt: number, atMs: number): ApplyResult {
    const rec = this.tasks.get(id);
    if (rec === undefined) return { ok: false, id, why: 'unknown' };
    if (typeof rec === 'number') return this.terminal(id, rec);
    // Numbers only grow (the fence). A new attempt starts only once the last
    // one ended (QUEUED): superseding one still out would let it run on
    // uncounted, past max_attempts (a dispatch committed late, after a repair
    // had queued the task again).
    if (attempt <= rec.attempt || rec.state !== TaskState.TASK_STATE_QUEUED) {
      return { ok: false, id, why: 'stale', state: rec.state };
    }
    // Still in its debounce window, its concurrency key at its limit, or its rate spent: it stays
    // QUEUED (the leader queues it again).
    if (atMs < this.keyed.holdUntil(rec) || !this.flow.start(rec.spec, id, attempt, atMs))
      return { ok: false, id, why: 'limited', state: rec.state };
    rec.attempt = attempt;
    this.touch(rec, TaskState.TASK_STATE_DISPATCHED, atMs);
    return this.ok(rec);
  }

  private attemptFailed(cmd: Extract<LedgerCommand, { type: 'attemptFailed' }>): ApplyResult {
    const r = this.current(cmd.id, cmd.attempt);
    if (!r.ok) return r.res;
    const rec = r.rec;
    if (cmd.counted) rec.failures++;
    if (cmd.result) keepResult(rec, cmd.result);
    // Lost or lapsed: its permit lingers (the agent may run on); a RATE_LIMITED answer pauses its rate key.
    this.flow.failed(rec.spec, rec.id, rec.attempt, cmd.atMs, cmd.lapse === true, cmd.result);
    const max = this.maxAttempts(rec);
    if (cmd.fatal) {
      this.finish(rec, TaskState.TASK_STATE_FAILED, cmd.reason, cmd.atMs);
    } else if (rec.failures >= max || rec.attempt - rec.attemptBase >= max + UNCOUNTED_ATTEMPT_SLACK) {
      const to = cmd.lapse ? TaskState.TASK_STATE_DEAD_LETTERED : TaskState.TASK_STATE_FAILED;
      // Attempts are those counted against max_attempts; the attempt number
      // also counts dispatches refused before they started past the home's bound (uncounted: home-refusals.ts).
      const why =
        rec.failures >= max
          ? `${rec.failures} of ${max} attempts`
          : `${rec.failures} of ${max} attempts, ${rec.attempt - rec.attemptBase} dispatches`;
      this.finish(rec, to, `${cmd.reason} (${why})`, cmd.atMs);
    } else {
      rec.reason = cmd.reason;
      this.touch(rec, TaskState.TASK_STATE_QUEUED, cmd.atMs);
    }
    return this.ok(rec);
  }

  /** The record if `attempt` is its current, non-terminal attempt. */
  private current(id: string, attempt: number): { ok: true; rec: TaskRecord } | { ok: false; res: ApplyResult } {
    const rec = this.tasks.get(id);
    if (rec === undefined) return { ok: false, res: { ok: false, id, why: 'unknown' } };
    if (typeof rec === 'number') return { ok: false, res: this.terminal(id, rec) };
    if (attempt !== rec.attempt || rec.state === TaskState.TASK_STATE_QUEUED) {
      return { ok: false, res: { ok: false, id, why: 'stale', state: rec.state } };
    }
    return { ok: true, rec };
  }

  private touch(rec: TaskRecord, state: TaskState, atMs: number): void {
    rec.state = state;
    rec.updatedMs = atMs;
    this.changed(rec);
  }

  private finish(rec: TaskRecord, state: TaskState, reason: string, atMs: number): void {
    rec.state = state;
    rec.reason = reason;
    rec.updatedMs = atMs;
    dropCheckpointData(rec);
    if (state === TaskState.TASK_STATE_COMPLETED) this.counters.completed++;
    else if (state === TaskState.TASK_STATE_FAILED) this.counters.failed++;
    else if (state === TaskState.TASK_STATE_CANCELLED) this.counters.cancelled++;
    else this.counters.deadLettered++;
    this.keyed.ended(rec);
    for (const l of this.terminalListeners) l(rec);
    this.changed(rec);
    this.ended(rec);
  }

  private changed(rec: TaskRecord): void {
    for (const l of this.changeListeners) l(rec);
  }

  private ok(rec: TaskRecord): ApplyResult & { ok: true } {
    return { ok: true, id: rec.id, state: rec.state, attempt: rec.attempt };
  }

  /**
   * The whole state as bytes (a LedgerSnapshot, ledger-snapshot.ts): every
   * record in the map's order, the terminal (eviction) order and the counters.
   * The idempotency index and the live count follow from the records.
   */
  snapshot(): Uint8Array {
    const [flow, keyed] = [this.flow.toProto(), this.keyed.toProto()];
    const rest = { counters: { ...this.counters }, config: configToProto(this.config), flow, keyed };
    return encodeSnapshot(this.tasks.values(), this.retained, rest);
  }

  /**
   * Replace the state with a snapshot taken by snapshot(); afterwards this
   * ledger answers every command exactly as the snapshotted one would.
   * Listeners are not called. Throws on a snapshot that is not self-consistent.
   */
  restore(bytes: Uint8Array): void {
    const { snap, records, terminal } = decodeSnapshot(bytes);
    this.restoreTasks(records, terminal);
    const c = snap.counters;
    Object.assign(this.counters, {
      accepted: c?.accepted ?? 0,
      completed: c?.completed ?? 0,
      failed: c?.failed ?? 0,
      cancelled: c?.cancelled ?? 0,
      deadLettered: c?.deadLettered ?? 0,
    });
    restoreConfig(this.config, snap.config);
    this.flow.restore(snap.flow);
    this.keyed.restore(snap.keyed);
    for (const l of this.restoreListeners) l();
    for (const l of this.configListeners) l(this.config);
  }
}
