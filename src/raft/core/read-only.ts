// ReadIndex bookkeeping on the leader (Raft dissertation §6.4). A read request
// records the commit index at arrival; it may be answered once a quorum has
// acknowledged a heartbeat sent after that arrival, which proves no newer
// leader existed at that moment. An ack for a later request also confirms all
// earlier ones, so requests are released in arrival order.

import type { NodeId } from './types.js';

export interface ReadRequest {
  readonly context: string;
  /** Commit index when the request arrived: the read is served at >= this. */
  readonly index: number;
  /** Who asked: the leader itself, or a follower that forwarded it. */
  readonly from: NodeId;
  readonly acks: Set<NodeId>;
}

export class ReadOnlyQueue {
  private readonly byContext = new Map<string, ReadRequest>();
  /** Arrival order. Invariant: same members as byContext. */
  private queue: string[] = [];

  get size(): number {
    return this.queue.length;
  }

  /** Returns false for a duplicate context (already pending). */
  add(context: string, index: number, from: NodeId, self: NodeId): boolean {
    if (this.byContext.has(context)) return false;
    this.byContext.set(context, { context, index, from, acks: new Set([self]) });
    this.queue.push(context);
    return true;
  }

  /** Record an ack; returns the number of acks now held for that request (0 if unknown). */
  ack(from: NodeId, context: string): number {
    const rq = this.byContext.get(context);
    if (!rq) return 0;
    rq.acks.add(from);
    return rq.acks.size;
  }

  acksOf(context: string): ReadonlySet<NodeId> {
    return this.byContext.get(context)?.acks ?? new Set();
  }

  /** Remove and return every request up to and including `context`. */
  releaseThrough(context: string): ReadRequest[] {
    const at = this.queue.indexOf(context);
    if (at < 0) return [];
    const done = this.queue.slice(0, at + 1);
    this.queue = this.queue.slice(at + 1);
    return done.map((c) => {
      const rq = this.byContext.get(c)!;
      this.byContext.delete(c);
      return rq;
    });
  }

  /** Context of the newest pending request (heartbeats carry it), or undefined. */
  last(): string | undefined {
    return this.queue[this.queue.length - 1];
  }

  clear(): void {
    this.byContext.clear();
    this.queue = [];
  }
}
