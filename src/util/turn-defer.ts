// Deferring work to "later in this turn" or "the next turn" of the event loop.
//
// A cell relays a message at low rate in three steps: the read (an I/O callback), the pump (deferred), the
// batcher's flush (deferred again). On setImmediate each deferral is a turn of the loop of its own: one more
// epoll_pwait with a zero timeout, timers and check handles, a fresh entry into JavaScript. And Node's HTTP/2
// sends what a flush wrote from a native immediate, which a write made inside a setImmediate callback only
// reaches on the turn after that. So one relayed message cost a middle cell four epoll_pwait calls at 500
// tasks/s (read, pump, flush, send), three of them turns with nothing to wait for (docs/performance.md, "Session 13:
// fewer turns per relayed message").
//
// What a turn buys is coalescing: under load, the reads of one turn feed one pump and one flush. A deferral
// after a quiet spell (nothing deferred for QUIET_MS) has nothing to coalesce with, so it runs as a
// microtask, at the end of the code running now: the pump right after the read that asked for it, the flush
// right after the pump, and Node's HTTP/2 sends the write before the read's callback returns. Deferrals that
// follow each other closely go to the next turn as before, so busy streams still batch.
//
// Bounded, so that work deferring itself cannot keep the loop from its I/O: a run is at most SOON_MAX
// microtask deferrals, and what deferred work defers continues its run whatever the clock says (a slow pump
// that asks for another pump does not find the process quiet); and at most TURN_MAX microtask deferrals go
// by without a turn of the loop being seen (one of these setImmediate callbacks, or a timer: `turned`).
//
// A quiet spell alone does not say there is nothing to coalesce: at full rate a middle cell reads a lingered
// batch every ~2 ms, handles it in well under that and is quiet again, so under session 13's rule (`soon`)
// nearly every deferral there ran as a microtask, the pump inside the read of the first message instead of
// after the turn's reads: a third fewer items per pump and per message written, 40% more messages (docs/performance.md,
// "Session 14: a deferral only for light callers"). So by default (`light`) a deferral runs as a microtask only
// if its caller also says it is light: its recent batches (pumps, flushes) carried on average fewer than
// LIGHT_BATCH items. A caller that says nothing takes the next turn.
//
// Cheap per deferral: Node's queueMicrotask makes an AsyncResource, a bound function and a closure per call,
// and each deferral here made a closure of its own, ~1 KB of heap per relayed task in every cell at 500/s
// (docs/performance.md, "Session 15"). Deferred functions wait in FIFOs instead and each deferral queues one shared
// runner, as a reaction of a resolved promise (a microtask, no AsyncResource) or a setImmediate; runners and
// functions pair up in order, so each function runs exactly where its own microtask or immediate would have.

import { logger } from './log.js';

/** A deferral this long after the previous one finds the process quiet (ms). */
export const QUIET_MS = 0.25;
/** Microtask deferrals in a run at most (a pump, its flushes, and what they defer), before the next turn. */
export const SOON_MAX = 4;
/** Microtask deferrals at most between two turns of the loop seen. */
export const TURN_MAX = 64;
/** A caller whose recent batches averaged fewer items than this has nothing for a turn to coalesce. */
export const LIGHT_BATCH = 2;

/** A moving average of a caller's batch sizes (weight 1/4 to the newest): the hint `defer` takes. */
export const nextBatchAverage = (avg: number, items: number): number => avg + (items - avg) / 4;

/**
 * `turn`: every deferral on the next turn (setImmediate). `light`: a microtask after a quiet spell for a
 * caller whose batches are light. `soon`: a microtask after a quiet spell for any caller (session 13's rule).
 */
export type DeferMode = 'turn' | 'light' | 'soon';

/** The values MESHLB_DEFER accepts (src/mesh/scheduler.ts reads it). */
export const DEFER_MODES: readonly DeferMode[] = ['turn', 'light', 'soon'];

let warnedUnknownMode = false;

/**
 * MESHLB_DEFER's value as a mode: `light` when unset or empty, and for a value it does not know too, but then
 * with a warning naming the accepted values, once per process (a typo must not pass for a measured setting).
 */
export function deferModeFrom(value: string | undefined, warn: (message: string) => void = warnLog): DeferMode {
  if (value === undefined || value === '') return 'light';
  const mode = DEFER_MODES.find((m) => m === value);
  if (mode !== undefined) return mode;
  if (!warnedUnknownMode) {
    warnedUnknownMode = true;
    warn(`unknown MESHLB_DEFER ${JSON.stringify(value)}: using light (accepted: ${DEFER_MODES.join(', ')})`);
  }
  return 'light';
}

function warnLog(message: string): void {
  logger({ component: 'turn-defer' }).warn(message);
}

export interface TurnDefer {
  /**
   * Call `fn` later: at the end of this turn after a quiet spell (in `light` mode only when `batch`, the
   * caller's average batch size, is under LIGHT_BATCH), else on the next turn. Never from inside.
   */
  readonly defer: (fn: () => void, batch?: number) => void;
  /** The loop turned (a timer fired): microtask deferrals are allowed again. */
  readonly turned: () => void;
  /** Deferrals so far: run as microtasks (`soon`), on the next turn (`next`); `quiet`: runs started after a quiet spell. */
  readonly counts: DeferCounts;
}

export interface DeferCounts {
  soon: number;
  next: number;
  quiet: number;
}

/** A FIFO of functions on a ring that doubles when full (a power of two: a mask, no division; O(1) shift). */
class FnQueue {
  private buf: (() => void)[] = new Array<() => void>(16);
  private mask = 15;
  private head = 0;
  private size = 0;
  push(fn: () => void): void {
    if (this.size === this.buf.length) {
      const next = new Array<() => void>(this.buf.length * 2);
      for (let i = 0; i < this.size; i++) next[i] = this.buf[(this.head + i) & this.mask]!;
      this.buf = next;
      this.mask = next.length - 1;
      this.head = 0;
    }
    this.buf[(this.head + this.size++) & this.mask] = fn;
  }
  shift(): () => void {
    const fn = this.buf[this.head]!;
    this.buf[this.head] = undefined as never;
    this.head = (this.head + 1) & this.mask;
    this.size--;
    return fn;
  }
}

const resolved = Promise.resolve();

/** An error thrown by a deferred function: uncaught, as from queueMicrotask or setImmediate, not a rejection. */
const rethrow = (err: unknown): void =>
  queueMicrotask(() => {
    throw err;
  });

/** Deferral for the real event loop. `clock` is monotonic, in ms; `mode` `light` unless given. */
export function turnDefer(
  clock: () => number,
  opts: { readonly mode?: DeferMode; readonly quietMs?: number; readonly max?: number; readonly turnMax?: number } = {},
): TurnDefer {
  const counts: DeferCounts = { soon: 0, next: 0, quiet: 0 };
  const anyCaller = opts.mode === 'soon';
  /** Functions waiting for their turn, and for their microtask. */
  const turns = new FnQueue();
  const soon = new FnQueue();
  /** Above 0 while a microtask-deferred fn runs: what it defers continues its run. */
  let depth = 0;
  let run = 0;
  let sinceTurn = 0;
  const onTurn = (): void => {
    sinceTurn = 0;
    const fn = turns.shift();
    fn();
  };
  if (opts.mode === 'turn')
    return {
      defer: (fn) => {
        counts.next++;
        turns.push(fn);
        setImmediate(onTurn);
      },
      turned: () => undefined,
      counts,
    };
  const quietMs = opts.quietMs ?? QUIET_MS;
  const max = opts.max ?? SOON_MAX;
  const turnMax = opts.turnMax ?? TURN_MAX;
  /** When the last deferral from outside a run was asked for. */
  let last = Number.NEGATIVE_INFINITY;
  const turned = (): void => {
    sinceTurn = 0;
  };
  const onSoon = (): void => {
    const fn = soon.shift();
    depth++;
    try {
      fn();
    } catch (err) {
      rethrow(err);
    } finally {
      depth--;
    }
  };
  const defer = (fn: () => void, batch?: number): void => {
    if (depth === 0) {
      const t = clock();
      if (t - last >= quietMs) {
        run = 0;
        counts.quiet++;
      }
      last = t;
    }
    if (run < max && sinceTurn < turnMax && (anyCaller || (batch !== undefined && batch < LIGHT_BATCH))) {
      run++;
      sinceTurn++;
      counts.soon++;
      soon.push(fn);
      void resolved.then(onSoon);
    } else {
      counts.next++;
      turns.push(fn);
      setImmediate(onTurn);
    }
  };
  return { defer, turned, counts };
}
