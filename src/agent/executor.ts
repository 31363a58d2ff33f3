// Running the node's assignments within the agent's slots: one handler per
// kind ('*' catches the rest), each attempt cancellable through its
// AbortSignal, each finished attempt turned into exactly one TaskResult.
//
// Invariants:
// - `used <= slots`, used being the slots of the running attempts (each its
//   TaskSpec.slots, docs/gang.md): an assignment beyond the slots is refused
//   with an ERROR result "over slots" and counted in refusedOverSlots (the node
//   is trusted to respect slots; a healthy mesh keeps this 0).
// - An attempt (`${taskId}#${attempt}`) runs at most once at a time; the same
//   attempt assigned again while it runs is ignored (duplicateAssignments).
// - A handler that finishes reports once, and only while its entry is still the
//   one in `running`.
import { context, type Tracer } from '@opentelemetry/api';
import type { Preemption } from '../gen/meshlb/v1/agent.js';
import { MeshFailure, ResultStatus, type Dispatch, type TaskRef, type TaskResult } from '../gen/meshlb/v1/task.js';
import { FatalTaskError, RateLimitedError } from './errors.js';
import { encodeOutput, RunningTask, type HandlerOutput, type TaskHandler } from './task.js';

const MAX_ERROR_CHARS = 4096;
const EMPTY: Buffer = Buffer.alloc(0);

export interface ExecutorStats {
  inFlight: number;
  /** High-water mark of concurrent handlers (never above slots). */
  maxInFlight: number;
  tasksStarted: number;
  tasksOk: number;
  tasksFailed: number;
  tasksCancelled: number;
  /** Assignments beyond slots, refused with an ERROR result. */
  refusedOverSlots: number;
  /** Assignments refused for another reason (draining, no handler). */
  refusedOther: number;
  /** The same attempt assigned while already running: ignored. */
  duplicateAssignments: number;
  /** Attempts handed back when the mesh asked (RESULT_STATUS_HANDED_BACK). */
  tasksHandedBack: number;
}

/** Where the executor's news goes: the outbox and the agent's events. */
interface ExecutorPeer {
  /** A handler was called (its `started` ack is due). */
  started(task: RunningTask): void;
  /** A result to send: a finished attempt, or a refused assignment. */
  report(result: TaskResult): void;
  /** An attempt finished; its result has been reported. */
  ended(task: RunningTask, status: ResultStatus): void;
}

export class Executor {
  /** Running handlers by `${taskId}#${attempt}`; its size is the in-flight count. */
  readonly running = new Map<string, RunningTask>();
  /** Slots the running attempts hold (Σ their slots). */
  used = 0;
  /** The node cell results are stamped with (from the latest Welcome). */
  nodeCell = '';
  private readonly handlers = new Map<string, TaskHandler>();

  constructor(
    private readonly agentId: string,
    private readonly slots: number,
    private readonly stats: ExecutorStats,
    private readonly peer: ExecutorPeer,
  ) {}

  /** What sends a handler's checkpoints (the agent's checkpoints.ts). */
  saver: RunningTask['saver'];

  /** The run spans' tracer (AgentOptions.tracer); none: no span, no context per task. */
  private tracer: Tracer | undefined;

  /** Trace every run from now on. */
  traceWith(tracer: Tracer): void {
    this.tracer = tracer;
  }

  handle(kind: string, handler: TaskHandler): void {
    this.handlers.set(kind, handler);
  }

  /** The kinds with a handler ('*' is a local catch-all, not a kind). */
  kinds(): string[] {
    return [...this.handlers.keys()].filter((k) => k !== '*');
  }

  assign(tasks: readonly Dispatch[], draining: boolean): void {
    for (const d of tasks) {
      const key = d.taskId + '#' + d.attempt;
      if (this.running.has(key)) {
        this.stats.duplicateAssignments++;
        continue;
      }
      if (draining) {
        this.stats.refusedOther++;
        this.refuse(d, 'agent draining');
        continue;
      }
      const cost = d.spec && d.spec.slots > 1 ? d.spec.slots : 1;
      if (this.used + cost > this.slots) {
        this.stats.refusedOverSlots++;
        this.refuse(d, `over slots: agent ${this.agentId} holds ${this.used} of ${this.slots}, the task needs ${cost}`);
        continue;
      }
      const kind = d.spec?.kind ?? '';
      const handler = this.handlers.get(kind) ?? this.handlers.get('*');
      if (!handler) {
        this.stats.refusedOther++;
        this.refuse(d, `no handler for kind "${kind}" on agent ${this.agentId}`);
        continue;
      }
      const t = new RunningTask(d, key);
      t.saver = this.saver;
      if (this.tracer) t.startSpan(this.tracer, this.agentId, this.nodeCell);
      this.running.set(key, t);
      this.used += t.slots;
      const n = this.running.size;
      this.stats.inFlight = n;
      if (n > this.stats.maxInFlight) this.stats.maxInFlight = n;
      this.stats.tasksStarted++;
      this.peer.started(t);
      this.run(t, handler);
    }
  }

  /** The running attempts as refs, with their slots when more than one (the hello's `running`). */
  refs(): TaskRef[] {
    return [...this.running.values()].map((t) => ({
      taskId: t.id,
      attempt: t.attempt,
      slots: t.slots > 1 ? t.slots : 0,
    }));
  }

  /** Abort one attempt, or every running attempt of the task when attempt is 0. */
  cancel(taskId: string, attempt: number, reason: string): void {
    if (attempt > 0) {
      this.running.get(taskId + '#' + attempt)?.abort(reason);
      return;
    }
    for (const t of this.running.values()) if (t.id === taskId) t.abort(reason);
  }

  /** The node's cancels, and its preemptions (each aborted with its reason and ended after its grace). */
  stop(
    m: { $case: 'cancels'; value: { refs: TaskRef[] } } | { $case: 'preemptions'; value: { items: Preemption[] } },
  ): void {
    if (m.$case === 'cancels') {
      for (const ref of m.value.refs) this.cancel(ref.taskId, ref.attempt, 'cancelled by node');
      return;
    }
    for (const p of m.value.items) {
      const t = p.ref && this.running.get(p.ref.taskId + '#' + p.ref.attempt);
      if (!t || t.preempted) continue;
      t.preempt(p.reason || 'preempted by node', p.graceMs, p.byTaskId);
      // Past the grace the node counts the slot as free: so must we (a late return is dropped).
      const timer = setTimeout(() => this.finish(t, undefined, t.preempted), p.graceMs);
      timer.unref?.();
    }
  }

  /** The grace of a hand-back is over and the handler has not ended: hand it back now, abort its signal. */
  handBackNow(t: RunningTask, why: string): void {
    if (this.running.get(t.key) !== t) return;
    t.abort(`handed back: ${why}`);
    this.finish(t, undefined, new Error(`handed back: ${why} (the handler did not end within the grace)`));
  }

  abortAll(reason: string): void {
    for (const t of this.running.values()) t.abort(reason);
  }

  private run(t: RunningTask, handler: TaskHandler): void {
    let r: Promise<HandlerOutput> | HandlerOutput;
    try {
      // Traced, inside the run span's context, so the handler's own spans are its children.
      r = this.tracer ? context.with(t.context, handler, undefined, t) : handler(t);
    } catch (err) {
      this.finish(t, undefined, err);
      return;
    }
    if (r !== null && typeof r === 'object' && typeof (r as Promise<HandlerOutput>).then === 'function') {
      (r as Promise<HandlerOutput>).then(
        (v) => this.finish(t, v, undefined),
        (err: unknown) => this.finish(t, undefined, err ?? new Error('handler rejected')),
      );
    } else {
      this.finish(t, r as HandlerOutput, undefined);
    }
  }

  private finish(t: RunningTask, value: HandlerOutput, err: unknown): void {
    if (this.running.get(t.key) !== t) return; // closed meanwhile
    this.running.delete(t.key);
    this.used -= t.slots;
    this.stats.inFlight = this.running.size;
    let status: ResultStatus;
    let output: Buffer | undefined;
    let error = '';
    let retryAfterMs = 0;
    if (err === undefined) {
      try {
        output = encodeOutput(value);
        status = ResultStatus.RESULT_STATUS_OK;
      } catch (e) {
        status = ResultStatus.RESULT_STATUS_ERROR;
        error = `output not serializable: ${errorMessage(e)}`;
      }
    } else if (t.handBackAsked) {
      // Asked to stop: however it ends short of a value, the attempt is handed back (no attempt spent).
      status = ResultStatus.RESULT_STATUS_HANDED_BACK;
      error = `handed back: ${t.handBackAsked.why}`;
    } else {
      status = errorStatus(err);
      error = errorMessage(err);
      if (err instanceof RateLimitedError) retryAfterMs = err.retryAfterMs;
    }
    if (status === ResultStatus.RESULT_STATUS_OK) this.stats.tasksOk++;
    else if (status === ResultStatus.RESULT_STATUS_HANDED_BACK) this.stats.tasksHandedBack++;
    else this.stats.tasksFailed++;
    if (t.cancelled) this.stats.tasksCancelled++;
    const micros = Math.round((performance.now() - t.startedAt) * 1000);
    t.endSpan(status, error);
    this.peer.report({
      taskId: t.id,
      attempt: t.attempt,
      status,
      output: output ?? EMPTY,
      error,
      agentId: this.agentId,
      nodeCell: this.nodeCell,
      runMicros: micros > 0xffffffff ? 0xffffffff : micros,
      meshFailure: MeshFailure.MESH_FAILURE_UNSPECIFIED,
      retryAfterMs,
    });
    this.peer.ended(t, status);
  }

  private refuse(d: Dispatch, reason: string): void {
    this.peer.report({
      taskId: d.taskId,
      attempt: d.attempt,
      status: ResultStatus.RESULT_STATUS_ERROR,
      output: EMPTY,
      error: reason,
      agentId: this.agentId,
      nodeCell: this.nodeCell,
      runMicros: 0,
      meshFailure: MeshFailure.MESH_FAILURE_UNSPECIFIED,
      retryAfterMs: 0,
    });
  }
}

function errorStatus(err: unknown): ResultStatus {
  if (err instanceof FatalTaskError) return ResultStatus.RESULT_STATUS_FATAL;
  if (err instanceof RateLimitedError) return ResultStatus.RESULT_STATUS_RATE_LIMITED;
  return ResultStatus.RESULT_STATUS_ERROR;
}

function errorMessage(err: unknown): string {
  const m = err instanceof Error ? err.message || err.name : String(err);
  return m.length > MAX_ERROR_CHARS ? m.slice(0, MAX_ERROR_CHARS) : m;
}
