// Waiting on the agent's state without polling: a waiter re-checks its
// condition at every change the agent announces (notify), or gives up at its
// deadline. Used by start() and the drain.
export class StateWaiters {
  /** Callbacks of until(), run (and dropped) at every state change. */
  private waiters = new Set<() => void>();

  /** Something changed: every waiter re-checks. */
  notify(): void {
    if (this.waiters.size === 0) return;
    const ws = this.waiters;
    this.waiters = new Set();
    for (const w of ws) w();
  }

  /** Wait until pred() holds (re-checked at every notify) or `until` (performance.now() ms) passes. */
  async until(pred: () => boolean, until: number): Promise<boolean> {
    for (;;) {
      if (pred()) return true;
      const left = until - performance.now();
      if (left <= 0) return false;
      await new Promise<void>((resolve) => {
        const timer = Number.isFinite(left) ? setTimeout(resolve, left) : undefined;
        this.waiters.add(() => {
          if (timer) clearTimeout(timer);
          resolve();
        });
      });
    }
  }
}
