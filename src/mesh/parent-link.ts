// The child side of LinkService.Open: this cell's leader keeps one stream to
// its parent (to every parent replica once cells are replicated; one for now)
// and reconnects with backoff and jitter when it breaks.
//
// Up: hello, then acks, results, spill-ups, cancels and — always last in a
// flush — a summary. When a summary goes out and when accepted acks are
// written (held until the next summary; nacks at once) is summary-pacer.ts.
//
// Liveness: the parent writes at least every idleLinkIntervalMs (an empty
// `acks` batch when idle; summary-pacer.ts), we send a summary at least every
// summaryIntervalMs. A parent silent for linkTimeoutMs — no welcome
// after the hello, or nothing since — is gone even if TCP says otherwise (a
// blackholed network): the stream is cancelled, attempts from the parent are
// dropped and spill-ups fail back as on any break, and we reconnect with
// backoff.
import { status, type ServiceError } from '@grpc/grpc-js';
import type { OpenRequest, OpenResponse } from '../gen/meshlb/v1/link.js';
import type { DispatchAck } from '../gen/meshlb/v1/link.js';
import type { Dispatch, TaskCheckpoint, TaskRef, TaskResult } from '../gen/meshlb/v1/task.js';
import { parentOf } from '../topology/paths.js';
import { LIMITS } from '../util/limits.js';
import { ResultKeeper } from './result-keeper.js';
import { StreamBatcher } from './batcher.js';
import { grpcLinkDialer, type DialedLink, type LinkCall, type LinkDialer } from './link-dialer.js';
import { clip, refuseHello, type MeshIdentity } from './mesh-identity.js';
import type { CellPort, ParentSide } from './port.js';
import type { Summarizer } from './summary.js';
import { SummaryPacer } from './summary-pacer.js';
import { FROM_PARENT, routeKey, sendCounter, TO_PARENT, type GivenRef, type WorkItem } from './types.js';
import { checkpointSize, dispatchSize, resultSize, wireDispatch } from './wire.js';
import { withSend } from './wire-codec.js';
import { LEADER_ADDRESS_TRAILER } from '../util/errors.js';

const enum Lane {
  Acks,
  /** Before results: a checkpoint reaches the home ahead of the hand-back written after it. */
  Checkpoints,
  Results,
  SpillUps,
  Cancels,
  /** Attempts given back for a steal ask (steal.ts). */
  GivenBack,
  Summary,
}

/** Attempts from the parent named in a hello (link.proto), at most. */
const MAX_HOLDING = 50_000;
/** After a refusal that names the leader, try it this soon (ms). */
const REDIRECT_DELAY_MS = 20;

// The dialers (grpc-js, the lean http2 client) live in link-dialer.ts.
export { grpcDialer, grpcLinkDialer, type DialedLink, type LinkDialer } from './link-dialer.js';

export class ParentLink implements ParentSide {
  connected = false;
  private dialed: DialedLink | undefined;
  private call: LinkCall | undefined;
  private batcher: StreamBatcher<OpenRequest> | undefined;
  /** When summaries go out and accepted acks are written (summary-pacer.ts). */
  private readonly pacer: SummaryPacer;
  private attempt = 0;
  private reconnectAtMs = 0;
  private closed = false;
  /** Linking only while this replica leads its cell (start/stop). */
  private running = false;
  private addressIdx = 0;
  /** The parent's leader as a refusal named it: tried first on the next connect. */
  private preferred = '';
  /** Results a change of parent leader must not lose (result-keeper.ts); made at the first start(). */
  private kept: ResultKeeper | undefined;
  /** When the parent last sent anything on the current stream (ms; its opening counts). */
  private lastHeardMs = 0;
  /** Past the timeout since this tick (ms; 0: not), declared dead only if still so a quarter timeout on. */
  private suspectSinceMs = 0;
  /** Streams opened, streams ended for silence (linkTimeoutMs), the transport of the last (link-dialer.ts). */
  readonly stats = { opened: 0, timedOut: 0, transport: '' };
  /** Send numbers of our spill-ups (Dispatch.send). */
  private readonly nextSend = sendCounter();
  /** The address this replica serves on (reported in summaries). */
  selfAddress = '';
  /** The last refusal logged (another mesh or cell): logged once, not at every retry. */
  private lastRefusal = '';

  constructor(
    private readonly cell: CellPort,
    summaries: Summarizer,
    private readonly addresses: () => readonly string[],
    /** Named in the hello; a welcome from another mesh is not taken. */
    private readonly mesh: MeshIdentity,
    private readonly dial: LinkDialer = grpcLinkDialer,
  ) {
    this.pacer = new SummaryPacer(summaries);
  }

  /** Link up (this replica leads its cell). Idempotent. */
  start(): void {
    if (this.closed || this.running) return;
    this.running = true;
    this.attempt = 0;
    this.kept ??= new ResultKeeper(2 * this.cell.settings.linkTimeoutMs);
    this.connect();
  }

  /** Unlink (this replica stopped leading); start() links again. */
  stop(): void {
    if (!this.running) return;
    this.running = false;
    const call = this.call;
    this.call = undefined;
    this.batcher?.close();
    this.batcher = undefined;
    this.pacer.dropHeld();
    this.kept?.clear();
    this.connected = false;
    if (call) {
      try {
        call.end();
      } catch {
        // gone
      }
      call.cancel();
    }
  }

  private connect(): void {
    if (this.closed || !this.running) return;
    const cell = this.cell;
    const addrs = this.addresses();
    if (addrs.length === 0) return;
    let address = addrs[this.addressIdx++ % addrs.length]!;
    if (this.preferred) {
      address = this.preferred;
      this.preferred = '';
    }
    this.dialed?.close();
    this.dialed = this.dial(address, cell.settings.maxMessageBytes);
    const call = this.dialed.call;
    this.call = call;
    this.lastHeardMs = cell.scheduler.now();
    this.suspectSinceMs = 0;
    this.stats.opened++;
    this.stats.transport = this.dialed.transport ?? '';
    const batcher = new StreamBatcher<OpenRequest>(
      call,
      [
        { wrap: (acks: DispatchAck[]) => ({ msg: { $case: 'acks', value: { acks } } }), sizeOf: () => 48 },
        {
          wrap: (checkpoints: TaskCheckpoint[]) => ({ msg: { $case: 'checkpoints', value: { checkpoints } } }),
          sizeOf: checkpointSize,
        },
        { wrap: (results: TaskResult[]) => ({ msg: { $case: 'results', value: { results } } }), sizeOf: resultSize },
        { wrap: (tasks: Dispatch[]) => ({ msg: { $case: 'spillUps', value: { tasks } } }), sizeOf: dispatchSize },
        { wrap: (refs: TaskRef[]) => ({ msg: { $case: 'cancels', value: { refs } } }), sizeOf: () => 40 },
        { wrap: (refs: GivenRef[]) => ({ msg: { $case: 'givenBack', value: givenBack(refs) } }), sizeOf: () => 44 },
        { wrap: (s) => ({ msg: { $case: 'summary', value: s[s.length - 1]! } }), sizeOf: () => 200 },
      ],
      cell.settings.batcher,
      cell.scheduler,
      (bytes) => {
        cell.log.warn({ bytes }, 'parent not reading; reconnecting');
        this.broken(call, 'parent not reading');
        call.cancel();
      },
      () => this.maybeSummary(),
      cell.meter.parent,
    );
    this.batcher = batcher;
    call.write({
      msg: {
        $case: 'hello',
        value: {
          cell: cell.path,
          replicaId: cell.replicaId,
          term: 0,
          holding: cell.heldFromParent(MAX_HOLDING),
          mesh: this.mesh.name,
          meshId: this.mesh.id,
          parentCell: parentOf(cell.path),
          sendNumbers: true,
        },
      },
    });
    call.on('data', (m: OpenResponse) => {
      if (call !== this.call) return;
      cell.meter.parent.received();
      this.lastHeardMs = cell.scheduler.now();
      this.suspectSinceMs = 0;
      try {
        this.handle(m);
      } catch (err) {
        cell.log.error({ err }, 'parent link: bad message; reconnecting');
        this.broken(call, 'bad message from parent');
        call.cancel();
      }
    });
    call.on('error', (err: ServiceError) => {
      // A parent replica that does not lead names its leader: go there next, soon.
      const hint = err.code === status.FAILED_PRECONDITION ? err.metadata?.get(LEADER_ADDRESS_TRAILER)[0] : undefined;
      if (typeof hint === 'string' && hint !== '') this.preferred = hint;
      else if (err.code === status.FAILED_PRECONDITION && err.details !== this.lastRefusal) {
        // Another mesh or cell at that address: a configuration error, said once (we keep retrying).
        this.lastRefusal = err.details;
        this.cell.log.warn({ address, err: err.details.slice(0, 500) }, 'parent refused the link');
      }
      this.broken(call, err.message);
      if (this.preferred) this.reconnectAtMs = this.cell.scheduler.now() + REDIRECT_DELAY_MS;
    });
    call.on('end', () => this.broken(call, 'parent ended the link'));
  }

  private handle(m: OpenResponse): void {
    const cell = this.cell;
    const msg = m.msg;
    if (!msg) return;
    switch (msg.$case) {
      case 'welcome': {
        const w = msg.value;
        // A parent that does not check hellos itself: leave rather than link into another mesh.
        const here = { mesh: this.mesh, cell: cell.path, replicaId: cell.replicaId };
        const refused = refuseHello(`welcome from ${clip(w.replicaId)}`, { ...w, cell: '' }, here);
        if (refused) throw refused;
        this.lastRefusal = '';
        this.connected = true;
        this.attempt = 0;
        this.pacer.welcomed();
        this.resendHeld();
        this.batcher?.schedule();
        cell.log.info(
          { parent: w.parentCell, replica: w.replicaId, transport: this.stats.transport },
          'linked to parent',
        );
        cell.candidatesChanged();
        return;
      }
      case 'dispatches': {
        const tasks = msg.value.tasks;
        const acks = cell.acceptForwarded(tasks, FROM_PARENT);
        // One ack per dispatch, in order.
        for (let i = 0; i < acks.length; i++) {
          const a = acks[i]!;
          if (a.accepted) this.pacer.accepted(tasks[i]!.spec!.kind, a);
          else this.batcher?.push(Lane.Acks, a);
        }
        if (this.pacer.tooManyHeld) this.releaseAcks();
        // The flush decides whether a summary (and the held acks) goes out.
        this.batcher?.schedule();
        return;
      }
      case 'cancels':
        cell.cancelRefs(msg.value.refs, 'cancelled from above');
        return;
      case 'drain':
        cell.log.info({ drain: msg.value.drain, reason: msg.value.reason }, 'drain order from parent');
        cell.setDraining(msg.value.drain);
        return;
      case 'results':
        cell.deliverResults(msg.value.results, TO_PARENT);
        return;
      case 'checkpoints':
        for (const cp of msg.value.checkpoints) cell.deliverCheckpoint(cp);
        return;
      case 'acks':
        for (const a of msg.value.acks) if (!a.accepted) cell.nacked(routeKey(a.taskId, a.attempt), a.reason, a.send);
        return;
      case 'steal': {
        // A sibling has room: give back queued work (bounded per ask), then report the new queue soon.
        for (const k of msg.value.kinds.slice(0, LIMITS.kindsPerAgent)) {
          const refs = cell.giveBack(k.kind, Math.min(k.max, LIMITS.tasksPerBatch));
          // Their acks first (held for the next summary): the parent places them again at once,
          // and a second dispatch of an attempt awaiting its ack leaks a credit (sim:mesh seed 56).
          if (refs.length > 0) this.releaseAcks();
          for (const r of refs) this.batcher?.push(Lane.GivenBack, r);
        }
        cell.capacityChanged();
        return;
      }
    }
  }

  private broken(call: LinkCall, why: string): void {
    if (call !== this.call) return;
    this.call = undefined;
    this.batcher?.close();
    this.batcher = undefined;
    this.pacer.dropHeld();
    const was = this.connected;
    this.connected = false;
    this.kept?.broken();
    if (this.closed) return;
    if (was) this.cell.log.warn({ why }, 'parent link lost');
    this.cell.parentLost();
    // Backoff with full jitter, 100 ms .. 5 s, driven by the cell's tick. It grows per round
    // over the parent's replicas, not per try: when the parent's leader dies, the next replica
    // (likely the new leader, or one that names it) is tried within ~100 ms, not after seconds.
    const round = Math.floor(this.attempt++ / Math.max(1, this.addresses().length));
    const cap = Math.min(5000, 100 * 2 ** Math.min(6, round));
    this.reconnectAtMs = this.cell.scheduler.now() + cap / 2 + this.cell.random() * (cap / 2);
  }

  /** From the cell's periodic tick: periodic summaries and reconnects. */
  tick(now: number): void {
    const stalls = this.cell.linkStalls;
    stalls.tick(now);
    if (this.closed || !this.running) return;
    const call = this.call;
    if (call === undefined) {
      if (now >= this.reconnectAtMs) this.connect();
      return;
    }
    const timeout = this.cell.settings.linkTimeoutMs;
    if (stalls.silence(this.lastHeardMs, now) > timeout) {
      // Suspect first, dead a quarter timeout later: a stall of our own loop is not the parent's silence.
      if (this.suspectSinceMs === 0) this.suspectSinceMs = now;
      if (stalls.silence(this.suspectSinceMs, now) < timeout / 4) return;
      const silent = now - this.lastHeardMs;
      this.stats.timedOut++;
      this.cell.log.warn(
        { silentMs: silent, linkTimeoutMs: timeout, welcomed: this.connected },
        this.connected ? 'parent link silent; reconnecting' : 'no welcome from parent; reconnecting',
      );
      this.broken(call, `parent silent for ${silent} ms`);
      call.cancel();
      return;
    }
    this.suspectSinceMs = 0;
    this.kept?.prune(now);
    if (this.connected && this.pacer.periodic(now, this.cell.settings.summaryIntervalMs)) this.batcher?.schedule();
  }

  /** Capacity below changed: a summary goes out with the next flush if it differs. */
  capacityChanged(): void {
    this.batcher?.schedule();
  }

  private maybeSummary(): void {
    if (!this.connected || !this.batcher) return;
    const s = this.pacer.next(this.cell.scheduler.now(), this.selfAddress);
    if (!s) return;
    // Every ack of a dispatch this summary counts goes before it.
    this.releaseAcks();
    this.batcher.push(Lane.Summary, s);
  }

  private releaseAcks(): void {
    for (const a of this.pacer.takeHeld()) this.batcher?.push(Lane.Acks, a);
  }

  sendResult(r: TaskResult): void {
    if (this.batcher && this.connected) {
      this.batcher.push(Lane.Results, r);
      this.kept?.wrote(r, this.cell.scheduler.now());
      return;
    }
    if (this.running) this.kept?.hold(r);
  }

  /** After a welcome: results held while unlinked, and (after a break) those written recently that may be lost. */
  private resendHeld(): void {
    if (!this.kept) return;
    const { recent: again, held } = this.kept.takeForResend(this.cell.scheduler.now());
    if (held.length + again.length === 0) return;
    this.cell.log.info(
      { held: held.length, recent: again.length },
      'parent link: re-sending results held while unlinked and written just before the break',
    );
    for (const r of again) this.sendResult(r);
    for (const r of held) this.sendResult(r);
  }

  sendCancel(ref: TaskRef): void {
    this.batcher?.push(Lane.Cancels, ref);
  }

  sendCheckpoint(cp: TaskCheckpoint): void {
    if (this.connected) this.batcher?.push(Lane.Checkpoints, cp);
  }

  spillUp(item: WorkItem): void {
    if (!this.batcher || !this.connected) {
      this.cell.bounce(item, 'parent unreachable');
      return;
    }
    // Numbered on this link (Dispatch.send): the parent's nack names this send, not an earlier one of the attempt.
    item.sendNo = this.nextSend();
    this.batcher.push(Lane.SpillUps, withSend(wireDispatch(item), item.sendNo));
  }

  close(): void {
    this.closed = true;
    this.batcher?.close();
    try {
      this.call?.end();
    } catch {
      // gone
    }
    this.call?.cancel();
    this.dialed?.close();
  }
}

/** Given-back attempts as GivenBack: each with the send number it came with. */
function givenBack(given: GivenRef[]): { refs: TaskRef[]; sends: number[] } {
  const refs = given.map((r) => ({ taskId: r.taskId, attempt: r.attempt, slots: r.slots }));
  return { refs, sends: given.map((r) => r.send) };
}
