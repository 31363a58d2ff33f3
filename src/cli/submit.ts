// `meshlb submit`: a bounded load generator. Submits up to `tasks` tasks (or for
// `durationS`), paced at `rate` per second with at most `concurrency` in flight,
// optionally waits for every result, and reports counts, throughput and latency
// percentiles. It always stops by itself.
//
// Each task is submitted and waited for on its own, as a user's code would:
// the client SDK sends the submits on one shared SubmitStream (or, with
// `sharedSubmit: false`, coalesces them into SubmitBatch calls: a submit made
// while others are in flight waits up to `coalesceWindowMs` for company) and
// waits for every result on one shared WatchMany stream; `coalesce: false`
// (which also turns the shared stream off) and `sharedWatch: false` measure
// one Submit and one Watch per task.
import * as hdr from 'hdr-histogram-js';
import { setMaxListeners } from 'node:events';
import { status } from '@grpc/grpc-js';
import { seededRandom } from '../agent/backoff.js';
import { splitAddresses } from './agent-sim.js';
import { progressLines, progressTo } from './progress.js';
import {
  MeshClient,
  MeshClientError,
  TaskState,
  toTaskSpec,
  type DurabilityName,
  type PriorityName,
  type TaskInput,
} from '../client/index.js';
import type { CallerSecurity } from '../security/caller.js';

export interface SubmitLoadOptions {
  /** Any replica (usually the root cell), or several (a list or "h1:p1,h2:p2"). */
  address: string | readonly string[];
  /** Tasks to submit (default 1000). */
  tasks?: number;
  /** Submissions per second; 0/absent = as fast as admitted. */
  rate?: number;
  /** Max tasks in flight: submitted and (when waiting) not yet finished (default 256). */
  concurrency?: number;
  /** Task kind (default 'default'). */
  kind?: string;
  payloadBytes?: number;
  priority?: PriorityName;
  durability?: DurabilityName;
  /** Per-attempt task timeout (ms). */
  timeoutMs?: number;
  /** Specs per SubmitBatch call the generator makes itself; 1/absent = one submit per task (coalesced by the client). */
  batch?: number;
  /** Let the client coalesce single submits into SubmitBatch calls (default true; false: one Submit per task). */
  coalesce?: boolean;
  /** Single submits on one shared SubmitStream (default: true unless `coalesce` is false). */
  sharedSubmit?: boolean;
  /** How long a submit made while others are in flight waits for company, ms (default 2). */
  coalesceWindowMs?: number;
  /** Wait for results over one shared WatchMany stream (default true); false: one Watch per task. */
  sharedWatch?: boolean;
  /** Wait for every accepted task's result (default true). */
  wait?: boolean;
  /** How long to wait for results after the last submit (default 30 s). */
  waitMs?: number;
  /** Stop submitting after this many seconds (0/absent = no time bound besides `tasks`). */
  durationS?: number;
  /** The tasks' tenant (default none: a token with one tenant submits for it). */
  tenant?: string;
  /** TLS and a bearer token (docs/security.md); default plaintext. */
  security?: CallerSecurity;
  /** Retry RESOURCE_EXHAUSTED after the server's hint (default true); still-rejected tasks count as rejected. */
  retryExhausted?: boolean;
  seed?: number;
  /** One JSON object on stdout instead of the text summary. */
  json?: boolean;
  /** Progress line period on stderr, ms (default 1000; 0 = none). */
  statsIntervalMs?: number;
  signal?: AbortSignal;
  stdout?: (line: string) => void;
  stderr?: (line: string) => void;
}

export interface LatencySummary {
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

export interface SubmitSummary {
  submitted: number;
  accepted: number;
  rejected: number;
  rejected_by_code: Record<string, number>;
  /** The first message seen per status code (rejections and failed waits), to tell why. */
  first_errors: Record<string, string>;
  completed: number;
  failed: number;
  cancelled: number;
  dead_lettered: number;
  /** Accepted but no terminal state seen by the end of the wait. */
  unfinished: number;
  elapsed_s: number;
  submit_rate_per_s: number;
  /** Finished tasks per second when waiting, else accepted per second. */
  throughput_per_s: number;
  /** Submit-to-result when waiting, else the submit call's latency. */
  latency_ms: LatencySummary;
  submit_latency_ms: LatencySummary;
  seed: number;
}

/** The default coalescing window of `meshlb submit` (ms), as the SDK's. */
export const COALESCE_WINDOW_MS = 2;

function histogram() {
  // Microseconds, 1 us .. 1 h, 3 significant digits.
  return hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 3_600_000_000,
    numberOfSignificantValueDigits: 3,
  });
}

function summarize(h: hdr.Histogram): LatencySummary {
  if (h.totalCount === 0) return { p50: 0, p90: 0, p99: 0, max: 0 };
  const ms = (us: number) => Math.round(us) / 1000;
  return {
    p50: ms(h.getValueAtPercentile(50)),
    p90: ms(h.getValueAtPercentile(90)),
    p99: ms(h.getValueAtPercentile(99)),
    max: ms(h.maxValue),
  };
}

const recordUs = (h: hdr.Histogram, startMs: number) =>
  h.recordValue(Math.max(1, Math.round((performance.now() - startMs) * 1000)));

/** Run the load; returns its summary (the CLI prints it). */
export async function submitLoad(opts: SubmitLoadOptions): Promise<SubmitSummary> {
  const total = opts.tasks ?? 1000;
  const rate = opts.rate ?? 0;
  const concurrency = Math.max(1, opts.concurrency ?? 256);
  const batch = Math.max(1, opts.batch ?? 1);
  const wait = opts.wait ?? true;
  const waitMs = opts.waitMs ?? 30_000;
  const seed = opts.seed ?? 1;
  const rnd = seededRandom(seed);
  const progress = opts.stderr ? progressLines(opts.stderr) : progressTo(process.stderr);
  const err = (l: string): void => {
    progress.done();
    (opts.stderr ?? ((line: string) => process.stderr.write(line + '\n')))(l);
  };
  const payload = Buffer.alloc(opts.payloadBytes ?? 0);
  for (let i = 0; i < payload.length; i++) payload[i] = Math.floor(rnd() * 256);
  const spec: TaskInput = {
    kind: opts.kind ?? 'default',
    ...(opts.tenant !== undefined ? { tenant: opts.tenant } : {}),
    payload,
    priority: opts.priority,
    durability: opts.durability,
    timeoutMs: opts.timeoutMs,
  };
  toTaskSpec(spec); // bad options (priority, durability) fail here, before any traffic
  const client = new MeshClient({
    address: splitAddresses(opts.address),
    ...opts.security,
    retryResourceExhausted: opts.retryExhausted ?? true,
    random: seededRandom(seed + 1),
    submitCoalesce: opts.coalesce === false ? false : { windowMs: opts.coalesceWindowMs ?? COALESCE_WINDOW_MS },
    sharedWatch: opts.sharedWatch ?? true,
    sharedSubmit: opts.sharedSubmit ?? opts.coalesce !== false,
  });

  const s: SubmitSummary = {
    submitted: 0,
    accepted: 0,
    rejected: 0,
    rejected_by_code: {},
    first_errors: {},
    completed: 0,
    failed: 0,
    cancelled: 0,
    dead_lettered: 0,
    unfinished: 0,
    elapsed_s: 0,
    submit_rate_per_s: 0,
    throughput_per_s: 0,
    latency_ms: { p50: 0, p90: 0, p99: 0, max: 0 },
    submit_latency_ms: { p50: 0, p90: 0, p99: 0, max: 0 },
    seed,
  };
  const e2e = histogram();
  const submitH = histogram();

  const t0 = performance.now();
  const stopSubmitAt = opts.durationS && opts.durationS > 0 ? t0 + opts.durationS * 1000 : Infinity;
  let inFlight = 0;
  let slotFreed: (() => void) | undefined;
  const freeSlot = (n: number) => {
    inFlight -= n;
    const f = slotFreed;
    slotFreed = undefined;
    f?.();
  };
  const waiters = new Set<Promise<void>>();
  let fatal: MeshClientError | undefined;

  const noteError = (code: number, message: string) => {
    const name = status[code] ?? String(code);
    s.first_errors[name] ??= message;
  };
  const reject = (code: number, n: number, message: string) => {
    noteError(code, message);
    s.rejected += n;
    const name = status[code] ?? String(code);
    s.rejected_by_code[name] = (s.rejected_by_code[name] ?? 0) + n;
    // Not being able to reach the server at all is not load data: stop.
    if (code === status.UNAVAILABLE && s.accepted === 0)
      fatal ??= new MeshClientError(code, `cannot reach the server: ${message}`);
  };

  const follow = (taskId: string, startedAt: number) => {
    const p = client
      .waitForResult(taskId, { signal: waitAbort.signal })
      .then((t) => {
        recordUs(e2e, startedAt);
        if (t.state === TaskState.TASK_STATE_COMPLETED) s.completed++;
        else if (t.state === TaskState.TASK_STATE_FAILED) s.failed++;
        else if (t.state === TaskState.TASK_STATE_CANCELLED) s.cancelled++;
        else if (t.state === TaskState.TASK_STATE_DEAD_LETTERED) s.dead_lettered++;
      })
      .catch((e: unknown) => {
        const err = MeshClientError.from(e);
        if (!waitAbort.signal.aborted) noteError(err.code, `waiting for ${taskId}: ${err.details}`);
        s.unfinished++;
      })
      .finally(() => {
        waiters.delete(p);
        freeSlot(1);
      });
    waiters.add(p);
  };
  // Results are awaited until waitMs after the last submission (or until the caller aborts).
  const waitAbort = new AbortController();
  setMaxListeners(0, waitAbort.signal); // one listener per awaited task
  const onOuterAbort = () => waitAbort.abort();
  opts.signal?.addEventListener('abort', onOuterAbort, { once: true });

  const sendUnit = async (n: number) => {
    const startedAt = performance.now();
    s.submitted += n;
    try {
      if (n === 1 && batch === 1) {
        const r = await client.submit(spec);
        recordUs(submitH, startedAt);
        s.accepted++;
        if (wait) follow(r.taskId, startedAt);
        else recordUs(e2e, startedAt);
        freeSlot(wait ? 0 : 1);
      } else {
        const items = await client.submitBatch(Array.from({ length: n }, () => spec));
        recordUs(submitH, startedAt);
        let done = 0;
        for (const it of items) {
          if (it.ok) {
            s.accepted++;
            if (wait) follow(it.taskId, startedAt);
            else {
              recordUs(e2e, startedAt);
              done++;
            }
          } else {
            reject(it.code, 1, it.message);
            done++;
          }
        }
        freeSlot(done);
      }
    } catch (e) {
      const err = MeshClientError.from(e);
      reject(err.code, n, err.details);
      freeSlot(n);
    }
  };

  const statsEvery = opts.statsIntervalMs ?? 1000;
  const ticker =
    statsEvery > 0
      ? setInterval(() => {
          const el = (performance.now() - t0) / 1000;
          progress.line(
            `submit ${el.toFixed(1)}s submitted ${s.submitted} accepted ${s.accepted} rejected ${s.rejected} completed ${s.completed} failed ${s.failed} in-flight ${inFlight}`,
          );
        }, statsEvery)
      : undefined;

  try {
    let sent = 0;
    while (sent < total && !fatal && !opts.signal?.aborted) {
      const now = performance.now();
      if (now >= stopSubmitAt) break;
      if (rate > 0) {
        const due = t0 + (sent / rate) * 1000;
        if (due > now) await sleep(due - now);
      }
      const n = Math.min(batch, total - sent);
      // A unit bigger than the concurrency still goes, alone.
      while (inFlight > 0 && inFlight + n > concurrency) await new Promise<void>((r) => (slotFreed = r));
      inFlight += n;
      sent += n;
      void sendUnit(n);
      // Yield now and then so responses are processed while we pace.
      if (rate === 0 && sent % (batch * 64) === 0) await new Promise((r) => setImmediate(r));
    }
    // Let the last submissions land, then wait for results within waitMs.
    while (inFlight > waiters.size) await new Promise<void>((r) => (slotFreed = r));
    if (wait && waiters.size > 0) {
      const timer = setTimeout(() => waitAbort.abort(), waitMs);
      await Promise.all([...waiters]);
      clearTimeout(timer);
    }
  } finally {
    opts.signal?.removeEventListener('abort', onOuterAbort);
    if (ticker) clearInterval(ticker);
    progress.done();
    client.close();
  }

  const elapsed = (performance.now() - t0) / 1000;
  s.elapsed_s = Math.round(elapsed * 1000) / 1000;
  s.submit_rate_per_s = elapsed > 0 ? Math.round(s.accepted / elapsed) : 0;
  const finished = s.completed + s.failed + s.cancelled + s.dead_lettered;
  s.throughput_per_s = elapsed > 0 ? Math.round((wait ? finished : s.accepted) / elapsed) : 0;
  s.latency_ms = summarize(e2e);
  s.submit_latency_ms = summarize(submitH);
  if (fatal) err(`submit: ${fatal.message}`);
  return s;
}

/** The CLI entry: returns 0 when every accepted task was accounted for, 1 otherwise (or nothing could be submitted). */
export async function runSubmit(opts: SubmitLoadOptions): Promise<number> {
  const out = opts.stdout ?? ((l: string) => process.stdout.write(l + '\n'));
  const err = opts.stderr ?? ((l: string) => process.stderr.write(l + '\n'));
  let s: SubmitSummary;
  try {
    s = await submitLoad(opts);
  } catch (e) {
    if (e instanceof TypeError) {
      err(`submit: ${e.message}`);
      return 2;
    }
    throw e;
  }
  if (opts.json) out(JSON.stringify(s));
  else {
    out(
      `submitted ${s.submitted}, accepted ${s.accepted}, rejected ${s.rejected}` +
        (s.rejected
          ? ` (${Object.entries(s.rejected_by_code)
              .map(([k, v]) => `${k} ${v}`)
              .join(', ')})`
          : '') +
        `, completed ${s.completed}, failed ${s.failed}, cancelled ${s.cancelled}, dead-lettered ${s.dead_lettered}, unfinished ${s.unfinished}`,
    );
    out(
      `${s.elapsed_s}s, ${s.throughput_per_s} tasks/s; latency p50 ${s.latency_ms.p50} ms, p99 ${s.latency_ms.p99} ms, max ${s.latency_ms.max} ms` +
        ` (submit p50 ${s.submit_latency_ms.p50} ms, p99 ${s.submit_latency_ms.p99} ms)`,
    );
  }
  if (s.accepted === 0 && s.submitted > 0) return 1;
  const ended = s.completed + s.failed + s.cancelled + s.dead_lettered;
  if (s.unfinished > 0 && ended === 0) {
    // Nothing ran at all: most often no agent takes this kind (they wait for one, up to the mesh's limit).
    err(
      `submit: none of the ${s.unfinished} tasks finished within --wait-ms; is an agent of kind ` +
        `"${opts.kind ?? 'default'}" connected? (agent-sim --kinds and submit --kind must name the same kind)`,
    );
  }
  return s.unfinished > 0 ? 1 : 0;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
