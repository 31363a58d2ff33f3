// What the agent owes the node: `started` acks and results, coalesced per
// event-loop turn (flushed on setImmediate) so one gRPC message carries many.
//
// Invariants:
// - A result waits in `pending` until a welcomed, unblocked stream takes it;
//   `pending` never holds more than maxBufferedResults (the oldest are dropped:
//   their leases lapse and the tasks retry).
// - Results written within resendWindowMs before a stream broke are kept in
//   `sentRing` and go out again after the next Welcome: the node fences by
//   attempt, so duplicates are harmless, while a result lost in a dead stream
//   would cost a whole lease.
// - A batch stays within maxBatch results and about half the max message size.
// - A `started` ack goes out only if its attempt is still running at the flush
//   (a result implies the start).
import type { ConnectRequest } from '../gen/meshlb/v1/agent.js';
import type { TaskRef, TaskResult } from '../gen/meshlb/v1/task.js';
import type { RunningTask } from './task.js';

/** Per-result framing overhead assumed when cutting batches by size. */
const RESULT_OVERHEAD_BYTES = 96;

export interface OutboxStats {
  resultsSent: number;
  resultsResent: number;
  /** Results dropped because the disconnected buffer was full. */
  resultsDropped: number;
}

interface OutboxOptions {
  maxBufferedResults: number;
  resendWindowMs: number;
  maxBatch: number;
}

/** The stream the outbox writes to, and the agent state it checks. */
interface OutboxLink {
  /** A welcomed stream that is not blocked by backpressure. */
  ready(): boolean;
  /** Backpressure hit during a flush (set by write). */
  blocked(): boolean;
  write(m: ConnectRequest): void;
  maxMessageBytes(): number;
  /** The attempt is still running (not finished, not replaced). */
  running(task: RunningTask): boolean;
  /** A flush ran: waiters on "everything sent" re-check. */
  flushed(): void;
}

interface SentBatch {
  at: number;
  results: TaskResult[];
}

export class Outbox {
  /** Started since the last flush. */
  private started: RunningTask[] = [];
  private pending: TaskResult[] = [];
  /** Recently written batches, for re-sending after a break (bounded by window and maxBufferedResults). */
  private sentRing: SentBatch[] = [];
  private sentRingCount = 0;
  private flushScheduled = false;
  private readonly flushBound = () => this.flush();

  constructor(
    private readonly opts: OutboxOptions,
    private readonly stats: OutboxStats,
    private readonly link: OutboxLink,
  ) {}

  /** Results not yet written. */
  get pendingResults(): number {
    return this.pending.length;
  }

  /** Nothing waits to be written and no flush is due. */
  get idle(): boolean {
    return this.pending.length === 0 && this.started.length === 0 && !this.flushScheduled;
  }

  start(t: RunningTask): void {
    this.started.push(t);
    this.scheduleFlush();
  }

  push(r: TaskResult): void {
    if (this.pending.length >= this.opts.maxBufferedResults) {
      this.pending.shift();
      this.stats.resultsDropped++;
    }
    this.pending.push(r);
    this.scheduleFlush();
  }

  /** After a Welcome: the attempts still running are announced again (they count against our slots). */
  reannounce(running: Iterable<RunningTask>): void {
    for (const t of running) this.started.push(t);
  }

  /** Flush soon if anything waits (after a Welcome). */
  resume(): void {
    if (this.pending.length > 0 || this.started.length > 0) this.scheduleFlush();
  }

  /** The stream broke: acks are moot, recently written results go out again. */
  broken(): void {
    this.started = [];
    this.requeueRecentlySent();
  }

  /** The agent closed: drop everything unsent. */
  clear(): void {
    this.pending = [];
    this.started = [];
    this.sentRing = [];
    this.sentRingCount = 0;
  }

  scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(this.flushBound);
  }

  private flush(): void {
    this.flushScheduled = false;
    const link = this.link;
    if (!link.ready()) return;
    if (this.started.length > 0) {
      let refs: TaskRef[] | undefined;
      for (const t of this.started) {
        if (link.running(t)) (refs ??= []).push({ taskId: t.id, attempt: t.attempt, slots: t.slots > 1 ? t.slots : 0 });
      }
      this.started.length = 0;
      if (refs) link.write({ msg: { $case: 'started', value: { refs } } });
    }
    const now = performance.now();
    this.trimSentRing(now);
    while (this.pending.length > 0 && !link.blocked()) {
      const batch = this.takeBatch();
      link.write({ msg: { $case: 'results', value: { results: batch } } });
      this.stats.resultsSent += batch.length;
      this.sentRing.push({ at: now, results: batch });
      this.sentRingCount += batch.length;
    }
    link.flushed();
  }

  /** Take the next batch of pending results: at most maxBatch, and about half the max message size. */
  private takeBatch(): TaskResult[] {
    const all = this.pending;
    const budget = this.link.maxMessageBytes() >>> 1;
    let n = 0;
    let bytes = 0;
    while (n < all.length && n < this.opts.maxBatch) {
      const r = all[n]!;
      bytes += r.output.length + r.error.length + RESULT_OVERHEAD_BYTES;
      if (n > 0 && bytes > budget) break;
      n++;
    }
    if (n === all.length) {
      this.pending = [];
      return all;
    }
    return all.splice(0, n);
  }

  private trimSentRing(now: number): void {
    const ring = this.sentRing;
    let drop = 0;
    let count = this.sentRingCount;
    while (
      drop < ring.length &&
      (now - ring[drop]!.at > this.opts.resendWindowMs || count > this.opts.maxBufferedResults)
    ) {
      count -= ring[drop]!.results.length;
      drop++;
    }
    if (drop > 0) {
      this.sentRing = drop === ring.length ? [] : ring.slice(drop);
      this.sentRingCount = count;
    }
  }

  /** After a break: whatever went out within the resend window goes out again (the node fences duplicates). */
  private requeueRecentlySent(): void {
    this.trimSentRing(performance.now());
    if (this.sentRing.length === 0) return;
    const again: TaskResult[] = [];
    for (const b of this.sentRing) for (const r of b.results) again.push(r);
    this.sentRing = [];
    this.sentRingCount = 0;
    this.stats.resultsResent += again.length;
    const merged = again.concat(this.pending);
    const over = merged.length - this.opts.maxBufferedResults;
    if (over > 0) {
      this.stats.resultsDropped += over;
      merged.splice(0, over);
    }
    this.pending = merged;
  }
}
