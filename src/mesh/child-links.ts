// The parent side of LinkService.Open: one stream per child cell (its leader).
// Up from the child: hello, summaries, dispatch acks, results, spill-ups and
// cancels; down to it: welcome, dispatches, cancels, drain, results (of tasks
// it spilled up) and acks (of its spill-ups).
//
// Credits: a child may get a task of kind K only while
//   free_K(latest summary) − unacked_K − ackedSinceSummary_K > 0
// where unacked counts dispatches sent and not yet acked, and ackedSinceSummary
// those acked after the latest summary. The child always sends a summary after
// a flush that carried acks, computed after handling the dispatches, so a
// summary counts every dispatch acked before it; nacks return the credit.
//
// Liveness: the child sends a summary at least every summaryIntervalMs, and the
// parent writes something at least as often (an empty `acks` batch when it had
// nothing else to say), so either end can tell a silent peer (a cut network
// that blackholes packets keeps TCP "up" for a long time) from a quiet one. A
// child with no message for linkTimeoutMs is dead: its stream ends with
// DEADLINE_EXCEEDED and its attempts fail back as lost at once, as on a break.
import type { ServerDuplexStream } from '@grpc/grpc-js';
import type { OpenRequest, OpenResponse, Summary } from '../gen/meshlb/v1/link.js';
import type { Dispatch, TaskRef, TaskResult } from '../gen/meshlb/v1/task.js';
import { makeCandidate, type Candidate } from '../policies/index.js';
import { deadlineExceeded, invalidArgument, notFound, resourceExhausted } from '../util/errors.js';
import { StreamBatcher } from './batcher.js';
import type { Cell } from './cell.js';
import { failStream, isUndecodable } from './grpc-util.js';
import type { Capacity, SubtreeLoad } from './summary.js';
import { routeKey, type WorkItem } from './types.js';

const enum Lane {
  Acks,
  Results,
  Cancels,
  Dispatches,
  Drain,
  /** An empty `acks` batch: "still here", when nothing else went out for summaryIntervalMs. */
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
  summaryAtMs = 0;
  readonly free = new Map<string, number>();
  readonly total = new Map<string, number>();
  readonly healthy = new Map<string, number>();
  readonly unacked = new Map<string, number>();
  readonly ackedSinceSummary = new Map<string, number>();
  /** Dispatches awaiting an ack: route key → kind. */
  readonly sent = new Map<string, string>();
  readonly batcher: StreamBatcher<OpenResponse>;
  closed = false;
  /** When the child last sent anything (ms). */
  lastSeenMs = 0;
  /** When we last wrote to it (ms), and the batcher's message count then. */
  lastSentMs = 0;
  private sentMark = 0;
  /** Past the timeout at the previous check (declared dead only if still so at the next one). */
  suspect = false;

  constructor(
    readonly cell: string,
    readonly call: ServerDuplexStream<OpenRequest, OpenResponse>,
    owner: Cell,
    onOverflow: (bytes: number) => void,
  ) {
    this.batcher = new StreamBatcher<OpenResponse>(
      call,
      [
        { wrap: (acks) => ({ msg: { $case: 'acks', value: { acks } } }), sizeOf: () => 48 },
        { wrap: (results) => ({ msg: { $case: 'results', value: { results } } }), sizeOf: resultSize },
        { wrap: (refs) => ({ msg: { $case: 'cancels', value: { refs } } }), sizeOf: () => 40 },
        { wrap: (tasks) => ({ msg: { $case: 'dispatches', value: { tasks } } }), sizeOf: dispatchSize },
        { wrap: (d) => ({ msg: { $case: 'drain', value: d[d.length - 1] } }), sizeOf: () => 16 },
        { wrap: () => KEEPALIVE, sizeOf: () => 8 },
      ],
      owner.settings.batcher,
      onOverflow,
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

  credits(kind: string): number {
    const f = this.free.get(kind) ?? 0;
    return Math.max(0, f - (this.unacked.get(kind) ?? 0) - (this.ackedSinceSummary.get(kind) ?? 0));
  }

  applySummary(s: Summary, now: number): void {
    this.summary = s;
    this.summaryAtMs = now;
    this.free.clear();
    this.total.clear();
    this.healthy.clear();
    for (const k of s.kinds) {
      this.free.set(k.kind, k.freeSlots);
      this.total.set(k.kind, k.totalSlots);
      this.healthy.set(k.kind, k.healthyAgents);
    }
    this.ackedSinceSummary.clear();
  }
}

export class ChildLinks {
  readonly links = new Map<string, ChildLink>();
  /** Links accepted, and links ended for silence (linkTimeoutMs). */
  readonly stats = { accepted: 0, timedOut: 0, keepalives: 0 };
  /** Streams opened with no hello yet, and when (ended after linkTimeoutMs). */
  private readonly pending = new Map<ServerDuplexStream<OpenRequest, OpenResponse>, number>();

  constructor(private readonly cell: Cell) {}

  /** LinkService.Open handler. */
  open(call: ServerDuplexStream<OpenRequest, OpenResponse>): void {
    const cell = this.cell;
    let link: ChildLink | undefined;
    this.pending.set(call, cell.now());
    const fail = (err: unknown, what: string): void => {
      this.pending.delete(call);
      if (link) this.lost(link, what);
      failStream(call, err, cell.log, what);
    };
    call.on('data', (msg: OpenRequest) => {
      try {
        if (isUndecodable(msg))
          return fail(invalidArgument(`undecodable link message: ${msg.$invalid}`), 'link: garbage');
        const m = msg.msg;
        if (!m) return fail(invalidArgument('link message with no content'), 'link: empty message');
        if (link === undefined) {
          if (m.$case !== 'hello')
            return fail(invalidArgument('the first link message must be hello'), 'link: no hello');
          const child = m.value.cell;
          if (!cell.spec.children.includes(child)) {
            return fail(notFound(`cell ${JSON.stringify(child)} is not a child of ${cell.path}`), 'link: unknown cell');
          }
          this.pending.delete(call);
          link = this.accept(child, call);
          return;
        }
        if (link.closed) return;
        link.lastSeenMs = cell.now();
        link.suspect = false;
        this.handle(link, m);
      } catch (err) {
        fail(err, 'link: message handling failed');
      }
    });
    const gone = (): void => {
      this.pending.delete(call);
      if (link) this.lost(link, 'link closed by child');
    };
    call.on('end', () => {
      gone();
      try {
        call.end();
      } catch {
        // already ended
      }
    });
    call.on('error', gone);
    call.on('cancelled', gone);
    call.on('close', gone);
  }

  private accept(child: string, call: ServerDuplexStream<OpenRequest, OpenResponse>): ChildLink {
    const cell = this.cell;
    const prev = this.links.get(child);
    const link: ChildLink = new ChildLink(child, call, cell, (bytes) => {
      this.lost(link, 'child not reading');
      failStream(call, resourceExhausted(`link to ${child}: ${bytes} bytes unread`, 1000), cell.log, 'link overflow');
    });
    if (prev) {
      // The child (or its new leader) reconnected: the old stream's attempts are lost.
      this.lost(prev, 'replaced by a new link');
      try {
        prev.call.end();
      } catch {
        // gone
      }
    }
    this.links.set(child, link);
    link.lastSeenMs = link.lastSentMs = cell.now();
    this.stats.accepted++;
    call.write({
      msg: {
        $case: 'welcome',
        value: { parentCell: cell.path, replicaId: cell.replicaId, leader: true, leaderId: cell.replicaId },
      },
    });
    cell.log.info({ child }, 'child linked');
    return link;
  }

  private handle(link: ChildLink, m: NonNullable<OpenRequest['msg']>): void {
    const cell = this.cell;
    switch (m.$case) {
      case 'hello':
        throw invalidArgument('hello sent twice');
      case 'summary': {
        const s = m.value;
        if (s.cell !== link.cell) throw invalidArgument(`summary for ${s.cell} on the link of ${link.cell}`);
        if (link.summary && s.seq <= link.summary.seq) return;
        link.applySummary(s, cell.now());
        cell.dispatcher.invalidate();
        cell.parent?.capacityChanged();
        return;
      }
      case 'acks': {
        let nack = false;
        for (const a of m.value.acks) {
          const key = routeKey(a.taskId, a.attempt);
          const kind = link.sent.get(key);
          if (kind === undefined) continue;
          link.sent.delete(key);
          inc(link.unacked, kind, -1);
          if (a.accepted) inc(link.ackedSinceSummary, kind, 1);
          else {
            nack = true;
            cell.nacked(key, a.reason);
          }
        }
        if (nack) cell.dispatcher.invalidate();
        return;
      }
      case 'results':
        cell.deliverResults(m.value.results);
        return;
      case 'spillUps': {
        const acks = cell.acceptForwarded(m.value.tasks, { t: 'child', cell: link.cell });
        for (const a of acks) link.batcher.push(Lane.Acks, a);
        cell.parent?.capacityChanged();
        return;
      }
      case 'cancels':
        cell.cancelRefs(m.value.refs, `cancelled by ${link.cell}`);
        return;
    }
  }

  private lost(link: ChildLink, why: string): void {
    if (link.closed) return;
    link.closed = true;
    link.batcher.close();
    if (this.links.get(link.cell) !== link) return;
    this.links.delete(link.cell);
    const cell = this.cell;
    cell.log.warn({ child: link.cell, why }, 'child link lost');
    // Attempts the child spilled up to us can no longer report back: drop them
    // (the child fails them itself); attempts we sent down fail back as lost.
    const drop: [string, WorkItem][] = [];
    for (const e of cell.routes) if (e[1].origin.t === 'child' && e[1].origin.cell === link.cell) drop.push(e);
    for (const [key, item] of drop) cell.cancelRoute(key, item, `child ${link.cell} gone`);
    cell.viaLost((v) => v.t === 'child' && v.cell === link.cell, `link to ${link.cell} lost`);
    cell.dispatcher.invalidate();
    cell.parent?.capacityChanged();
  }

  /**
   * From the cell's tick: keepalives to quiet links, and the end of silent
   * ones. A link past the timeout is only suspected at first and declared dead
   * at a later tick if still silent, so a stall of our own event loop (data
   * waiting in the socket, timers run first) cannot kill a healthy link.
   */
  tick(now: number): void {
    const timeout = this.cell.settings.linkTimeoutMs;
    const keepalive = this.cell.settings.summaryIntervalMs;
    let dead: ChildLink[] | undefined;
    for (const link of this.links.values()) {
      if (link.closed) continue;
      if (now - link.lastSeenMs > timeout) {
        if (link.suspect) (dead ??= []).push(link);
        else link.suspect = true;
        continue;
      }
      link.suspect = false;
      if (link.quietFor(now, keepalive)) {
        link.batcher.push(Lane.Keepalive, true);
        this.stats.keepalives++;
      }
    }
    for (const [call, since] of this.pending) {
      if (now - since <= timeout) continue;
      this.pending.delete(call);
      failStream(call, deadlineExceeded(`no hello within ${timeout} ms`), this.cell.log, 'link: hello timeout');
    }
    if (dead === undefined) return;
    for (const link of dead) {
      const silent = now - link.lastSeenMs;
      this.stats.timedOut++;
      this.lost(link, `no message for ${silent} ms (linkTimeoutMs ${timeout})`);
      failStream(
        link.call,
        deadlineExceeded(`link from ${link.cell}: no message for ${silent} ms`),
        this.cell.log,
        'child link timed out',
      );
    }
  }

  dispatch(child: string, item: WorkItem): void {
    const link = this.links.get(child);
    if (!link || link.closed) {
      this.cell.bounce(item, `no link to ${child}`);
      return;
    }
    link.sent.set(item.key, item.kind);
    inc(link.unacked, item.kind, 1);
    link.batcher.push(Lane.Dispatches, wireDispatch(item));
  }

  sendResult(child: string, r: TaskResult): void {
    this.links.get(child)?.batcher.push(Lane.Results, r);
  }

  sendCancel(child: string, ref: TaskRef): void {
    this.links.get(child)?.batcher.push(Lane.Cancels, ref);
  }

  drain(child: string, drain: boolean, reason: string): boolean {
    const link = this.links.get(child);
    link?.batcher.push(Lane.Drain, { reason, drain });
    return link !== undefined;
  }

  candidates(now: number): Candidate[] {
    const out: Candidate[] = [];
    for (const link of this.links.values()) {
      const s = link.summary;
      if (!s || link.closed) continue;
      const slots = new Map<string, { free: number; total: number }>();
      for (const [kind, total] of link.total) slots.set(kind, { free: link.credits(kind), total });
      let depth = 0;
      for (const q of s.queue) depth += q.depth;
      out.push(
        makeCandidate({
          id: link.cell,
          slots,
          healthyAgents: s.healthyAgents,
          queueDepth: depth,
          active: s.activeTasks,
          utilization: s.utilization ?? {},
          latencyEwmaMs: s.latencyEwmaMs,
          successEwma: s.successEwma,
          labels: s.labels,
          summaryAgeMs: now - link.summaryAtMs,
          draining: s.draining,
        }),
      );
    }
    return out;
  }

  load(_now: number): SubtreeLoad {
    const capacity = new Map<string, Capacity>();
    let healthyAgents = 0;
    let cpu = 0;
    let memory = 0;
    let lat = 0;
    let succ = 0;
    let n = 0;
    for (const link of this.links.values()) {
      const s = link.summary;
      if (!s || link.closed) continue;
      n++;
      healthyAgents += s.healthyAgents;
      cpu += s.utilization?.cpu ?? 0;
      memory += s.utilization?.memory ?? 0;
      lat += s.latencyEwmaMs;
      succ += s.successEwma;
      for (const [kind, total] of link.total) {
        let c = capacity.get(kind);
        if (!c) capacity.set(kind, (c = { free: 0, total: 0, healthy: 0 }));
        c.free += s.draining ? 0 : link.credits(kind);
        c.total += total;
        c.healthy += link.healthy.get(kind) ?? 0;
      }
    }
    return {
      capacity,
      healthyAgents,
      cpu: n ? cpu / n : 0,
      memory: n ? memory / n : 0,
      latencyEwmaMs: n ? lat / n : 0,
      successEwma: n ? succ / n : 1,
    };
  }

  closeAll(): void {
    this.pending.clear();
    for (const link of [...this.links.values()]) {
      link.closed = true;
      link.batcher.close();
      try {
        link.call.end();
      } catch {
        // gone
      }
    }
    this.links.clear();
  }
}

/** The Dispatch for an item: the one it arrived as (same attempt, lease and spec), else a new one. */
export function wireDispatch(item: WorkItem): Dispatch {
  return (
    item.wire ?? {
      taskId: item.taskId,
      attempt: item.attempt,
      homeCell: item.homeCell,
      spec: item.spec,
      leaseMs: item.leaseMs,
    }
  );
}

export function dispatchSize(d: Dispatch): number {
  return 96 + (d.spec?.payload.length ?? 0) + (d.spec?.kind.length ?? 0);
}

export function resultSize(r: TaskResult): number {
  return 64 + r.output.length + r.error.length;
}
