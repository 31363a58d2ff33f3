// W3C Trace Context (https://www.w3.org/TR/trace-context/) as tasks carry it:
// TaskSpec.trace_parent / trace_state and Dispatch.trace_parent are plain
// strings on the wire, read and written here for the mesh, the agent SDK and
// the client SDK alike. Parsing follows the spec: anything malformed is no
// context at all (the reader starts a new trace), never an error.
import { createTraceState, ROOT_CONTEXT, trace, TraceFlags, type Context, type SpanContext } from '@opentelemetry/api';

const TRACE_PARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;
const ZERO_TRACE = '0'.repeat(32);
const ZERO_SPAN = '0'.repeat(16);

/** The span context a traceparent names (remote), or undefined when it is empty or malformed. */
export function parseTraceParent(traceParent: string, traceState = ''): SpanContext | undefined {
  if (traceParent.length < 55) return undefined;
  const m = TRACE_PARENT.exec(traceParent);
  if (!m) return undefined;
  const [, version, traceId, spanId, flags, rest] = m;
  // Version ff is invalid; version 00 has exactly four fields; later versions may add more.
  if (version === 'ff' || (version === '00' && rest !== undefined)) return undefined;
  if (traceId === ZERO_TRACE || spanId === ZERO_SPAN) return undefined;
  return {
    traceId: traceId!,
    spanId: spanId!,
    traceFlags: parseInt(flags!, 16) & TraceFlags.SAMPLED,
    isRemote: true,
    ...(traceState ? { traceState: createTraceState(traceState) } : {}),
  };
}

/** "00-<trace id>-<span id>-<flags>" for a span context. */
export function formatTraceParent(sc: SpanContext): string {
  return `00-${sc.traceId}-${sc.spanId}-0${(sc.traceFlags & TraceFlags.SAMPLED).toString(16)}`;
}

/** The trace id a traceparent names, or '' (log lines: no parse, no allocation beyond the substring). */
export function traceIdOf(traceParent: string): string {
  return traceParent.length >= 55 && traceParent.charCodeAt(2) === 45 /* - */ ? traceParent.slice(3, 35) : '';
}

/** An OpenTelemetry context whose parent is the traceparent's span (ROOT_CONTEXT when there is none). */
export function contextOf(traceParent: string, traceState = ''): Context {
  const sc = parseTraceParent(traceParent, traceState);
  return sc ? trace.setSpanContext(ROOT_CONTEXT, sc) : ROOT_CONTEXT;
}

/** The fields a log line about one task carries: its id, and its trace id when it has a trace. */
export function taskLogFields(taskId: string, traceParent: string): { taskId: string; traceId?: string } {
  const traceId = traceIdOf(traceParent);
  return traceId ? { taskId, traceId } : { taskId };
}

/** Span names, one per hop (docs/operations.md, "Traces"). */
export const SPAN = {
  /** The client SDK's submit call. */
  clientSubmit: 'meshlb.client.submit',
  /** Accepting the task at its home cell (validation, the log commit). */
  submit: 'meshlb.submit',
  /** One tier's decision for one attempt: from arrival (at the home: the pick) until sent on. */
  dispatch: 'meshlb.dispatch',
  /** The agent's handler. */
  run: 'meshlb.run',
  /** An attempt's result passing back through a tier: from when that tier sent it on until the result came back. */
  result: 'meshlb.result',
} as const;

/** Attribute keys the spans carry. */
export const ATTR = {
  taskId: 'meshlb.task.id',
  attempt: 'meshlb.task.attempt',
  kind: 'meshlb.task.kind',
  tenant: 'meshlb.task.tenant',
  cell: 'meshlb.cell',
  tier: 'meshlb.tier',
  replica: 'meshlb.replica',
  /** Where a dispatch went: child, agent or parent (a spill-up). */
  via: 'meshlb.dispatch.via',
  /** The child cell or agent id it went to ('' for the parent). */
  to: 'meshlb.dispatch.to',
  /** ok, error, fatal. */
  status: 'meshlb.result.status',
  /** lost, requeue, unplaceable: an attempt the mesh failed itself. */
  meshFailure: 'meshlb.result.mesh_failure',
  agentId: 'meshlb.agent.id',
  node: 'meshlb.node',
} as const;
