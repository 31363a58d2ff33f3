// Promises waiting for a condition on replica state (a leader, a membership),
// re-checked after every Ready; each has its own deadline.
import { realClock, type RaftClock, type RaftTimer } from './clock.js';
import { TimeoutError } from './errors.js';

interface Waiter {
  cond: () => boolean;
  resolve(): void;
  reject(e: Error): void;
  timer: RaftTimer;
}

export class Waiters {
  private readonly list = new Set<Waiter>();

  /** Deadlines run on `clock` (virtual in a simulation). */
  constructor(private readonly clock: RaftClock = realClock) {}

  add(cond: () => boolean, what: string, timeoutMs: number): Promise<void> {
    if (cond()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const w: Waiter = {
        cond,
        resolve,
        reject,
        timer: this.clock.setTimer(timeoutMs, () => {
          this.list.delete(w);
          reject(new TimeoutError(`waiting for ${what}`, timeoutMs));
        }),
      };
      this.list.add(w);
    });
  }

  check(): void {
    for (const w of this.list) {
      if (w.cond()) {
        w.timer.cancel();
        this.list.delete(w);
        w.resolve();
      }
    }
  }

  failAll(err: Error): void {
    for (const w of this.list) {
      w.timer.cancel();
      w.reject(err);
    }
    this.list.clear();
  }
}
