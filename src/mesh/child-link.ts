// One child's link at its parent: the stream, what the child last reported,
// and the dispatch credits that follow from it.
//
// Credits: a child may get a task of kind K only while
//   free_K(latest summary) − unacked_K − ackedSinceSummary_K > 0
// where free_K is the summary's free plus prefetch slots of K, unacked counts dispatches sent and not yet acked, and ackedSinceSummary
// those acked after the latest summary. The child always sends a summary after
// a flush that carried acks, computed after handling the dispatches, so a
// summary counts every dispatch acked before it; nacks return the credit.
//
// Every dispatch on the link carries a number unique there (Dispatch.send, from the
// cell's counter: ChildLinks), and the bookkeeping is keyed by it, not by the attempt:
// an attempt refused below is sent again under its number (docs/mesh.md, "Attempt
// numbers and refusals"), maybe before the child's held ack of the first send came,
// and that late ack must settle the first send, not the second. A child that predates
// the field (its hello lacks send_numbers) is matched by attempt, as before.
import type { ServerDuplexStream } from '@grpc/grpc-js';
import type { DispatchAck, OpenRequest, OpenResponse, Summary } from '../gen/meshlb/v1/link.js';
import type { TaskCheckpoint, TaskRef, TaskResult } from '../gen/meshlb/v1/task.js';
import { NumberMap } from '../util/number-map.js';
import type { KindSlots, SpeedGroups } from '../policies/index.js';
import { StringMap } from '../util/string-map.js';
import { StreamBatcher, type BatcherOptions } from './batcher.js';
import { NO_LINK, type LinkMeter } from './meter.js';
import type { Scheduler } from './scheduler.js';
import { slotsOf } from './slot-map.js';
import { creditOf } from './summary.js';
import { routeKey, sendCounter, type Via, type WorkItem } from './types.js';
import { checkpointSize, dispatchSize, resultSize, wireDispatch } from './wire.js';
import { withSend } from './wire-codec.js';

const enum Lane {
  Acks,
  /** Checkpoints of tasks the child is home for, ahead of their results. */
  Checkpoints,
  Results,
  Cancels,
  Dispatches,
  /** Work stealing asks (steal.ts). */
  Steals,
  /** An empty `acks` batch: "still here", when nothing else went out for idleLinkIntervalMs (summary-pacer.ts). */
  Keepalive,
}

const KEEPALIVE: OpenResponse = { msg: { $case: 'acks', value: { acks: [] } } };

const inc = (m: Map<string, number>, k: string, d: number): void => {
  const v = (m.get(k) ?? 0) + d;
  if (v <= 0) m.delete(k);
  else m.set(k, v);
};

export class ChildLink {
  summary: Summary | undefined;
  /** Where an attempt sent on this link went (a route's via). */
  readonly via: Via;
  summaryAtMs = 0;
  /** Per kind, from the latest summary: free plus prefetch slots (the credit basis). */
  readonly free = new Map<string, number>();
  readonly total = new Map<string, number>();
  readonly healthy = new Map<string, number>();
  /** Per kind, from the latest summary: tasks waiting in the child's own queue, and its free slots (no prefetch). */
  readonly queued = new Map<string, number>();
  readonly freeSlots = new Map<string, number>();
  /** Per kind, from the latest summary: attempts a critical task sent there could preempt (preemptor.ts). */
  readonly preemptible = new Map<string, number>();
  /** Per kind: critical tasks sent past the credits, for preemption, since the latest summary. */
  readonly overdraft = new Map<string, number>();
  /**
   * Per kind, since the latest summary, dispatches decided while the credits were short of their
   * slots: all of them, and the guaranteed ones (a tenant's minimum, guaranteed.ts). The rest is
   * preemption's (its overdraft counts them); the mesh simulator's `credits` check holds the link to that.
   */
  readonly pastCredit = new Map<string, number>();
  readonly pastGuaranteed = new Map<string, number>();
  /** Per kind: the summary seq and time of our last steal ask (ask again only on a newer summary, after a pause). */
  private readonly askedSeq = new Map<string, number>();
  private readonly askedMs = new Map<string, number>();
  /**
   * Home attempts routed here whose `dispatched` command has not committed yet (their slots per
   * kind): the picker took their credits, the link must too, or a picker rebuilt meanwhile would
   * offer them again. They go on dispatch, or when the home's ledger decided not to send them. Keyed by
   * the item's id (one per attempt), in a StringMap: set and deleted per task, a Map remade its table.
   */
  private readonly promised = new StringMap<number>();
  /** Per kind, their slots; a kind's entry stays at 0 (it goes 0, 1, 0 every pump: a Map remade its table). */
  private readonly promisedOf = new Map<string, number>();
  /** Promised items already counted in pastCredit when promised (the decision's moment, not the send's). */
  private readonly judged = new WeakSet<WorkItem>();
  /** Per kind: dispatches sent and not yet acked, and those acked since the latest summary. */
  readonly unacked = new Map<string, number>();
  readonly ackedSinceSummary = new Map<string, number>();
  /** Dispatches awaiting an ack, by their send number (unacked_K counts their slots); its table is not remade per task. */
  readonly sent = new NumberMap<WorkItem>();
  /** A child that predates send numbers: route key → the send awaiting its ack (undefined for one that echoes them). */
  private readonly byKey: StringMap<number> | undefined;
  /** Per kind, from the latest summary: the roomiest agent's free slots, and the biggest agent (docs/gang.md). */
  private readonly largestFree = new Map<string, number>();
  private readonly largestTotal = new Map<string, number>();
  /** Per kind, from the latest summary: the most free slots at one node below (gangs, docs/gang.md). */
  readonly nodeFree = new Map<string, number>();
  /** Per kind, from the latest summary: a node's agents by speed (src/policies/completion.ts); none: not reported. */
  private readonly speed = new Map<string, SpeedGroups>();
  /** Slots of dispatches of several slots: per send awaiting an ack, and per kind since the summary. */
  private readonly sentBig = new Map<number, number>();
  private readonly bigSinceSummary = new Map<string, number>();
  readonly batcher: StreamBatcher<OpenResponse>;
  closed = false;
  /** When the child last sent anything (ms). */
  lastSeenMs = 0;
  /** When we last wrote to it (ms), and the batcher's message count then. */
  lastSentMs = 0;
  private sentMark = 0;
  /** Past the timeout since this tick (ms; 0: not), declared dead only if still so a quarter timeout on. */
  suspectSinceMs = 0;

  constructor(
    readonly cell: string,
    readonly call: ServerDuplexStream<OpenRequest, OpenResponse>,
    batcher: BatcherOptions,
    scheduler: Scheduler,
    onOverflow: (bytes: number) => void,
    /** Counts the messages written to it (the cell's child-link meter). */
    meter: LinkMeter = NO_LINK,
    /** The next send number on this cell's child links (unique on each: ChildLinks). */
    private readonly nextSend: () => number = sendCounter(),
    /** The child echoes Dispatch.send (its hello's send_numbers): false keys its acks by attempt. */
    numbered = true,
  ) {
    this.byKey = numbered ? undefined : new StringMap<number>();
    this.via = { type: 'child', cell };
    this.batcher = new StreamBatcher<OpenResponse>(
      call,
      [
        { wrap: (acks) => ({ msg: { $case: 'acks', value: { acks } } }), sizeOf: () => 48 },
        { wrap: (checkpoints) => ({ msg: { $case: 'checkpoints', value: { checkpoints } } }), sizeOf: checkpointSize },
        { wrap: (results) => ({ msg: { $case: 'results', value: { results } } }), sizeOf: resultSize },
        { wrap: (refs) => ({ msg: { $case: 'cancels', value: { refs } } }), sizeOf: () => 40 },
        { wrap: (tasks) => ({ msg: { $case: 'dispatches', value: { tasks } } }), sizeOf: dispatchSize },
        { wrap: (kinds) => ({ msg: { $case: 'steal', value: { kinds } } }), sizeOf: () => 40 },
        { wrap: () => KEEPALIVE, sizeOf: () => 8 },
      ],
      batcher,
      scheduler,
      onOverflow,
      undefined,
      meter,
    );
  }

  /** Note a write since the last check; true when nothing went out for `quietMs`. */
  quietFor(now: number, quietMs: number): boolean {
    if (this.batcher.messages !== this.sentMark) {
      this.sentMark = this.batcher.messages;
      this.lastSentMs = now;
      return false;
    }
    return now - this.lastSentMs >= quietMs;
  }

  /** Credits in slots: what the summary offered less the slots sent since (a task of N slots takes N). */
  credits(kind: string): number {
    const f = this.free.get(kind) ?? 0;
    const out = (this.unacked.get(kind) ?? 0) + (this.ackedSinceSummary.get(kind) ?? 0);
    return Math.max(0, f - out - (this.promisedOf.get(kind) ?? 0));
  }

  /** A home attempt routed here waits for its start to commit: its slots' credits are taken now. */
  promise(item: WorkItem): void {
    if (this.promised.has(item.id)) return;
    const n = slotsOf(item.spec);
    this.judge(item, n);
    this.judged.add(item);
    this.promised.set(item.id, n);
    this.promisedOf.set(item.kind, (this.promisedOf.get(item.kind) ?? 0) + n);
  }

  /** Its start was decided (sent, refused, or this replica stopped leading): its promise goes. */
  unpromise(item: WorkItem): void {
    const n = this.promised.get(item.id);
    if (n === undefined) return;
    this.promised.delete(item.id);
    this.promisedOf.set(item.kind, this.promisedOf.get(item.kind)! - n);
  }

  /**
   * For tasks of several slots: the child's roomiest agent's free slots as
   * last reported, less the slots of such tasks sent since (each may have
   * landed there), never above its credits; and its biggest agent.
   */
  largest(kind: string): { free: number; total: number } {
    const total = this.largestTotal.get(kind) ?? this.total.get(kind) ?? 0;
    const reported = this.largestFree.get(kind) ?? this.freeSlots.get(kind) ?? 0;
    return { free: Math.max(0, Math.min(reported - (this.bigSinceSummary.get(kind) ?? 0), this.credits(kind))), total };
  }

  /** What the parent's picker sees of the kind here (child-links.ts candidates). */
  kindSlots(kind: string, total: number): KindSlots {
    const big = this.largest(kind);
    const nodeFree = this.nodeFree.get(kind) ?? 0;
    const g = this.speed.get(kind);
    const s = { free: this.credits(kind), total, largestFree: big.free, largestTotal: big.total, nodeFree };
    return g === undefined ? s : { ...s, speed: g };
  }

  applySummary(s: Summary, now: number): void {
    this.summary = s;
    this.summaryAtMs = now;
    this.free.clear();
    this.total.clear();
    this.healthy.clear();
    this.queued.clear();
    this.freeSlots.clear();
    this.preemptible.clear();
    this.overdraft.clear();
    this.pastCredit.clear();
    this.pastGuaranteed.clear();
    this.largestFree.clear();
    this.largestTotal.clear();
    this.nodeFree.clear();
    this.speed.clear();
    this.bigSinceSummary.clear();
    // Unacked big dispatches are not in this summary yet: they still count.
    for (const [send, n] of this.sentBig) inc(this.bigSinceSummary, this.sent.get(send)!.kind, n);
    for (const k of s.kinds) {
      if (k.preemptible > 0) this.preemptible.set(k.kind, k.preemptible);
      if (k.queued > 0) this.queued.set(k.kind, k.queued);
      // largest_total is never 0 beside agents of the kind: 0 is a peer that predates the fields.
      if (k.largestTotal > 0) {
        this.largestFree.set(k.kind, k.largestFree);
        this.largestTotal.set(k.kind, k.largestTotal);
      }
      this.freeSlots.set(k.kind, k.freeSlots);
      if (k.nodeFree > 0) this.nodeFree.set(k.kind, k.nodeFree);
      // Groups of a malformed report (lengths differ) are ignored: the parent places by load.
      const n = k.speedServiceMs?.length ?? 0;
      if (n > 0 && k.speedSlots?.length === n && k.speedFree?.length === n) {
        const speed = { serviceMs: k.speedServiceMs, slots: k.speedSlots, free: k.speedFree, queued: k.queued };
        this.speed.set(k.kind, speed);
      }
      this.free.set(k.kind, creditOf(k));
      this.total.set(k.kind, k.totalSlots);
      this.healthy.set(k.kind, k.healthyAgents);
    }
    this.ackedSinceSummary.clear();
  }

  /** Send `item` down under a new send number: it holds its slots' credits of its kind until that send is acked. */
  dispatch(item: WorkItem): void {
    const n = slotsOf(item.spec);
    this.unpromise(item);
    if (!this.judged.delete(item)) this.judge(item, n);
    const send = this.nextSend();
    item.sendNo = send;
    if (this.byKey !== undefined) {
      // A child that predates send numbers answers by attempt: an earlier send of this attempt still
      // awaiting its ack was refused past the child after it accepted it (its ack, held, says accepted).
      const earlier = this.byKey.get(item.key);
      if (earlier !== undefined) this.settle(earlier, true);
      this.byKey.set(item.key, send);
    }
    this.sent.set(send, item);
    inc(this.unacked, item.kind, n);
    if (n > 1) {
      this.sentBig.set(send, n);
      inc(this.bigSinceSummary, item.kind, n);
    }
    this.batcher.push(Lane.Dispatches, withSend(wireDispatch(item), send));
  }

  /** Count `item` in pastCredit if the credits are short of its `n` slots now. */
  private judge(item: WorkItem, n: number): void {
    if (this.credits(item.kind) >= n) return;
    inc(this.pastCredit, item.kind, 1);
    if (item.guaranteed) inc(this.pastGuaranteed, item.kind, 1);
  }

  /**
   * The child answered a dispatch: that send's credits move (accepted) or return (refused). The item
   * and the send number, if it was a send awaiting its ack here; undefined for anything else (a
   * duplicate, or an ack naming an attempt that send was not of).
   */
  acked(a: DispatchAck): WorkItem | undefined {
    let send = a.send;
    if (this.byKey !== undefined) {
      const key = routeKey(a.taskId, a.attempt);
      send = this.byKey.get(key) ?? 0;
      this.byKey.delete(key);
    }
    const item = this.sent.get(send);
    if (item === undefined || item.taskId !== a.taskId || item.attempt !== a.attempt) return undefined;
    this.settle(send, a.accepted);
    return item;
  }

  /** Send `send` was answered (or, for a child without send numbers, superseded as accepted). */
  private settle(send: number, accepted: boolean): void {
    const kind = this.sent.get(send)!.kind;
    this.sent.delete(send);
    const n = this.sentBig.size === 0 ? 1 : (this.sentBig.get(send) ?? 1);
    if (n > 1) {
      this.sentBig.delete(send);
      if (!accepted) inc(this.bigSinceSummary, kind, -n);
    }
    inc(this.unacked, kind, -n);
    if (accepted) inc(this.ackedSinceSummary, kind, n);
  }

  /** The kinds and slots of the sends awaiting an ack (the mesh simulator's `credits` check). */
  awaitingAck(): Map<string, number> {
    const out = new Map<string, number>();
    this.sent.forEach((item) => out.set(item.kind, (out.get(item.kind) ?? 0) + slotsOf(item.spec)));
    return out;
  }

  sendAck(a: DispatchAck): void {
    this.batcher.push(Lane.Acks, a);
  }

  sendResult(r: TaskResult): void {
    this.batcher.push(Lane.Results, r);
  }

  sendCheckpoint(cp: TaskCheckpoint): void {
    this.batcher.push(Lane.Checkpoints, cp);
  }

  sendCancel(ref: TaskRef): void {
    this.batcher.push(Lane.Cancels, ref);
  }

  /**
   * Whether the child may be asked for `kind` again: a newer summary came since the last
   * ask (it shows what that ask left), and `pauseMs` passed (work a policy sends back to
   * the giver cannot bounce between siblings faster than that).
   */
  askable(kind: string, now: number, pauseMs: number): boolean {
    const seq = this.askedSeq.get(kind);
    if (seq === undefined) return true;
    return (this.summary?.seq ?? 0) > seq && now - (this.askedMs.get(kind) ?? 0) >= pauseMs;
  }

  /** Ask the child for up to `max` of its queued tasks of `kind` back. */
  sendSteal(kind: string, max: number, now: number): void {
    this.askedSeq.set(kind, this.summary?.seq ?? 0);
    this.askedMs.set(kind, now);
    this.batcher.push(Lane.Steals, { kind, max });
  }

  sendKeepalive(): void {
    this.batcher.push(Lane.Keepalive, true);
  }
}
