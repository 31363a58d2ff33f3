// Bookkeeping of what callers are waiting for: proposals (by request id, until
// their entry applies here) and ReadIndex reads (by context, until the leader
// confirmed an index and this replica applied it). Each has its own deadline.
import { TimeoutError } from './errors.js';

interface Pending {
  resolve(v: unknown): void;
  reject(e: Error): void;
}

interface Read {
  index: number | undefined;
  readonly p: Pending;
}

export class Requests {
  private readonly proposals = new Map<string, Pending>();
  private readonly reads = new Map<string, Read>();

  /** Register a proposal under `id` with a deadline; `start` runs once it is registered. */
  propose(id: string, timeoutMs: number, start: () => void): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => this.proposals.get(id)?.reject(new TimeoutError('raft proposal', timeoutMs)),
        timeoutMs,
      );
      const settle = (fn: () => void) => {
        clearTimeout(timer);
        this.proposals.delete(id);
        fn();
      };
      this.proposals.set(id, { resolve: (v) => settle(() => resolve(v)), reject: (e) => settle(() => reject(e)) });
      start();
    });
  }

  proposal(id: string): Pending | undefined {
    return this.proposals.get(id);
  }

  /** Register a read under `ctx` with a deadline; `start` runs once it is registered. */
  read(ctx: string, timeoutMs: number, start: () => void): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => this.reads.get(ctx)?.p.reject(new TimeoutError('raft read', timeoutMs)),
        timeoutMs,
      );
      const settle = (fn: () => void) => {
        clearTimeout(timer);
        this.reads.delete(ctx);
        fn();
      };
      this.reads.set(ctx, {
        index: undefined,
        p: { resolve: () => settle(resolve), reject: (e) => settle(() => reject(e)) },
      });
      start();
    });
  }

  /** Contexts still waiting for the leader (to re-issue after a lost request). */
  unconfirmedReads(): string[] {
    return [...this.reads].filter(([, r]) => r.index === undefined).map(([ctx]) => ctx);
  }

  readConfirmed(ctx: string, index: number): void {
    const r = this.reads.get(ctx);
    if (r) r.index = index;
  }

  /** Resolve every read whose index is applied. */
  applied(applied: number): void {
    for (const r of [...this.reads.values()]) if (r.index !== undefined && r.index <= applied) r.p.resolve(undefined);
  }

  failAll(err: Error): void {
    for (const p of [...this.proposals.values()]) p.reject(err);
    for (const r of [...this.reads.values()]) r.p.reject(err);
  }
}
