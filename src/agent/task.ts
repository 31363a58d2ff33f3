// The task object a handler receives. Built once per assignment on the hot
// path, so the costly parts (AbortController, labels record, decoded text) are
// created only if the handler asks for them.
import { SpanKind, SpanStatusCode, trace, type Context, type Span, type Tracer } from '@opentelemetry/api';
import { ResultStatus, type Dispatch, type Label } from '../gen/meshlb/v1/task.js';
import { ATTR, contextOf, SPAN, traceIdOf } from '../util/trace-context.js';
import { CheckpointError, HandBackRequest, TaskCancelledError, TaskPreemptedError } from './errors.js';

export interface AgentTask {
  /** Task id (stable across attempts). */
  readonly id: string;
  /** Attempt number, from 1. A task can run more than once (at-least-once); use it, or the id, to be idempotent. */
  readonly attempt: number;
  readonly kind: string;
  readonly payload: Uint8Array;
  /** The task's labels as a record (last value wins for a repeated key). */
  readonly labels: Record<string, string>;
  /** Absolute deadline (unix ms), or undefined when the task has none. */
  readonly deadline: number | undefined;
  /** Per-attempt run timeout the submitter asked for (ms), 0 = the cell default. */
  readonly timeoutMs: number;
  /** The cell where the task was submitted. */
  readonly homeCell: string;
  /** The agent's slots this attempt holds (TaskSpec.slots, at least 1; docs/gang.md). */
  readonly slots: number;
  /** Aborted when the node cancels this attempt, or the agent is closed. */
  readonly signal: AbortSignal;
  /**
   * Set when the node preempted this attempt for a task of higher priority
   * (the signal is aborted with it too): stop or checkpoint within its graceMs.
   */
  readonly preempted: TaskPreemptedError | undefined;
  /**
   * The W3C traceparent this run continues: the node's dispatch span when the
   * mesh traces, else the one the task was submitted with; '' when none.
   */
  readonly traceParent: string;
  /** The trace id ('' when the task carries no trace). */
  readonly traceId: string;
  /**
   * An OpenTelemetry context for the handler's own spans: the agent's run
   * span when the agent traces (AgentOptions.tracer), else the task's incoming
   * trace (ROOT_CONTEXT when it has none). The handler also runs inside it.
   */
  readonly context: Context;
  /**
   * The checkpoint this attempt resumes from: the data an earlier attempt of
   * the task saved last (checkpoint()), or undefined on a fresh start.
   */
  readonly resumeFrom: Buffer | undefined;
  /** The progress saved with resumeFrom (0 when none). */
  readonly resumeProgress: number;
  /**
   * Save progress (docs/sdk.md, "Checkpoints"): bytes as they are, a string
   * as UTF-8, anything else as JSON. Resolves once the node took it and sent
   * it on toward the task's home (which logs the latest per task, at most
   * every checkpointIntervalMs); rejects with a CheckpointError when it was
   * refused (over the node's size limit, an attempt no longer current) or
   * could not be sent (no stream). A later attempt gets the latest as
   * `resumeFrom`.
   */
  checkpoint(data: Uint8Array | string | object, opts?: { progress?: number }): Promise<void>;
  /**
   * Aborted when the mesh asks this attempt to checkpoint and stop (a drain
   * with migration, a preemption); its reason is a HandBackRequest (why, and
   * the grace in ms). Checkpoint, then return or throw: a handler that throws
   * after it hands the attempt back (the task runs on elsewhere from the
   * checkpoint, no attempt spent); one that returns a value completes the
   * task. Past the grace the agent hands it back by itself and aborts `signal`.
   */
  readonly handBack: AbortSignal;
  /** The payload as UTF-8 text. */
  text(): string;
  /** The payload parsed as JSON. */
  json<T = unknown>(): T;
}

/** What a handler may return: bytes, text (UTF-8), any other value (sent as JSON), or nothing. */
export type HandlerOutput = Uint8Array | string | object | number | boolean | null | undefined | void;

export type TaskHandler = (task: AgentTask) => Promise<HandlerOutput> | HandlerOutput;

const EMPTY: Buffer = Buffer.alloc(0);
const decoder = new TextDecoder();

function labelsToRecord(labels: readonly Label[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const l of labels) out[l.key] = l.value;
  return out;
}

export function recordToLabels(rec: Record<string, string> | undefined): Label[] {
  if (!rec) return [];
  return Object.entries(rec).map(([key, value]) => ({ key, value: String(value) }));
}

export class RunningTask implements AgentTask {
  readonly id: string;
  readonly attempt: number;
  readonly kind: string;
  readonly payload: Uint8Array;
  readonly deadline: number | undefined;
  readonly timeoutMs: number;
  readonly homeCell: string;
  readonly slots: number;
  /** performance.now() when the handler was called. */
  readonly startedAt: number;
  /** Map key: `${id}#${attempt}`. */
  readonly key: string;
  cancelled = false;
  preempted: TaskPreemptedError | undefined;
  readonly traceParent: string;
  private readonly traceState: string;
  /** The run span, when the agent traces. */
  private span: Span | undefined;
  private ctx: Context | undefined;
  private ac: AbortController | undefined;
  private rawLabels: Label[];
  private labelsRec: Record<string, string> | undefined;

  readonly resumeFrom: Buffer | undefined;
  readonly resumeProgress: number;
  /** Set when the mesh asked for a hand-back (and the time it was asked). */
  handBackAsked: HandBackRequest | undefined;
  private hb: AbortController | undefined;
  /** Sends a checkpoint (the agent's checkpoints.ts); seq counts this attempt's. */
  saver: ((t: RunningTask, data: Buffer, progress: number) => Promise<void>) | undefined;
  checkpointSeq = 0;

  constructor(d: Dispatch, key: string) {
    const spec = d.spec;
    this.id = d.taskId;
    this.attempt = d.attempt;
    this.key = key;
    this.kind = spec?.kind ?? '';
    this.payload = spec?.payload ?? EMPTY;
    this.deadline = spec && spec.deadlineUnixMs > 0 ? spec.deadlineUnixMs : undefined;
    this.timeoutMs = spec?.timeoutMs ?? 0;
    this.slots = spec && spec.slots > 1 ? spec.slots : 1;
    this.homeCell = d.homeCell;
    this.rawLabels = spec?.labels ?? [];
    this.traceParent = d.traceParent || (spec?.traceParent ?? '');
    this.traceState = spec?.traceState ?? '';
    this.startedAt = performance.now();
    const cp = d.checkpoint;
    this.resumeFrom = cp?.data;
    this.resumeProgress = cp?.progress ?? 0;
  }

  checkpoint(data: Uint8Array | string | object, opts: { progress?: number } = {}): Promise<void> {
    if (!this.saver) return Promise.reject(new CheckpointError('checkpoints are not available here'));
    let bytes: Buffer;
    try {
      bytes = encodeOutput(data as HandlerOutput);
    } catch (err) {
      return Promise.reject(new CheckpointError(`checkpoint not serializable: ${String(err)}`));
    }
    return this.saver(this, bytes, opts.progress ?? 0);
  }

  get handBack(): AbortSignal {
    this.hb ??= new AbortController();
    return this.hb.signal;
  }

  /** The mesh asks for a hand-back (once). */
  askHandBack(req: HandBackRequest): void {
    if (this.handBackAsked) return;
    this.handBackAsked = req;
    this.hb ??= new AbortController();
    this.hb.abort(req);
  }

  get traceId(): string {
    return this.span ? this.span.spanContext().traceId : traceIdOf(this.traceParent);
  }

  get context(): Context {
    this.ctx ??= contextOf(this.traceParent, this.traceState);
    return this.ctx;
  }

  /** Start the run span (the agent traces): a child of the incoming context, the handler's context from now on. */
  startSpan(tracer: Tracer, agentId: string, nodeCell: string): void {
    const parent = contextOf(this.traceParent, this.traceState);
    this.span = tracer.startSpan(
      SPAN.run,
      {
        kind: SpanKind.CONSUMER,
        attributes: {
          [ATTR.taskId]: this.id,
          [ATTR.attempt]: this.attempt,
          [ATTR.kind]: this.kind,
          [ATTR.agentId]: agentId,
          [ATTR.node]: nodeCell,
        },
      },
      parent,
    );
    this.ctx = trace.setSpan(parent, this.span);
  }

  /** End the run span, if any, with the attempt's outcome. */
  endSpan(status: ResultStatus, error: string): void {
    const span = this.span;
    if (!span) return;
    const name =
      status === ResultStatus.RESULT_STATUS_OK ? 'ok' : status === ResultStatus.RESULT_STATUS_FATAL ? 'fatal' : 'error';
    span.setAttribute(ATTR.status, name);
    if (status !== ResultStatus.RESULT_STATUS_OK)
      span.setStatus({ code: SpanStatusCode.ERROR, message: error.slice(0, 1024) });
    span.end();
  }

  get signal(): AbortSignal {
    this.ac ??= new AbortController();
    return this.ac.signal;
  }

  get labels(): Record<string, string> {
    this.labelsRec ??= labelsToRecord(this.rawLabels);
    return this.labelsRec;
  }

  text(): string {
    return decoder.decode(this.payload);
  }

  json<T = unknown>(): T {
    return JSON.parse(this.text()) as T;
  }

  abort(reason: string | TaskCancelledError): void {
    if (this.cancelled) return;
    this.cancelled = true;
    this.ac ??= new AbortController();
    this.ac.abort(typeof reason === 'string' ? new TaskCancelledError(reason) : reason);
  }

  /** Preempted by the node: aborted with the reason and grace (the executor ends it when the grace is over). */
  preempt(reason: string, graceMs: number, byTaskId: string): void {
    this.preempted ??= new TaskPreemptedError(reason, graceMs, byTaskId);
    // A handler that migrates (handBack) checkpoints on a preemption too: its next attempt resumes from it.
    this.askHandBack(new HandBackRequest(reason, graceMs));
    this.abort(this.preempted);
  }
}

/** Handler output -> result bytes (no copy for Buffers and Uint8Arrays). */
export function encodeOutput(v: HandlerOutput): Buffer {
  if (v === undefined || v === null) return EMPTY;
  if (Buffer.isBuffer(v)) return v;
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  if (typeof v === 'string') return Buffer.from(v, 'utf8');
  return Buffer.from(JSON.stringify(v) ?? 'null', 'utf8');
}
