// Promises waiting for a condition on replica state (a leader, a membership),
// re-checked after every Ready; each has its own deadline.
import { TimeoutError } from './errors.js';

interface Waiter {
  cond: () => boolean;
  resolve(): void;
  reject(e: Error): void;
  timer: NodeJS.Timeout;
}

export class Waiters {
  private readonly list = new Set<Waiter>();

  add(cond: () => boolean, what: string, timeoutMs: number): Promise<void> {
    if (cond()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const w: Waiter = {
        cond,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.list.delete(w);
          reject(new TimeoutError(`waiting for ${what}`, timeoutMs));
        }, timeoutMs),
      };
      this.list.add(w);
    });
  }

  check(): void {
    for (const w of this.list) {
      if (w.cond()) {
        clearTimeout(w.timer);
        this.list.delete(w);
        w.resolve();
      }
    }
  }

  failAll(err: Error): void {
    for (const w of this.list) {
      clearTimeout(w.timer);
      w.reject(err);
    }
    this.list.clear();
  }
}
