// Outgoing batching for one stream. Items (dispatches, results, acks, ...) are
// queued in lanes and flushed together on the next turn (Scheduler.defer): when there is a queue,
// one gRPC message carries many of them. A flush writes lanes in their
// declared order (the link relies on it: acks before the summary that counts
// them), splitting a lane into messages of at most maxBatchItems items and
// about maxBatchBytes bytes.
//
// Bounded: bytes handed to the stream whose write callback has not fired yet
// are counted; past maxBufferedBytes the peer is not reading, and onOverflow
// is called once (the owner closes the stream with RESOURCE_EXHAUSTED and
// requeues what it held). Items are never dropped silently.
import { NO_LINK, type LinkMeter } from './meter.js';
import type { Scheduler } from './scheduler.js';

export interface BatcherOptions {
  readonly maxBatchItems: number;
  readonly maxBatchBytes: number;
  readonly maxBufferedBytes: number;
}

export const DEFAULT_BATCHER_OPTIONS: BatcherOptions = {
  maxBatchItems: 512,
  maxBatchBytes: 1 << 20,
  maxBufferedBytes: 16 << 20,
};

export interface Lane<I, M> {
  /** Wrap a chunk of items into one stream message. */
  readonly wrap: (items: I[]) => M;
  /** Approximate encoded size of an item, bytes. */
  readonly sizeOf: (item: I) => number;
}

/** What the batcher needs of a stream: grpc-js call objects fit as they are. */
export interface WritableStream<M> {
  write(msg: M, cb: (err?: Error | null) => void): boolean;
}

export class StreamBatcher<M> {
  /** Items per lane, allocated at the first push: most of a node's 20,000 agent streams are idle. */
  private pending: (unknown[] | undefined)[] | undefined;
  private scheduled = false;
  private readonly flushNow = (): void => this.flush();
  private closed = false;
  private overflowed = false;
  /** Bytes written to the stream whose write has not completed. */
  private unflushed = 0;
  /** Messages written (for tests and metrics). */
  messages = 0;
  items = 0;

  constructor(
    private readonly stream: WritableStream<M>,
    /** Each lane has its own item type; the batcher only carries items from push() to wrap(). */
    private readonly lanes: readonly Lane<never, M>[],
    private readonly opts: BatcherOptions,
    private readonly scheduler: Scheduler,
    private readonly onOverflow: (bufferedBytes: number) => void,
    /** Called at the start of each flush: last-moment items (a fresh summary). */
    private readonly beforeFlush?: () => void,
    /** Counts each message written and its items (metrics). */
    private readonly meter: LinkMeter = NO_LINK,
  ) {}

  get bufferedBytes(): number {
    return this.unflushed;
  }

  /** Queue an item on lane `lane`; flushed on the next turn of the event loop. */
  push(lane: number, item: unknown): void {
    if (this.closed) return;
    const pending = (this.pending ??= new Array<unknown[] | undefined>(this.lanes.length));
    (pending[lane] ??= []).push(item);
    this.schedule();
  }

  /** Ask for a flush even with nothing queued (beforeFlush may add items). */
  schedule(): void {
    if (this.scheduled || this.closed) return;
    this.scheduled = true;
    this.scheduler.defer(this.flushNow);
  }

  flush(): void {
    if (this.closed) return;
    // Still marked scheduled: what beforeFlush pushes goes out in this flush.
    this.beforeFlush?.();
    this.scheduled = false;
    const pending = this.pending;
    if (pending === undefined) return;
    for (let l = 0; l < this.lanes.length; l++) {
      const items = pending[l];
      if (items === undefined || items.length === 0) continue;
      const lane = this.lanes[l]!;
      pending[l] = undefined;
      let start = 0;
      let bytes = 0;
      for (let i = 0; i < items.length; i++) {
        bytes += lane.sizeOf(items[i] as never);
        const n = i - start + 1;
        if (n >= this.opts.maxBatchItems || bytes >= this.opts.maxBatchBytes || i === items.length - 1) {
          this.write(lane.wrap(items.slice(start, i + 1) as never[]), bytes, n);
          start = i + 1;
          bytes = 0;
        }
      }
    }
  }

  private write(msg: M, bytes: number, n: number): void {
    if (this.closed) return;
    this.unflushed += bytes;
    this.messages++;
    this.items += n;
    this.meter.sent(n);
    try {
      this.stream.write(msg, () => {
        this.unflushed -= bytes;
      });
    } catch {
      // A stream that already ended: its owner learns of it through 'error'/'end'.
      this.unflushed -= bytes;
      return;
    }
    if (this.unflushed > this.opts.maxBufferedBytes && !this.overflowed) {
      this.overflowed = true;
      this.onOverflow(this.unflushed);
    }
  }

  /** Stop writing. Queued items are dropped: the owner fails their attempts back itself (lost). */
  close(): void {
    this.closed = true;
    this.pending = undefined;
  }
}
