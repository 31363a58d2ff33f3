// The client's side of a task's trace: a submit sets TaskSpec.trace_parent so
// the mesh (and the agent) continue the caller's trace. With a tracer
// (MeshClientOptions.tracer) the call gets its own span, a child of the
// caller's context, and the tasks carry that span; without one they carry the
// caller's span, if the context has one. A trace_parent given in the input
// wins. With neither a tracer nor a traced context nothing is made per task.
import { context, isSpanContextValid, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import type { Context, Span, Tracer } from '@opentelemetry/api';
import type { TaskSpec } from '../gen/meshlb/v1/task.js';
import { ATTR, formatTraceParent, SPAN } from '../util/trace-context.js';

/** Give specs without a trace the span of `ctx`, if it has one. */
function propagate(specs: readonly TaskSpec[], ctx: Context): void {
  const sc = trace.getSpanContext(ctx);
  if (sc === undefined || !isSpanContextValid(sc)) return;
  let tp: string | undefined;
  for (const spec of specs) {
    if (spec.traceParent) continue;
    tp ??= formatTraceParent(sc);
    spec.traceParent = tp;
    spec.traceState = sc.traceState?.serialize() ?? '';
  }
}

/**
 * Before a submit call: its span (with a tracer), and the specs' trace fields.
 * `parent` is the caller's context (default: OpenTelemetry's active one).
 */
export function startSubmit(
  tracer: Tracer | undefined,
  parent: Context | undefined,
  specs: readonly TaskSpec[],
): Span | undefined {
  const ctx = parent ?? context.active();
  if (tracer === undefined) {
    propagate(specs, ctx);
    return undefined;
  }
  const first = specs[0];
  const span = tracer.startSpan(
    SPAN.clientSubmit,
    {
      kind: SpanKind.CLIENT,
      attributes: specs.length === 1 && first ? { [ATTR.kind]: first.kind } : { 'meshlb.tasks': specs.length },
    },
    ctx,
  );
  propagate(specs, trace.setSpan(ctx, span));
  return span;
}

/** After a submit call: end its span (naming the task, for one) when `answer` settles. */
export function endSubmit<T extends { taskId: string } | object>(
  span: Span | undefined,
  answer: Promise<T>,
): Promise<T> {
  if (span === undefined) return answer;
  return answer.then(
    (res) => {
      if ('taskId' in res && typeof res.taskId === 'string') span.setAttribute(ATTR.taskId, res.taskId);
      span.end();
      return res;
    },
    (err: unknown) => {
      span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
      span.end();
      throw err;
    },
  );
}
