// Whether and where a process traces, from its flags and environment: light
// enough to read on every start (no OpenTelemetry SDK is loaded here; setup.ts
// loads it once tracing is on). The default is off.
import type { SpanExporter } from '@opentelemetry/sdk-trace-base';

export interface TracingOptions {
  /**
   * Where spans go: 'otlp' (OTLP over HTTP, JSON encoding, to `endpoint`) or
   * 'none' (tracing off: no provider is made). Tests pass a SpanExporter (an
   * InMemorySpanExporter), exported span by span.
   */
  readonly exporter: 'none' | 'otlp' | SpanExporter;
  /**
   * OTLP/HTTP endpoint: a base (http://collector:4318, /v1/traces is added) or
   * the full traces URL. Unset: the exporter's own environment
   * (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, OTEL_EXPORTER_OTLP_ENDPOINT), else
   * http://localhost:4318/v1/traces.
   */
  readonly endpoint?: string;
  /** Fraction of new traces recorded (0-1, default 1); a task that comes with a trace follows its sampled flag. */
  readonly sampleRatio?: number;
  /** service.name of the spans (default: OTEL_SERVICE_NAME, else "meshlb"). */
  readonly serviceName?: string;
  /** More resource attributes (e.g. service.instance.id). */
  readonly attributes?: Readonly<Record<string, string>>;
}

/** The traces URL for an endpoint: a bare base gets /v1/traces (as OTEL_EXPORTER_OTLP_ENDPOINT does). */
export function tracesUrl(endpoint: string): string {
  const u = new URL(endpoint);
  if (u.pathname === '/' || u.pathname === '') u.pathname = '/v1/traces';
  return u.toString();
}

/**
 * Tracing options from a command's flags and the environment, flags first:
 * --otlp-endpoint / MESHLB_OTLP_ENDPOINT turn OTLP on; so does
 * OTEL_TRACES_EXPORTER=otlp (with the exporter's own OTEL_EXPORTER_OTLP_*
 * endpoint variables). Anything else is 'none'. A bad URL or ratio throws
 * RangeError naming it.
 */
export function tracingFromEnv(
  flags: { otlpEndpoint?: string; traceSample?: number },
  env: NodeJS.ProcessEnv = process.env,
): TracingOptions {
  const endpoint = flags.otlpEndpoint || env.MESHLB_OTLP_ENDPOINT || undefined;
  if (endpoint !== undefined && !/^https?:$/.test(URL.canParse(endpoint) ? new URL(endpoint).protocol : '')) {
    throw new RangeError(`the OTLP endpoint must be an http(s) URL such as http://127.0.0.1:4318, not "${endpoint}"`);
  }
  const sampleRatio = flags.traceSample ?? sampleFrom(env.MESHLB_TRACE_SAMPLE);
  const on = endpoint !== undefined || env.OTEL_TRACES_EXPORTER === 'otlp';
  return {
    exporter: on ? 'otlp' : 'none',
    ...(endpoint !== undefined ? { endpoint } : {}),
    ...(sampleRatio !== undefined ? { sampleRatio } : {}),
  };
}

function sampleFrom(v: string | undefined): number | undefined {
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0 || n > 1) {
    throw new RangeError(`MESHLB_TRACE_SAMPLE must be a number from 0 to 1, not "${v}"`);
  }
  return n;
}
