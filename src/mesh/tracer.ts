// What a cell tells its traces (docs/operations.md, "Traces"), from the three
// places a task crosses it: accepted at its home (submit), sent on by the
// dispatcher (one span per tier and attempt, each the child of the span of the
// tier that sent it, by the Dispatch's trace_parent), and its result passing
// back. src/trace/ implements it on OpenTelemetry; a cell built without a
// tracer gets NO_TRACER, and every hook is one `if (tracer.enabled)`: with
// tracing off no span, context or string is made per task.
//
// The W3C context travels on the wire: TaskSpec.trace_parent (the home's
// submit span, in the ledger, so a new leader's attempts join the same trace)
// and Dispatch.trace_parent (the sending tier's span; see WorkItem.traceParent).
import type { TaskResult, TaskSpec } from '../gen/meshlb/v1/task.js';
import type { Tier } from '../topology/types.js';

/** What a tracer reads of an attempt (a WorkItem, types.ts; named apart so types.ts need not be imported here). */
export interface TracedAttempt {
  readonly taskId: string;
  readonly attempt: number;
  readonly spec: TaskSpec;
  /** The Dispatch it arrived as (forwarded work): its trace_parent is the sending tier's span. */
  readonly wire: { readonly traceParent: string } | undefined;
  readonly origin: { readonly type: 'home' | 'parent' | 'child' };
  readonly via:
    | { readonly type: 'child'; readonly cell: string }
    | { readonly type: 'agent'; readonly agentId: string }
    | { readonly type: 'parent' }
    | undefined;
  readonly sentMs: number;
  readonly arrivedMs: number;
  /** This cell's span for the attempt, once sent on ('' before). */
  readonly traceParent: string;
}

/** The spans of one submit call at the home: started per new task, ended when the call is answered. */
export interface SubmitTrace {
  /** Start the submit span of a task about to be accepted: the spec it returns names that span. */
  start(taskId: string, spec: TaskSpec): TaskSpec;
  /** The call was answered (with `err`, it failed): end every span started. */
  end(err?: unknown): void;
}

export interface CellTracer {
  /** False only for NO_TRACER: the hooks test this first. */
  readonly enabled: boolean;
  /** A submit call at this (home) cell. */
  submits(): SubmitTrace;
  /**
   * An attempt leaves this cell (to a child, an agent, or up to the parent):
   * its span here, from when it arrived (or, at its home, was picked) until
   * now. Returns the traceparent the Dispatch carries on.
   */
  dispatched(item: TracedAttempt, nowMs: number): string;
  /** An attempt's result came back through this cell (the item's traceParent names its span here). */
  resultBack(item: TracedAttempt, r: TaskResult, nowMs: number): void;
}

/** What a tracer knows of its cell. */
export interface TracedCell {
  readonly path: string;
  readonly tier: Tier;
  readonly replicaId: string;
}

/** Builds a cell's tracer; called once by the Cell constructor. */
export type TracerFactory = (cell: TracedCell) => CellTracer;

const NO_SUBMIT: SubmitTrace = { start: (_id, spec) => spec, end: () => undefined };

export const NO_TRACER: CellTracer = {
  enabled: false,
  submits: () => NO_SUBMIT,
  dispatched: () => '',
  resultBack: () => undefined,
};
