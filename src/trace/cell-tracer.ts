// The mesh's CellTracer (src/mesh/tracer.ts) on OpenTelemetry: the spans a
// cell makes for the tasks crossing it, each the child of the context the
// task's wire messages carry. Built only when tracing is on; a cell without it
// runs NO_TRACER and never reaches this module.
//
// Times: a span starts at the time the cell recorded (arrival, pick, sent:
// its Scheduler's clock, Date.now for a real cell) and ends at `nowMs` from
// the same clock, so one trace never mixes clocks within a tier.
import { SpanKind, SpanStatusCode, type Attributes, type Span, type Tracer } from '@opentelemetry/api';
import { MeshFailure, ResultStatus, type TaskResult, type TaskSpec } from '../gen/meshlb/v1/task.js';
import type { CellTracer, SubmitTrace, TracedAttempt, TracedCell, TracerFactory } from '../mesh/tracer.js';
import { clip } from '../util/limits.js';
import { ATTR, contextOf, formatTraceParent, SPAN } from '../util/trace-context.js';

/** A TracerFactory for CellOptions.tracer: every cell's spans through `tracer`. */
export function cellTracer(tracer: Tracer): TracerFactory {
  return (cell) => new OtelCellTracer(tracer, cell);
}

class OtelCellTracer implements CellTracer {
  readonly enabled = true;
  /** The attributes every span of this cell carries. */
  private readonly cellAttrs: Attributes;

  constructor(
    private readonly tracer: Tracer,
    cell: TracedCell,
  ) {
    this.cellAttrs = { [ATTR.cell]: cell.path, [ATTR.tier]: cell.tier, [ATTR.replica]: cell.replicaId };
  }

  submits(): SubmitTrace {
    return new Submits(this.tracer, this.cellAttrs);
  }

  dispatched(item: TracedAttempt, nowMs: number): string {
    const spec = item.spec;
    // The sending tier's span, else (at the home, or from a tier that does not trace) the task's own context.
    const parent = contextOf(item.wire?.traceParent || spec.traceParent, spec.traceState);
    const via = item.via;
    const span = this.tracer.startSpan(
      SPAN.dispatch,
      {
        kind: SpanKind.PRODUCER,
        // At the home the attempt is picked from the queue (sentMs); elsewhere it waited since it arrived.
        startTime: item.origin.type === 'home' ? item.sentMs : item.arrivedMs,
        attributes: {
          ...this.cellAttrs,
          ...taskAttrs(item.taskId, spec),
          [ATTR.attempt]: item.attempt,
          [ATTR.via]: via?.type ?? '',
          [ATTR.to]: via?.type === 'child' ? via.cell : via?.type === 'agent' ? via.agentId : '',
        },
      },
      parent,
    );
    span.end(Math.max(nowMs, item.sentMs));
    return formatTraceParent(span.spanContext());
  }

  resultBack(item: TracedAttempt, r: TaskResult, nowMs: number): void {
    if (item.traceParent === '') return; // sent on before this cell traced
    const span = this.tracer.startSpan(
      SPAN.result,
      {
        kind: SpanKind.CONSUMER,
        startTime: item.sentMs,
        attributes: {
          ...this.cellAttrs,
          [ATTR.taskId]: item.taskId,
          [ATTR.attempt]: item.attempt,
          [ATTR.status]: statusName(r.status),
          ...(r.agentId ? { [ATTR.agentId]: r.agentId } : {}),
          ...(r.nodeCell ? { [ATTR.node]: r.nodeCell } : {}),
          ...(r.meshFailure !== MeshFailure.MESH_FAILURE_UNSPECIFIED
            ? { [ATTR.meshFailure]: meshFailureName(r.meshFailure) }
            : {}),
        },
      },
      contextOf(item.traceParent),
    );
    if (r.status !== ResultStatus.RESULT_STATUS_OK)
      span.setStatus({ code: SpanStatusCode.ERROR, message: clip(r.error) });
    span.end(Math.max(nowMs, item.sentMs));
  }
}

/** The submit spans of one call at the home (started per new task, ended together when it is answered). */
class Submits implements SubmitTrace {
  private readonly spans: Span[] = [];

  constructor(
    private readonly tracer: Tracer,
    private readonly cellAttrs: Attributes,
  ) {}

  start(taskId: string, spec: TaskSpec): TaskSpec {
    const span = this.tracer.startSpan(
      SPAN.submit,
      { kind: SpanKind.SERVER, attributes: { ...this.cellAttrs, ...taskAttrs(taskId, spec) } },
      contextOf(spec.traceParent, spec.traceState),
    );
    this.spans.push(span);
    return { ...spec, traceParent: formatTraceParent(span.spanContext()) };
  }

  end(err?: unknown): void {
    for (const span of this.spans) {
      if (err !== undefined) span.setStatus({ code: SpanStatusCode.ERROR, message: clip(errorText(err)) });
      span.end();
    }
    this.spans.length = 0;
  }
}

function taskAttrs(taskId: string, spec: TaskSpec): Attributes {
  return spec.tenant
    ? { [ATTR.taskId]: taskId, [ATTR.kind]: spec.kind, [ATTR.tenant]: spec.tenant }
    : { [ATTR.taskId]: taskId, [ATTR.kind]: spec.kind };
}

function statusName(s: ResultStatus): string {
  if (s === ResultStatus.RESULT_STATUS_OK) return 'ok';
  if (s === ResultStatus.RESULT_STATUS_FATAL) return 'fatal';
  if (s === ResultStatus.RESULT_STATUS_RATE_LIMITED) return 'rate_limited';
  return 'error';
}

function meshFailureName(f: MeshFailure): string {
  if (f === MeshFailure.MESH_FAILURE_LOST) return 'lost';
  if (f === MeshFailure.MESH_FAILURE_REQUEUE) return 'requeue';
  if (f === MeshFailure.MESH_FAILURE_UNPLACEABLE) return 'unplaceable';
  return 'unknown';
}

function errorText(err: unknown): string {
  if (err instanceof Error) return err.message || err.name;
  return String(err);
}
