// Results on their way to the parent that a change of parent leader must not
// lose. A child keeps two bounded sets:
// - held: results produced while no parent replica has welcomed us; they go
//   out once one does (across a change of parent leader they reach the new
//   leader, which keeps those of attempts that are still current);
// - recent: results written in the last two link timeouts; a parent replica
//   that dies may have taken them with it unread, so after a break they are
//   written again to whichever replica welcomes us next.
// The parent's ledger drops what it already recorded (stale or terminal), so a
// second copy is harmless. Past a bound the oldest go: their home's lease
// retries them. Both are ring buffers: a write costs O(1) at any rate.
import type { TaskResult } from '../gen/meshlb/v1/task.js';

/** Results held while unlinked, and results remembered after writing, at most. */
export const MAX_KEPT_RESULTS = 10_000;

class Ring<T> {
  private readonly items: (T | undefined)[];
  private head = 0;
  private count = 0;

  constructor(readonly capacity: number) {
    this.items = new Array<T | undefined>(capacity);
  }

  get size(): number {
    return this.count;
  }

  /** Append; past capacity the oldest is dropped. */
  push(x: T): void {
    const tail = (this.head + this.count) % this.capacity;
    this.items[tail] = x;
    if (this.count < this.capacity) this.count++;
    else this.head = (this.head + 1) % this.capacity;
  }

  /** The oldest item, without removing it. */
  peek(): T | undefined {
    return this.count > 0 ? this.items[this.head] : undefined;
  }

  shift(): T | undefined {
    if (this.count === 0) return undefined;
    const x = this.items[this.head];
    this.items[this.head] = undefined;
    this.head = (this.head + 1) % this.capacity;
    this.count--;
    return x;
  }

  drain(): T[] {
    const out: T[] = [];
    for (let x = this.shift(); x !== undefined; x = this.shift()) out.push(x);
    return out;
  }
}

export class ResultKeeper {
  private readonly held: Ring<TaskResult>;
  private readonly recent: Ring<{ readonly r: TaskResult; readonly atMs: number }>;
  /** The link broke since the last welcome: recent results go out again on the next one. */
  private broke = false;

  constructor(
    /** How long a written result is remembered (two link timeouts). */
    private readonly windowMs: number,
    capacity = MAX_KEPT_RESULTS,
  ) {
    this.held = new Ring(capacity);
    this.recent = new Ring(capacity);
  }

  /** A result was written to a welcoming parent. */
  wrote(r: TaskResult, now: number): void {
    this.recent.push({ r, atMs: now });
  }

  /** A result came while no parent replica welcomes us. */
  hold(r: TaskResult): void {
    this.held.push(r);
  }

  /** The link broke. */
  broken(): void {
    this.broke = true;
  }

  /** Forget results written longer than the window ago (from the cell's tick). */
  prune(now: number): void {
    const horizon = now - this.windowMs;
    for (let e = this.recent.peek(); e !== undefined && e.atMs < horizon; e = this.recent.peek()) this.recent.shift();
  }

  /** A parent replica welcomed us: what to write again (recent ones only after a break), oldest first. */
  takeForResend(now: number): { recent: TaskResult[]; held: TaskResult[] } {
    this.prune(now);
    const recent = this.broke ? this.recent.drain().map((e) => e.r) : [];
    if (!this.broke) this.recent.drain();
    this.broke = false;
    return { recent, held: this.held.drain() };
  }

  /** Stopped leading: nothing here is ours to send any more. */
  clear(): void {
    this.held.drain();
    this.recent.drain();
    this.broke = false;
  }
}
