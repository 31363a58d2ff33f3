// Hello admission: how many agent streams a node replica takes in per second.
//
// After a node restarts, every agent it held reconnects within its backoff: tens of
// thousands of streams in a few seconds. Taking them all at once left hellos unread
// past their deadline on a busy machine, the agents cut, and their reconnects kept
// the storm going (docs/performance.md, Scale). So a replica admits new agent streams
// through a token bucket (`helloRatePerSecond`, topology defaults; a burst of half a
// second's worth), and ends the rest at once RESOURCE_EXHAUSTED with a retry hint
// (trailer meshlb-retry-after-ms) that spreads them: the k-th stream refused in a row
// is told to come back when the bucket will have admitted the k-1 before it, so the
// refused come back about as fast as the replica takes them in (the SDK adds up to a
// quarter of jitter). The bucket is pure (the caller passes the time); the gate
// ends the streams it refuses as any ended agent stream (stream-ends.ts).
import type { ServerDuplexStream } from '@grpc/grpc-js';
import { resourceExhausted } from '../util/errors.js';
import type { Logger } from '../util/log.js';
import type { CellMeter } from './meter.js';
import { endStream } from './stream-ends.js';

/** A refused stream is told to come back no sooner than this (ms)... */
export const MIN_RETRY_MS = 50;
/** ...and no later than this: past it the hint is not a promise any more, only a spread. */
export const MAX_RETRY_MS = 30_000;

export class HelloAdmission {
  private tokens: number;
  private lastMs: number | undefined;
  /** The time up to which refused streams have been promised the bucket's tokens. */
  private promisedMs = 0;
  /** Streams admitted and refused so far. */
  admitted = 0;
  refused = 0;

  /** `ratePerSecond`: streams admitted per second (0 or Infinity: all). */
  constructor(
    readonly ratePerSecond: number,
    readonly burst = Math.max(1, Math.ceil(ratePerSecond / 2)),
  ) {
    this.tokens = burst;
  }

  get limited(): boolean {
    return this.ratePerSecond > 0 && Number.isFinite(this.ratePerSecond);
  }

  /** A stream arrives at `now` (ms): undefined if admitted, else how long (ms) it should wait before it tries again. */
  take(now: number): number | undefined {
    if (!this.limited) {
      this.admitted++;
      return undefined;
    }
    const perToken = 1000 / this.ratePerSecond;
    if (this.lastMs !== undefined && now > this.lastMs)
      this.tokens = Math.min(this.burst, this.tokens + (now - this.lastMs) / perToken);
    this.lastMs = now;
    if (this.tokens >= 1) {
      this.tokens--;
      this.admitted++;
      return undefined;
    }
    this.refused++;
    this.promisedMs = Math.min(Math.max(this.promisedMs, now) + perToken, now + MAX_RETRY_MS);
    return Math.max(MIN_RETRY_MS, Math.ceil(this.promisedMs - now));
  }
}

/** What the gate needs of its cell. */
interface GateCell {
  readonly path: string;
  readonly meter: CellMeter;
  readonly log: Logger;
  readonly scheduler: { now(): number };
}

/** A node replica's door for agent streams: the bucket, and what happens to a stream it refuses. */
export class HelloGate {
  constructor(
    private readonly cell: GateCell,
    readonly bucket: HelloAdmission,
  ) {}

  /**
   * Past the rate: end `call` RESOURCE_EXHAUSTED with its retry hint (before its hello is read), as any
   * ended agent stream is: counted (streams ended, reason hello_rate) and logged, a storm's thousands of
   * lines cut by the logger to 10 a second and a count (src/util/log-bursts.ts). Returns whether it was refused.
   */
  refused(call: ServerDuplexStream<unknown, unknown>): boolean {
    const wait = this.bucket.take(this.cell.scheduler.now());
    if (wait === undefined) return false;
    const rate = this.bucket.ratePerSecond;
    const err = resourceExhausted(
      `node ${this.cell.path} admits ${rate} agent streams a second; retry in ${wait} ms`,
      wait,
    );
    endStream(call, err, this.cell, 'agent', 'agent: stream over the hello rate', 'hello_rate');
    return true;
  }
}
