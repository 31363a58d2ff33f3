// Single submits coalesced into SubmitBatch calls, where the caller cannot
// tell: a submit made while none is in flight leaves at the next turn of the
// event loop (no added latency at low rates); one made while others are in
// flight waits up to `windowMs` (default 2 ms) for company, or until
// `maxBatch` are waiting. A group of one goes as a plain Submit.
//
// What each caller sees is what its own Submit would have answered:
// - a spec the cell refuses alone (INVALID_ARGUMENT) rejects only its submit,
//   with the cell's status and message;
// - a new task answers QUEUED (what Submit answers for a new task); a task
//   the idempotency key named already is asked again alone (the same key
//   finds the same task, never a second one), so its state is the cell's;
// - a batch refused as a whole for a tenant (PERMISSION_DENIED) is sent again
//   as single Submits, so only the submits that are refused fail;
// - a batch refused as a whole otherwise (saturation, no leader, a deadline)
//   rejects each submit in it with that error, as each would have been.
// Submits with different deadlines are never grouped together.
import { status } from '@grpc/grpc-js';
import { TaskState, type SubmitBatchItem, type SubmitResponse, type TaskSpec } from '../gen/meshlb/v1/task.js';
import { MeshClientError, RETRY_AFTER_TRAILER } from './errors.js';

/** The coalescing settings (MeshClientOptions.submitCoalesce). */
export interface SubmitCoalesceOptions {
  /** How long a submit made while others are in flight waits for more (ms, default 2). */
  windowMs?: number;
  /** Submits per SubmitBatch (default 1000, the cell's limit per batch is higher). */
  maxBatch?: number;
  /**
   * With single submits cheap (on the shared SubmitStream): submits in flight
   * before a new one waits `windowMs` for company (default 1: any), and the
   * fewest that go as one SubmitBatch (default 2; fewer go one by one).
   */
  busyAt?: number;
  minBatch?: number;
}

export const COALESCE_DEFAULTS: Required<SubmitCoalesceOptions> = {
  windowMs: 2,
  maxBatch: 1000,
  busyAt: 1,
  minBatch: 2,
};

export interface CoalescerPorts {
  /** One Submit (with the client's redirects and retries). */
  one(spec: TaskSpec, deadlineMs: number | undefined): Promise<SubmitResponse>;
  /** One SubmitBatch (with the client's redirects and retries). */
  batch(specs: TaskSpec[], deadlineMs: number | undefined): Promise<SubmitBatchItem[]>;
}

interface Waiting {
  readonly spec: TaskSpec;
  resolve(r: SubmitResponse): void;
  reject(e: unknown): void;
}

interface Group {
  readonly deadlineMs: number | undefined;
  items: Waiting[];
  timer: NodeJS.Timeout | NodeJS.Immediate | undefined;
}

export class SubmitCoalescer {
  /** Calls (Submit or SubmitBatch) in flight. */
  private inFlight = 0;
  private readonly groups = new Map<number | undefined, Group>();
  private readonly o: Required<SubmitCoalesceOptions>;
  /** SubmitBatch calls made, and the submits they carried (for tests and benchmarks). */
  readonly stats = { batches: 0, batched: 0, singles: 0 };

  constructor(
    private readonly ports: CoalescerPorts,
    opts: SubmitCoalesceOptions = {},
  ) {
    this.o = { ...COALESCE_DEFAULTS, ...opts };
    this.o.maxBatch = Math.max(1, this.o.maxBatch);
  }

  submit(spec: TaskSpec, deadlineMs: number | undefined): Promise<SubmitResponse> {
    return new Promise<SubmitResponse>((resolve, reject) => {
      let g = this.groups.get(deadlineMs);
      if (!g) this.groups.set(deadlineMs, (g = { deadlineMs, items: [], timer: undefined }));
      g.items.push({ spec, resolve, reject });
      if (g.items.length >= this.o.maxBatch) {
        this.flush(g);
        return;
      }
      if (g.timer !== undefined) return;
      const group = g;
      g.timer =
        this.inFlight < this.o.busyAt || this.o.windowMs <= 0
          ? setImmediate(() => this.flush(group))
          : setTimeout(() => this.flush(group), this.o.windowMs);
    });
  }

  private flush(g: Group): void {
    if (g.timer !== undefined) {
      clearTimeout(g.timer as NodeJS.Timeout);
      clearImmediate(g.timer as NodeJS.Immediate);
      g.timer = undefined;
    }
    const items = g.items;
    g.items = [];
    if (this.groups.get(g.deadlineMs) === g) this.groups.delete(g.deadlineMs);
    if (items.length === 0) return;
    if (items.length < this.o.minBatch) {
      for (const w of items) {
        this.stats.singles++;
        this.alone(w, g.deadlineMs);
      }
      return;
    }
    this.inFlight++;
    const done = (): void => {
      this.inFlight--;
    };
    this.stats.batches++;
    this.stats.batched += items.length;
    this.ports
      .batch(
        items.map((w) => w.spec),
        g.deadlineMs,
      )
      .then(
        (answers) => this.answer(items, answers, g.deadlineMs),
        (err: unknown) => {
          const e = MeshClientError.from(err);
          // A tenant refusal names one spec but refuses the batch: ask for each alone.
          if (e.code === status.PERMISSION_DENIED) for (const w of items) this.alone(w, g.deadlineMs);
          else for (const w of items) w.reject(e);
        },
      )
      .finally(done);
  }

  private answer(items: Waiting[], answers: SubmitBatchItem[], deadlineMs: number | undefined): void {
    for (let i = 0; i < items.length; i++) {
      const w = items[i]!;
      const a = answers[i];
      if (!a) w.reject(new MeshClientError(status.INTERNAL, 'the cell answered fewer items than sent'));
      else if (a.code !== status.OK) w.reject(new MeshClientError(a.code, a.message, hint(a)));
      else if (a.existing)
        this.alone(w, deadlineMs); // its state, as Submit answers it
      else w.resolve({ taskId: a.taskId, existing: false, state: TaskState.TASK_STATE_QUEUED });
    }
  }

  private alone(w: Waiting, deadlineMs: number | undefined): void {
    this.inFlight++;
    this.ports
      .one(w.spec, deadlineMs)
      .then(w.resolve, w.reject)
      .finally(() => {
        this.inFlight--;
      });
  }
}

/** An item's retry hint (saturation), as a unary call carries it in its trailers. */
function hint(a: SubmitBatchItem): Record<string, string> {
  return a.retryAfterMs > 0 ? { [RETRY_AFTER_TRAILER]: String(a.retryAfterMs) } : {};
}
