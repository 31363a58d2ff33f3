// The parent side of LinkService.Open: one stream per child cell (its leader).
// Up from the child: hello, summaries, dispatch acks, results, spill-ups and
// cancels; down to it: welcome, dispatches, cancels, drain, results (of tasks
// it spilled up) and acks (of its spill-ups). Credits per link: child-link.ts.
//
// Liveness: the child sends a summary at least every summaryIntervalMs, and
// the parent writes something at least every idleLinkIntervalMs
// (summary-pacer.ts; an empty `acks` batch when it had nothing else to say),
// so either end can tell a silent peer (a cut network that blackholes
// packets keeps TCP "up" for a long time) from a quiet one. A
// child with no message for linkTimeoutMs is dead: its stream ends with
// DEADLINE_EXCEEDED and its attempts fail back as lost at once, as on a break.
import type { ServerDuplexStream } from '@grpc/grpc-js';
import type { LinkHello, OpenRequest, OpenResponse } from '../gen/meshlb/v1/link.js';
import type { TaskCheckpoint, TaskRef, TaskResult } from '../gen/meshlb/v1/task.js';
import { makeCandidate, type Candidate, type KindSlots } from '../policies/index.js';
import { deadlineExceeded, invalidArgument, notFound, resourceExhausted } from '../util/errors.js';
import { LIMITS, overLimit } from '../util/limits.js';
import { ChildLink } from './child-link.js';
import { ChildrenLoads } from './children-load.js';
import { kindLabelsOf } from './label-groups.js';
import { isUndecodable } from './grpc-util.js';
import { endStream } from './stream-ends.js';
import { clip, refuseHello, type MeshIdentity } from './mesh-identity.js';
import { notLeadingError, type CellPort, type ChildSide, type SubtreeLoad } from './port.js';
import { idleLinkIntervalMs } from './summary-pacer.js';
import { planSteals, type StealView } from './steal.js';
import { routeKey, sendCounter, type WorkItem } from './types.js';

/** A child is asked for a kind at most once per this many summary intervals (steal.ts). */
const STEAL_PAUSE_SUMMARIES = 2;

/** Attempts a hello may name (link.proto); more are ignored. */
const MAX_HOLDING = LIMITS.holdingPerHello;

/** Why a link hello's strings are over their limits (LIMITS), or ''; checked before any lookup. */
function helloOverLimits(h: LinkHello): string {
  return (
    overLimit('hello.cell', h.cell, LIMITS.cellPath) ||
    overLimit('hello.replica_id', h.replicaId, LIMITS.replicaId) ||
    overLimit('hello.mesh', h.mesh, LIMITS.meshName) ||
    overLimit('hello.mesh_id', h.meshId, LIMITS.meshName) ||
    overLimit('hello.parent_cell', h.parentCell, LIMITS.cellPath)
  );
}

export class ChildLinks implements ChildSide {
  readonly links = new Map<string, ChildLink>();
  /** Links ended for silence (linkTimeoutMs). */
  readonly stats = { timedOut: 0, stealAsks: 0, givenBack: 0 };
  private readonly loads = new ChildrenLoads();
  /** Streams opened with no hello yet, and when (ended after linkTimeoutMs). */
  private readonly pending = new Map<ServerDuplexStream<OpenRequest, OpenResponse>, number>();
  /** Send numbers of this cell's dispatches (Dispatch.send): one counter for every child link, so unique on each. */
  private readonly nextSend = sendCounter();

  constructor(
    private readonly cell: CellPort,
    /** The paths of this cell's children: the only cells that may link. */
    private readonly children: readonly string[],
    /** Named in the welcome; a hello naming another mesh (or another cell as its parent) is refused. */
    private readonly mesh: MeshIdentity,
  ) {}

  /** LinkService.Open handler. */
  open(call: ServerDuplexStream<OpenRequest, OpenResponse>): void {
    const cell = this.cell;
    let link: ChildLink | undefined;
    this.pending.set(call, cell.scheduler.now());
    const fail = (err: unknown, what: string): void => {
      this.pending.delete(call);
      if (link) this.lost(link, what);
      endStream(call, err, cell, 'link', what);
    };
    call.on('data', (msg: OpenRequest) => {
      cell.meter.child.received();
      try {
        if (isUndecodable(msg))
          return fail(invalidArgument(`undecodable link message: ${msg.$invalid}`), 'link: garbage');
        const m = msg.msg;
        if (!m) return fail(invalidArgument('link message with no content'), 'link: empty message');
        if (link === undefined) {
          if (m.$case !== 'hello')
            return fail(invalidArgument('the first link message must be hello'), 'link: no hello');
          const child = m.value.cell;
          const h = m.value;
          const tooLong = helloOverLimits(h);
          if (tooLong) return fail(invalidArgument(tooLong), 'link: hello over limits');
          const claim = { mesh: h.mesh, meshId: h.meshId, cell: h.parentCell };
          const here = { mesh: this.mesh, cell: cell.path, replicaId: cell.replicaId };
          const refused = refuseHello(`link from cell ${clip(child)}`, claim, here);
          if (refused) return fail(refused, 'link: refused, another mesh or cell');
          const lead = cell.leaderHint();
          if (!lead.leading) return fail(notLeadingError(cell.path, lead), 'link: not the leader');
          if (!this.children.includes(child)) {
            return fail(notFound(`cell ${clip(child)} is not a child of ${cell.path}`), 'link: unknown cell');
          }
          this.pending.delete(call);
          link = this.accept(child, call, h.sendNumbers);
          cell.childHolds(child, m.value.holding.slice(0, MAX_HOLDING));
          return;
        }
        if (link.closed) return;
        link.lastSeenMs = cell.scheduler.now();
        link.suspectSinceMs = 0;
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

  private accept(child: string, call: ServerDuplexStream<OpenRequest, OpenResponse>, numbered: boolean): ChildLink {
    const cell = this.cell;
    const prev = this.links.get(child);
    const link: ChildLink = new ChildLink(
      child,
      call,
      cell.settings.batcher,
      cell.scheduler,
      (bytes) => {
        this.lost(link, 'child not reading');
        endStream(
          call,
          resourceExhausted(`link to ${child}: ${bytes} bytes unread`, 1000),
          cell,
          'link',
          'link overflow',
          'not_reading',
        );
      },
      cell.meter.child,
      this.nextSend,
      numbered,
    );
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
    link.lastSeenMs = link.lastSentMs = cell.scheduler.now();
    call.write({
      msg: {
        $case: 'welcome',
        value: {
          parentCell: cell.path,
          replicaId: cell.replicaId,
          leader: true,
          leaderId: cell.replicaId,
          mesh: this.mesh.name,
          meshId: this.mesh.id,
        },
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
        if (s.cell !== link.cell) throw invalidArgument(`summary for ${clip(s.cell)} on the link of ${link.cell}`);
        if (link.summary && s.seq <= link.summary.seq) return;
        link.applySummary(s, cell.scheduler.now());
        cell.candidatesChanged();
        cell.capacityChanged();
        if (link.queued.size > 0 || this.anyQueued) this.steal();
        return;
      }
      case 'givenBack': {
        // Unstarted attempts the child took out of its queue for us: place them again here.
        // Each names the send it came with (0 from a child that predates send numbers): an earlier send's is ignored.
        const { refs, sends } = m.value;
        const n = Math.min(refs.length, LIMITS.tasksPerBatch);
        for (let i = 0; i < n; i++) {
          const r = refs[i]!;
          cell.nacked(routeKey(r.taskId, r.attempt), `given back by ${link.cell} (work stealing)`, sends[i] ?? 0);
        }
        this.stats.givenBack += n;
        cell.candidatesChanged();
        return;
      }
      case 'acks': {
        let nack = false;
        for (const a of m.value.acks) {
          const item = link.acked(a);
          if (item === undefined || a.accepted) continue;
          nack = true;
          cell.nacked(item.key, a.reason, a.send || item.sendNo);
        }
        if (nack) cell.candidatesChanged();
        return;
      }
      case 'results':
        cell.deliverResults(m.value.results, link.via);
        return;
      case 'checkpoints':
        for (const cp of m.value.checkpoints) cell.deliverCheckpoint(cp);
        return;
      case 'spillUps': {
        const acks = cell.acceptForwarded(m.value.tasks, { type: 'child', cell: link.cell });
        for (const a of acks) link.sendAck(a);
        cell.capacityChanged();
        return;
      }
      case 'cancels':
        cell.cancelRefs(m.value.refs, `cancelled by ${link.cell}`);
        return;
    }
  }

  /** Some child reported queued work in its latest summary. */
  private get anyQueued(): boolean {
    for (const l of this.links.values()) if (l.queued.size > 0) return true;
    return false;
  }

  /** Ask loaded children to give queued work back while a sibling has room (steal.ts). */
  private steal(): void {
    const batch = this.cell.settings.stealBatch;
    if (batch <= 0 || this.links.size < 2) return;
    const now = this.cell.scheduler.now();
    const pause = STEAL_PAUSE_SUMMARIES * this.cell.settings.summaryIntervalMs;
    const kinds = new Set<string>();
    for (const l of this.links.values()) if (!l.closed) for (const k of l.queued.keys()) kinds.add(k);
    for (const kind of kinds) {
      const views: StealView[] = [];
      for (const l of this.links.values()) {
        if (l.closed || !l.summary || !l.total.get(kind) || l.summary.draining) continue;
        // Room to run now, not to wait in another queue: free slots, less what is on its way there.
        views.push({
          cell: l.cell,
          credit: Math.min(l.credits(kind), l.freeSlots.get(kind) ?? 0),
          queued: l.queued.get(kind) ?? 0,
          askable: l.askable(kind, now, pause),
        });
      }
      for (const ask of planSteals(kind, views, this.cell.queuedOfKind(kind), batch)) {
        this.links.get(ask.cell)?.sendSteal(kind, ask.max, now);
        this.stats.stealAsks++;
      }
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
    cell.childLost(link.cell);
    cell.candidatesChanged();
    cell.capacityChanged();
  }

  /**
   * From the cell's tick: keepalives to quiet links, and the end of silent
   * ones. Silence leaves out our own stalls (stall-clock.ts: ticks more than
   * a quarter timeout apart), and a link past the timeout is only suspected at
   * first and declared dead a quarter timeout later if still silent, so a stall
   * of our own event loop (data waiting in the socket, timers run first; a
   * message the peer's timer wrote after the stall may wait a loop turn more)
   * cannot kill a healthy link.
   */
  tick(now: number): void {
    const timeout = this.cell.settings.linkTimeoutMs;
    // Only liveness rides a keepalive: four per link timeout (summary-pacer.ts), not one per summary interval.
    const keepalive = idleLinkIntervalMs(this.cell.settings);
    const stalls = this.cell.linkStalls;
    stalls.tick(now);
    let dead: ChildLink[] | undefined;
    for (const link of this.links.values()) {
      if (link.closed) continue;
      if (stalls.silence(link.lastSeenMs, now) > timeout) {
        if (link.suspectSinceMs === 0) link.suspectSinceMs = now;
        else if (stalls.silence(link.suspectSinceMs, now) >= timeout / 4) (dead ??= []).push(link);
        continue;
      }
      link.suspectSinceMs = 0;
      if (link.quietFor(now, keepalive)) link.sendKeepalive();
    }
    for (const [call, since] of this.pending) {
      if (stalls.silence(since, now) <= timeout) continue;
      this.pending.delete(call);
      const why = deadlineExceeded(`no hello within ${timeout} ms`);
      endStream(call, why, this.cell, 'link', 'link: hello timeout', 'hello_timeout');
    }
    if (dead === undefined) return;
    for (const link of dead) {
      const silent = now - link.lastSeenMs;
      this.stats.timedOut++;
      this.lost(link, `no message for ${silent} ms (linkTimeoutMs ${timeout})`);
      const why = deadlineExceeded(`link from ${link.cell}: no message for ${silent} ms`);
      endStream(link.call, why, this.cell, 'link', 'child link timed out', 'silent');
    }
  }

  dispatch(child: string, item: WorkItem): void {
    const link = this.links.get(child);
    if (!link || link.closed) {
      this.cell.bounce(item, `no link to ${child}`);
      return;
    }
    link.dispatch(item);
  }

  /** A home attempt routed to `child` waits for its start to commit (ChildLink.promise). */
  promise(child: string, item: WorkItem): void {
    this.links.get(child)?.promise(item);
  }

  unpromise(item: WorkItem): void {
    if (item.via?.type === 'child') this.links.get(item.via.cell)?.unpromise(item);
  }

  sendResult(child: string, r: TaskResult): void {
    this.links.get(child)?.sendResult(r);
  }

  sendCheckpoint(child: string, cp: TaskCheckpoint): void {
    this.links.get(child)?.sendCheckpoint(cp);
  }

  sendCancel(child: string, ref: TaskRef): void {
    this.links.get(child)?.sendCancel(ref);
  }

  candidates(now: number): Candidate[] {
    const out: Candidate[] = [];
    for (const link of this.links.values()) {
      const s = link.summary;
      if (!s || link.closed) continue;
      const slots = new Map<string, KindSlots>();
      for (const [kind, total] of link.total) slots.set(kind, link.kindSlots(kind, total));
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
          kindLabels: kindLabelsOf(s), // its agents' label sets per kind: tasks with affinity (label-groups.ts)
          summaryAgeMs: now - link.summaryAtMs,
          draining: s.draining,
        }),
      );
    }
    return out;
  }

  /** Refreshed in place at each call (children-load.ts): read it before the next. */
  load(_now: number): SubtreeLoad {
    return this.loads.of(this.links.values());
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
