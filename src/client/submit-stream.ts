// A pipelined submission stream: many submits in flight on one SubmitStream
// call, each resolving with its own item (responses matched by request id).
import { status, type ClientDuplexStream } from '@grpc/grpc-js';
import type { SubmitBatchItem, SubmitStreamRequest, SubmitStreamResponse } from '../gen/meshlb/v1/task.js';
import { MeshClientError } from './errors.js';
import { toTaskSpec, type TaskInput } from './spec.js';

/** One entry of a batch or stream submission, in order; a bad spec fails alone. */
export interface SubmitItem {
  ok: boolean;
  taskId: string;
  existing: boolean;
  /** gRPC status code (status.OK when accepted). */
  code: number;
  message: string;
}

export function toItem(it: SubmitBatchItem): SubmitItem {
  return { ok: it.code === status.OK, taskId: it.taskId, existing: it.existing, code: it.code, message: it.message };
}

/** Pipelined submissions over one SubmitStream call; responses matched by request id. */
export class SubmitStream {
  private nextId = 1;
  private readonly pending = new Map<
    number,
    { resolve: (i: SubmitItem) => void; reject: (e: MeshClientError) => void }
  >();
  private failure: MeshClientError | undefined;
  private done: Promise<void>;

  /** `newKey`, when given, names each task submitted without an idempotency key (MeshClient's auto keys). */
  constructor(
    private readonly call: ClientDuplexStream<SubmitStreamRequest, SubmitStreamResponse>,
    private readonly newKey?: () => string,
  ) {
    call.on('data', (res: SubmitStreamResponse) => {
      const p = this.pending.get(res.requestId);
      if (!p) return;
      this.pending.delete(res.requestId);
      p.resolve(
        res.item
          ? toItem(res.item)
          : { ok: false, taskId: '', existing: false, code: status.INTERNAL, message: 'empty response item' },
      );
    });
    this.done = new Promise<void>((resolve) => {
      call.on('error', (e) => {
        this.failure = MeshClientError.from(e);
      });
      call.on('status', () => {
        const err = this.failure ?? new MeshClientError(status.UNAVAILABLE, 'submit stream ended before answering');
        for (const p of this.pending.values()) p.reject(err);
        this.pending.clear();
        resolve();
      });
    });
  }

  /** Submissions sent and not yet answered. */
  get inFlight(): number {
    return this.pending.size;
  }

  submit(task: TaskInput): Promise<SubmitItem> {
    if (this.failure) return Promise.reject(this.failure);
    const spec = toTaskSpec(task);
    if (!spec.idempotencyKey && this.newKey) spec.idempotencyKey = this.newKey();
    const requestId = this.nextId++;
    return new Promise<SubmitItem>((resolve, reject) => {
      this.pending.set(requestId, { resolve, reject });
      this.call.write({ requestId, task: spec, tasks: [] });
    });
  }

  /** Half-close and wait for every answer. */
  async end(): Promise<void> {
    this.call.end();
    await this.done;
  }

  cancel(): void {
    this.call.cancel();
  }
}
