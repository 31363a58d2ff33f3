// The OpenTelemetry tracer provider a process traces with, built from its
// TracingOptions (config.ts). Loaded only once tracing is on: the CLI imports
// this module only then, and a cell without a tracer runs NO_TRACER
// (src/mesh/tracer.ts).
import type { Tracer } from '@opentelemetry/api';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  BasicTracerProvider,
  BatchSpanProcessor,
  ParentBasedSampler,
  SimpleSpanProcessor,
  TraceIdRatioBasedSampler,
} from '@opentelemetry/sdk-trace-base';
import { tracesUrl, type TracingOptions } from './config.js';

export const TRACER_NAME = 'meshlb';

export interface Tracing {
  readonly tracer: Tracer;
  /** Export what is buffered now (tests, and before a planned exit). */
  flush(): Promise<void>;
  /** Flush and stop. */
  shutdown(): Promise<void>;
}

/** A tracer provider for `opts`, or undefined when the exporter is 'none'. Never registered globally. */
export async function startTracing(opts: TracingOptions): Promise<Tracing | undefined> {
  if (opts.exporter === 'none') return undefined;
  let processor;
  if (opts.exporter === 'otlp') {
    const { OTLPTraceExporter } = await import('@opentelemetry/exporter-trace-otlp-http');
    const url = opts.endpoint ? tracesUrl(opts.endpoint) : undefined;
    processor = new BatchSpanProcessor(new OTLPTraceExporter(url ? { url } : {}));
  } else {
    processor = new SimpleSpanProcessor(opts.exporter);
  }
  const ratio = opts.sampleRatio ?? 1;
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({
      'service.name': opts.serviceName ?? (process.env.OTEL_SERVICE_NAME || TRACER_NAME),
      ...opts.attributes,
    }),
    sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(ratio) }),
    spanProcessors: [processor],
  });
  return {
    tracer: provider.getTracer(TRACER_NAME),
    flush: () => provider.forceFlush(),
    shutdown: () => provider.shutdown(),
  };
}
