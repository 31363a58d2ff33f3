// What a cell tells its metrics, from the few paths where a count happens: a
// message on a link, an attempt's result passing back, a request refused. The
// Prometheus side (src/admin/cell-metrics.ts) implements it; a cell built
// without metrics gets NO_METER, whose methods do nothing. Everything else
// (task outcomes, queue depth, agents, Raft state) the metrics read from the
// cell itself — ledger listeners and gauges read at scrape time — so no hot
// path carries more than one call here.
//
// The view a meter gets of its cell (MeteredCell) is read-only and narrow, so
// this module imports no cell and the Cell class satisfies it as it is.
import type { status } from '@grpc/grpc-js';
import type { TaskResult } from '../gen/meshlb/v1/task.js';
import type { Leadership } from './leadership.js';
import type { Ledger } from './ledger.js';
import type { ScaleRecommendation } from '../forecast/index.js';

export type LinkKind = 'parent' | 'child' | 'agent';

/** The streams a cell serves and may end: agents' (AgentService.Connect) and its children's links. */
export type EndedStream = 'agent' | 'link';
/**
 * Why a cell ended a stream (the `reason` label of meshlb_streams_ended_total, docs/operations.md):
 * hello_rate  past the replica's hello admission rate (agent-admission.ts), told when to come back;
 * full        the replica holds its most agent streams;
 * not_leader  a follower, naming its leader (or no leader yet);
 * refused     a hello naming another mesh or cell, or from a cell that is no child;
 * duplicate   an agent id already connected;
 * bad_message undecodable, empty, out of order or over limits;
 * hello_timeout no hello in time;  silent  no heartbeat (agent) or no message (link) in time;
 * not_reading the peer stopped reading (its unread bytes over the bound);  error  anything else.
 */
export type StreamEnd =
  | 'hello_rate'
  | 'full'
  | 'not_leader'
  | 'refused'
  | 'duplicate'
  | 'bad_message'
  | 'hello_timeout'
  | 'silent'
  | 'not_reading'
  | 'error';

/** Counts of one kind of link of one cell, shared by every link of that kind (no object per link). */
export interface LinkMeter {
  /** One message written, carrying `items` items (batcher.ts). */
  sent(items: number): void;
  /** One message read. */
  received(): void;
  /**
   * One message written (the bench's probe; metrics leave it out, and the batcher then reads no clock): how
   * long its flush's first item waited in the batcher (push to flush: a linger or a deferral), and the write
   * from the flush until its callback (the HTTP/2 send), ms; `turnMs`: of the wait, the time from the flush's
   * deferral to its run (the rest of the turn it waited behind), NaN for a flush the linger timer ran.
   */
  flushed?(waitMs: number, writeMs: number, turnMs: number): void;
}

export interface CellMeter {
  readonly parent: LinkMeter;
  readonly child: LinkMeter;
  readonly agent: LinkMeter;
  /**
   * An attempt's result came back through this cell, before it goes on toward
   * its origin (relay.ts). `arrivedMs`: when the task arrived here (submitted,
   * for a home task); `home`: this cell is the task's home.
   */
  resultBack(arrivedMs: number, home: boolean, r: TaskResult): void;
  /** A request or a forwarded dispatch refused here, answered with `code`. */
  rejected(code: status): void;
  /** An agent stream or a child's link stream this cell ended with an error, and why (StreamEnd). */
  streamEnded(stream: EndedStream, reason: StreamEnd): void;
  /** The cell closed: stop reading it. */
  close(): void;
}

/** What the queue gauges group by. */
export interface KindTenant {
  readonly kind: string;
  readonly tenant: string;
}

/** What a meter reads of its cell (Cell implements it). */
export interface MeteredCell {
  readonly path: string;
  readonly leading: boolean;
  readonly scheduler: { now(): number };
  readonly ledger: Ledger;
  readonly ledgerLog: Leadership;
  readonly queue: { readonly size: number; withEnqueuedAt(): Iterable<readonly [KindTenant, number]> };
  inFlight(): number;
  /** Items this cell holds a route for; `via` set = an attempt sent on (routes.ts). */
  readonly routes: { values(): Iterable<KindTenant & { readonly via?: unknown }> };
  readonly agents: { readonly byId: { readonly size: number } } | undefined;
  readonly children: { readonly links: { readonly size: number } } | undefined;
  /** Tasks waiting for their flow key, by `c:key` / `r:key`, and for their tenant's ceiling (src/flow/gate.ts). */
  readonly home: {
    readonly flow: {
      backlog(): ReadonlyMap<string, number>;
      oldestWaiting(): ReadonlyMap<string, number>;
      readonly tenants: { waitingOf(t: string): number };
    };
    /** Refused sends of its attempts, since the replica started (home-refusals.ts, refusal-wait.ts). */
    readonly refusals?: { counts(): RefusalTotals };
  };
  /** Its forecasts per kind and the agents it should have (forecasts.ts). */
  readonly forecasts?: { recommendations(): readonly ScaleRecommendation[] };
  /** Its circuit breakers (dispatcher-breakers.ts): targets per state, and trips so far. */
  readonly breakers?: {
    counts(): { readonly closed: number; readonly open: number; readonly halfOpen: number };
    readonly trips: number;
  };
  /** Attempts it preempted, per kind (preemptor.ts). */
  readonly preemptor?: { readonly byKind: ReadonlyMap<string, number> };
}

/** What meshlb_refusals_total reads of a cell (home-refusals.ts `counts`). */
export interface RefusalTotals {
  readonly kept: number;
  readonly renumbered: number;
  readonly immediate: number;
  readonly delayed: number;
  readonly delayedMs: number;
  readonly noMatchBelow: number;
}

/** Builds a cell's meter; called once by the Cell constructor, which may not have its links attached yet. */
export type MeterFactory = (cell: MeteredCell) => CellMeter;

export const NO_LINK: LinkMeter = { sent: () => undefined, received: () => undefined };

export const NO_METER: CellMeter = {
  parent: NO_LINK,
  child: NO_LINK,
  agent: NO_LINK,
  resultBack: () => undefined,
  rejected: () => undefined,
  streamEnded: () => undefined,
  close: () => undefined,
};
