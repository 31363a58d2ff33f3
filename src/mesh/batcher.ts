// Outgoing batching for one stream. Items (dispatches, results, acks, ...) are
// queued in lanes and flushed together on the next turn (Scheduler.defer): when there is a queue,
// one gRPC message carries many of them. A flush writes lanes in their
// declared order (the link relies on it: acks before the summary that counts
// them), splitting a lane into messages of at most maxBatchItems items and
// about maxBatchBytes bytes.
//
// Linger (adaptive; lingerMs > 0, 2 ms by default): a stream whose last message carried lingerMinItems items
// or more and left less than lingerMs ago is busy, and more items are on the
// way: its next flush waits until lingerMs after that message (a timer)
// instead of going on the next turn, so under load a message carries what
// lingerMs brings rather than what one turn did, and the writer and reader
// each handle fewer messages. A quiet stream (a message of one item, or the
// last one longer ago than lingerMs) flushes on the next turn as before: no
// delay at low rates. Downstream of a lingering writer messages arrive at
// least lingerMs apart, so a relay does not wait again. More than
// maxBatchItems waiting ends the wait at once.
//
// Bounded: bytes handed to the stream whose write callback has not fired yet
// are counted; past maxBufferedBytes the peer is not reading, and onOverflow
// is called once (the owner closes the stream with RESOURCE_EXHAUSTED and
// requeues what it held). Items are never dropped silently.
import { NO_LINK, type LinkMeter } from './meter.js';
import { nextBatchAverage, type Scheduler, type TimerHandle } from './scheduler.js';

export interface BatcherOptions {
  readonly maxBatchItems: number;
  readonly maxBatchBytes: number;
  readonly maxBufferedBytes: number;
  /** Longest a busy stream's flush waits after its previous message, ms (0 or absent: never waits). */
  readonly lingerMs?: number;
  /** A previous message of at least this many items marks the stream busy (default 2). */
  readonly lingerMinItems?: number;
}

export const DEFAULT_BATCHER_OPTIONS: BatcherOptions = {
  maxBatchItems: 512,
  maxBatchBytes: 1 << 20,
  maxBufferedBytes: 16 << 20,
  // On: at half of peak it cut dispatch p99 in every quiet A/B pair, with no loss at 100 and
  // 500/s, where messages carry one item and nothing waits (docs/performance.md, "Half of peak").
  lingerMs: 2,
  lingerMinItems: 2,
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
  /** When the last flush wrote, on the scheduler's fine clock, and the items it wrote. */
  private lastFlushAt = Number.NEGATIVE_INFINITY;
  private lastFlushItems = 0;
  /** Items per flush that wrote, averaged over the last few: a light stream's flush may run this turn. */
  private flushBatch = 1;
  /** The linger timer waiting to flush what is queued. */
  private lingering: TimerHandle | undefined;
  /** While lingering, the one lane items were queued on (-1: none yet). */
  private held = -1;
  /** A linger ended by an item of another lane: the held lane's items, written first. */
  private first = 0;
  private firstItems: unknown[] | undefined;
  /** With a probing meter (meter.flushed): when the first item of the next flush was pushed, and when it flushed. */
  private firstPushAt = NaN;
  private flushedAt = 0;
  /** With a probing meter: when the pending flush was deferred (NaN: it waits on the linger timer). */
  private deferredAt = NaN;
  /** Bytes written to the stream whose write has not completed. */
  private unflushed = 0;
  /** Messages written (for tests and metrics). */
  messages = 0;
  items = 0;
  /** Messages written per lane (made at the first write: most of a node's agent streams stay idle). */
  laneMessages: number[] | undefined;

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

  /** Queue an item on lane `lane`; flushed on the next turn of the event loop (or when a linger ends). */
  push(lane: number, item: unknown): void {
    if (this.closed) return;
    const pending = (this.pending ??= new Array<unknown[] | undefined>(this.lanes.length));
    if (this.lingering !== undefined) {
      if (this.held < 0) this.held = lane;
      else if (lane !== this.held) this.endLinger();
    }
    const items = (pending[lane] ??= []);
    items.push(item);
    if (this.meter.flushed !== undefined && this.firstPushAt !== this.firstPushAt) this.firstPushAt = this.fineNow();
    // A message's worth waiting (while lingering, only the held lane has items): no reason to wait for more.
    if (this.lingering !== undefined && items.length >= this.opts.maxBatchItems) this.endLinger();
    this.schedule();
  }

  /** Ask for a flush even with nothing queued (beforeFlush may add items). */
  schedule(): void {
    if (this.scheduled || this.closed) return;
    this.scheduled = true;
    const linger = this.opts.lingerMs ?? 0;
    if (linger > 0 && this.lastFlushItems >= (this.opts.lingerMinItems ?? DEFAULT_BATCHER_OPTIONS.lingerMinItems!)) {
      const wait = this.lastFlushAt + linger - this.fineNow();
      const held = this.onlyLane();
      if (wait > 0 && held !== undefined) {
        this.held = held;
        this.lingering = this.scheduler.setTimer(wait, this.flushNow);
        return;
      }
    }
    if (this.meter.flushed !== undefined) this.deferredAt = this.fineNow();
    this.scheduler.defer(this.flushNow, this.flushBatch);
  }

  /**
   * Stop waiting: flush on the next turn. What the wait held (one lane's items, all pushed before anything
   * else now queued) goes first, so the wait never lets a later item of an earlier lane overtake them.
   */
  private endLinger(): void {
    this.lingering!.cancel();
    this.lingering = undefined;
    const items = this.held >= 0 ? this.pending?.[this.held] : undefined;
    if (items !== undefined && items.length > 0) {
      this.first = this.held;
      this.firstItems = items;
      this.pending![this.held] = undefined;
    }
    this.held = -1;
    if (this.meter.flushed !== undefined) this.deferredAt = this.fineNow();
    this.scheduler.defer(this.flushNow, this.flushBatch);
  }

  /** The one lane with items queued (-1: none), or undefined if several have. */
  private onlyLane(): number | undefined {
    const pending = this.pending;
    let only = -1;
    if (pending === undefined) return only;
    for (let l = 0; l < pending.length; l++) {
      if (pending[l] === undefined || pending[l]!.length === 0) continue;
      if (only >= 0) return undefined;
      only = l;
    }
    return only;
  }

  private fineNow(): number {
    return this.scheduler.fineNow?.() ?? this.scheduler.now();
  }

  flush(): void {
    if (this.closed) return;
    // Called early (a caller) or by the timer: no longer waiting; what beforeFlush pushes joins this flush.
    this.lingering?.cancel();
    this.lingering = undefined;
    this.held = -1;
    // Still marked scheduled: what beforeFlush pushes goes out in this flush.
    this.beforeFlush?.();
    this.scheduled = false;
    if (this.meter.flushed !== undefined) this.flushedAt = this.fineNow();
    const items0 = this.items;
    const first = this.firstItems;
    if (first !== undefined) {
      this.firstItems = undefined;
      this.writeLane(this.first, first);
    }
    const pending = this.pending;
    if (pending !== undefined) {
      for (let l = 0; l < this.lanes.length; l++) {
        const items = pending[l];
        if (items === undefined || items.length === 0) continue;
        pending[l] = undefined;
        this.writeLane(l, items);
      }
    }
    this.firstPushAt = NaN;
    this.deferredAt = NaN;
    this.lastFlushItems = this.items - items0;
    if (this.lastFlushItems > 0) {
      this.lastFlushAt = this.fineNow();
      this.flushBatch = nextBatchAverage(this.flushBatch, this.lastFlushItems);
    }
  }

  /** Items of lane `l` as messages of at most maxBatchItems items and about maxBatchBytes. */
  private writeLane(l: number, items: unknown[]): void {
    const lane = this.lanes[l]!;
    let start = 0;
    let bytes = 0;
    for (let i = 0; i < items.length; i++) {
      bytes += lane.sizeOf(items[i] as never);
      const n = i - start + 1;
      if (n >= this.opts.maxBatchItems || bytes >= this.opts.maxBatchBytes || i === items.length - 1) {
        (this.laneMessages ??= new Array<number>(this.lanes.length).fill(0))[l]!++;
        // The whole list as one message (the usual case) goes as it is: flush() has let go of it.
        const part = start === 0 && i === items.length - 1 ? items : items.slice(start, i + 1);
        this.write(lane.wrap(part as never[]), bytes, n);
        start = i + 1;
        bytes = 0;
      }
    }
  }

  private write(msg: M, bytes: number, n: number): void {
    if (this.closed) return;
    this.unflushed += bytes;
    this.messages++;
    this.items += n;
    this.meter.sent(n);
    const probe = this.meter.flushed;
    try {
      if (probe === undefined)
        this.stream.write(msg, () => {
          this.unflushed -= bytes;
        });
      else {
        const at = this.flushedAt;
        const waited = at - this.firstPushAt;
        const turn = at - this.deferredAt;
        this.stream.write(msg, () => {
          this.unflushed -= bytes;
          probe.call(this.meter, waited, this.fineNow() - at, turn);
        });
      }
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
    this.firstItems = undefined;
    this.lingering?.cancel();
    this.lingering = undefined;
  }
}
