// Linearizable reads on any replica: before a Get or a Watch reads the local
// ledger, the cell's log passes a ReadIndex barrier (the leader confirms its
// commit index with a quorum, this replica applies up to it), so a task whose
// Submit returned anywhere before the read began is found here.
//
// Concurrent reads share barriers: a barrier covers every read that arrived
// before it started, so reads arriving while one is in flight wait for the
// next one, which starts when the current one settles. Under load that is at
// most two barriers outstanding per replica instead of one per read.
export class ReadBarrier {
  private running: Promise<void> | undefined;
  private queued: Promise<void> | undefined;

  constructor(private readonly readIndex: () => Promise<void>) {}

  /** Resolves once this replica's ledger holds everything committed before the call. */
  wait(): Promise<void> {
    if (this.running === undefined) return this.begin();
    // The barrier in flight began before this read: it does not cover it.
    if (this.queued === undefined) {
      const after = (): Promise<void> => {
        this.queued = undefined;
        return this.begin();
      };
      this.queued = this.running.then(after, after);
    }
    return this.queued;
  }

  private begin(): Promise<void> {
    let p: Promise<void>;
    try {
      p = this.readIndex();
    } catch (err) {
      p = Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    this.running = p;
    const clear = (): void => {
      if (this.running === p) this.running = undefined;
    };
    p.then(clear, clear);
    return p;
  }
}
