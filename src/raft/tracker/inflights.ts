// A bounded window of in-flight append messages to one follower. Each slot
// holds the last entry index the message carried; an ack for index i frees
// every slot <= i. When the window is full the leader stops sending appends to
// that follower until acks arrive, which bounds memory and bandwidth spent on
// a slow peer.

export class Inflights {
  // Invariant: strictly increasing (appends are sent in log order), length <= capacity.
  private slots: number[] = [];

  constructor(readonly capacity: number) {
    if (!(capacity >= 1)) throw new Error(`raft: inflight capacity must be >= 1, got ${capacity}`);
  }

  get count(): number {
    return this.slots.length;
  }

  full(): boolean {
    return this.slots.length >= this.capacity;
  }

  /** Record a sent append whose last entry is `lastIndex`. Throws on overflow: the caller must check full(). */
  add(lastIndex: number): void {
    if (this.full()) throw new Error('raft: inflights overflow');
    const last = this.slots[this.slots.length - 1];
    if (last !== undefined && lastIndex <= last) {
      throw new Error(`raft: inflight ${lastIndex} not after ${last}`);
    }
    this.slots.push(lastIndex);
  }

  /** Free every message whose last index is <= `index` (they are acknowledged). */
  freeLE(index: number): void {
    let n = 0;
    while (n < this.slots.length && this.slots[n]! <= index) n++;
    if (n > 0) this.slots.splice(0, n);
  }

  /** Free the oldest slot (used when acks may have been lost, to let replication resume). */
  freeFirstOne(): void {
    this.slots.shift();
  }

  reset(): void {
    this.slots = [];
  }
}
