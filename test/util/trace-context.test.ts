// W3C traceparent as tasks carry it: parsed per the spec (anything malformed
// is no context, never an error), formatted back, and the cheap trace id read
// that log lines use. Plus the bounds a submitted spec's trace fields keep,
// and how a process decides to trace (src/trace/config.ts).
import { trace, TraceFlags } from '@opentelemetry/api';
import { describe, expect, it } from 'vitest';
import { TaskSpec } from '../../src/gen/meshlb/v1/task.js';
import { validateSpec } from '../../src/mesh/task-validate.js';
import { tracesUrl, tracingFromEnv } from '../../src/trace/config.js';
import {
  contextOf,
  formatTraceParent,
  parseTraceParent,
  taskLogFields,
  traceIdOf,
} from '../../src/util/trace-context.js';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const SPAN = '00f067aa0ba902b7';
const TP = `00-${TRACE}-${SPAN}-01`;

describe('traceparent', () => {
  it('parses a valid one, with its tracestate, and formats it back', () => {
    const sc = parseTraceParent(TP, 'congo=t61rcWkgMzE');
    expect(sc).toMatchObject({ traceId: TRACE, spanId: SPAN, traceFlags: TraceFlags.SAMPLED, isRemote: true });
    expect(sc!.traceState!.get('congo')).toBe('t61rcWkgMzE');
    expect(formatTraceParent(sc!)).toBe(TP);
    expect(formatTraceParent({ ...sc!, traceFlags: TraceFlags.NONE })).toBe(`00-${TRACE}-${SPAN}-00`);
  });

  it.each([
    ['empty', ''],
    ['too short', `00-${TRACE}-${SPAN}-0`],
    ['upper case', TP.toUpperCase()],
    ['version ff', `ff-${TRACE}-${SPAN}-01`],
    ['version 00 with more fields', `${TP}-extra`],
    ['zero trace id', `00-${'0'.repeat(32)}-${SPAN}-01`],
    ['zero span id', `00-${TRACE}-${'0'.repeat(16)}-01`],
    ['not hex', `00-${TRACE.replace('4', 'g')}-${SPAN}-01`],
  ])('is no context when %s', (_what, tp) => {
    expect(parseTraceParent(tp)).toBeUndefined();
    expect(trace.getSpanContext(contextOf(tp))).toBeUndefined();
  });

  it('accepts a later version with more fields (keeping what it knows)', () => {
    expect(parseTraceParent(`01-${TRACE}-${SPAN}-01-what-comes-next`)).toMatchObject({ traceId: TRACE, spanId: SPAN });
  });

  it('gives the trace id to log lines, and nothing for no trace', () => {
    expect(traceIdOf(TP)).toBe(TRACE);
    expect(traceIdOf('')).toBe('');
    expect(taskLogFields('t1', TP)).toEqual({ taskId: 't1', traceId: TRACE });
    expect(taskLogFields('t1', '')).toEqual({ taskId: 't1' });
  });

  it('bounds trace_parent and trace_state on a submitted spec, but takes a malformed one', () => {
    const ok = (p: Partial<TaskSpec>) =>
      validateSpec(TaskSpec.fromPartial({ kind: 'k', ...p }), { maxPayloadBytes: 1024, maxAgentSlots: 10_000 }, 0);
    expect(ok({ traceParent: 'not a traceparent', traceState: 'a=1' })).toBe('');
    expect(ok({ traceParent: 'x'.repeat(257) })).toMatch(/task\.trace_parent.*256/);
    expect(ok({ traceState: 'x'.repeat(513) })).toMatch(/task\.trace_state.*512/);
  });
});

describe('tracing configuration', () => {
  it('is off unless an endpoint or OTEL_TRACES_EXPORTER=otlp asks', () => {
    expect(tracingFromEnv({}, {})).toEqual({ exporter: 'none' });
    expect(tracingFromEnv({}, { OTEL_TRACES_EXPORTER: 'none' })).toEqual({ exporter: 'none' });
    expect(tracingFromEnv({}, { OTEL_TRACES_EXPORTER: 'otlp' })).toEqual({ exporter: 'otlp' });
    expect(tracingFromEnv({}, { MESHLB_OTLP_ENDPOINT: 'http://c:4318', MESHLB_TRACE_SAMPLE: '0.5' })).toEqual({
      exporter: 'otlp',
      endpoint: 'http://c:4318',
      sampleRatio: 0.5,
    });
    // Flags first.
    expect(
      tracingFromEnv({ otlpEndpoint: 'http://flag:4318', traceSample: 1 }, { MESHLB_OTLP_ENDPOINT: 'http://env:4318' }),
    ).toEqual({ exporter: 'otlp', endpoint: 'http://flag:4318', sampleRatio: 1 });
  });

  it('refuses a bad endpoint or ratio, naming it', () => {
    expect(() => tracingFromEnv({ otlpEndpoint: 'collector:4318' }, {})).toThrow(
      /OTLP endpoint must be an http\(s\) URL/,
    );
    expect(() => tracingFromEnv({}, { MESHLB_OTLP_ENDPOINT: 'not a url' })).toThrow(/not a url/);
    expect(() => tracingFromEnv({}, { MESHLB_TRACE_SAMPLE: '2' })).toThrow(/MESHLB_TRACE_SAMPLE/);
  });

  it('sends to /v1/traces of a bare endpoint, and to a full URL as it is', () => {
    expect(tracesUrl('http://127.0.0.1:4318')).toBe('http://127.0.0.1:4318/v1/traces');
    expect(tracesUrl('http://127.0.0.1:4318/')).toBe('http://127.0.0.1:4318/v1/traces');
    expect(tracesUrl('https://otel.example/api/traces')).toBe('https://otel.example/api/traces');
  });
});
