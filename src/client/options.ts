// What a MeshClient can be told (MeshClientOptions, per-call CallOpts) and
// what a submit answers: the SDK's public shapes, apart from the behaviour in
// client.ts so that file fits in a head and the shapes read on their own.
// client.ts re-exports them; src/client/index.ts and src/index.ts name them.
import type { ChannelCredentials, ChannelOptions } from '@grpc/grpc-js';
import type { Context, Tracer } from '@opentelemetry/api';
import type { TaskState } from '../gen/meshlb/v1/task.js';
import type { SubmitRetryOptions } from './retry.js';
import type { SubmitCoalesceOptions } from './submit-coalescer.js';
import type { SharedSubmitOptions } from './shared-submit.js';
import type { ResultStreamOptions } from './result-stream.js';
import type { TaskStateName } from './spec.js';
import type { CallerSecurity } from '../security/caller.js';

export interface RetryExhaustedOptions {
  /** Max retries of one call (default 5). */
  maxRetries?: number;
  /** Wait used when the server gave no hint (ms, default 50, doubling with jitter). */
  fallbackMs?: number;
}

export interface MeshClientOptions {
  /** host:port of any replica, or several (tried in turn on UNAVAILABLE for safe calls). */
  address: string | readonly string[];
  /** Deadline of each call unless given per call (default 10 s). */
  deadlineMs?: number;
  /** Max gRPC message size both ways (default 4 MiB). */
  maxMessageBytes?: number;
  credentials?: ChannelCredentials;
  /**
   * TLS to the replicas (docs/security.md): `true` for the system's roots, or
   * a CA (and a client certificate) as files, re-read when they change, or
   * PEM. Default plaintext. Ignored when `credentials` is given.
   */
  tls?: CallerSecurity['tls'];
  /** A bearer token sent with every call (a static token or a JWT, or a function for refreshing ones); needs tls. */
  token?: CallerSecurity['token'];
  channelOptions?: ChannelOptions;
  /** Opt-in: retry RESOURCE_EXHAUSTED after the server's retry hint. */
  retryResourceExhausted?: boolean | RetryExhaustedOptions;
  /** Leader redirects followed per call (default 3). */
  maxRedirects?: number;
  /**
   * Give every task submitted without an idempotency key a random 128-bit one
   * (32 hex digits), so any submit can be repeated safely (default true).
   */
  autoIdempotencyKey?: boolean;
  /**
   * Repeat a submit whose outcome is unknown (DEADLINE_EXCEEDED, UNAVAILABLE,
   * CANCELLED, a reset stream) with the same keys: on by default for submits
   * whose tasks all carry a key; false turns it off.
   */
  submitRetry?: SubmitRetryOptions | false;
  /**
   * Coalesce single `submit` calls into SubmitBatch calls (docs/sdk.md,
   * "Waiting per task"): a submit made while none is in flight leaves at once,
   * one made while others are in flight waits up to `windowMs` (default 2) for
   * others, up to `maxBatch` (default 1000). On by default; false turns it off.
   * Submits under a tracer are never coalesced (each keeps its span).
   */
  submitCoalesce?: SubmitCoalesceOptions | boolean;
  /**
   * Single `submit` calls on one long-lived SubmitStream per client (default
   * on; docs/sdk.md, "Waiting per task"): `maxInFlight` (default 1000; more
   * wait in the client), `lingerMs` (default 250: an idle stream stays open
   * this long). Refusals, retries and redirects answer as a unary Submit's
   * would. A cell without SubmitStream, a tracer, or false: the unary path
   * (coalesced unless `submitCoalesce: false`).
   */
  sharedSubmit?: SharedSubmitOptions | boolean;
  /**
   * waitForResult over one shared WatchMany stream per client (default on):
   * `maxIdsPerStream` (default 10,000; more open another stream), `lingerMs`
   * (default 250: an idle stream stays open this long for the next wait).
   * false: one Watch stream per waited task, as before.
   */
  sharedWatch?: ResultStreamOptions | boolean;
  /** Random source for retry jitter. */
  random?: () => number;
  /**
   * Trace submits (docs/operations.md, "Traces"): a span per Submit or
   * SubmitBatch call, the child of the call's context, which its tasks then
   * carry. Unset: no span; the tasks still carry the caller's span if the
   * context has one.
   */
  tracer?: Tracer;
}

export interface CallOpts {
  /** This call's deadline (ms from now). */
  deadlineMs?: number;
  /**
   * Submits: the trace the tasks continue (an OpenTelemetry Context holding
   * the caller's span). Default: OpenTelemetry's active context.
   */
  context?: Context;
}

export interface SubmitResult {
  taskId: string;
  /** True when the idempotency key named an existing task. */
  existing: boolean;
  state: TaskState;
  /** The state by name, e.g. 'queued'. */
  stateName: TaskStateName;
}
