// Traces of tasks on OpenTelemetry (docs/operations.md, "Traces"): the cells'
// tracer, the process's exporter setup and its configuration. The SDKs trace
// through @opentelemetry/api alone (AgentOptions.tracer, MeshClientOptions.tracer).
export { cellTracer } from './cell-tracer.js';
export { tracesUrl, tracingFromEnv, type TracingOptions } from './config.js';
export { startTracing, TRACER_NAME, type Tracing } from './setup.js';
