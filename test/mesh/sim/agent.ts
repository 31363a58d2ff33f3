// A simulated agent: speaks AgentService.Connect to its node cell over the
// simulated network the way the agent SDK does (src/agent), with a seeded
// service time instead of a handler. It keeps running what it holds across a
// broken stream and reports it after the next welcome (the SDK's outbox), it
// can crash (losing what it ran), hang (no heartbeats, then carry on), drain,
// and send a result twice. It is also the checker's eye on slots: an
// assignment beyond them is refused as the SDK refuses it, and recorded.
import { status, type ServiceError } from '@grpc/grpc-js';
import { ConnectRequest, type ConnectResponse } from '../../../src/gen/meshlb/v1/agent.js';
import { PRODUCT_CODECS } from './wire-check.js';
import type { Codec } from './net.js';
import {
  MeshFailure,
  ResultStatus,
  type Dispatch,
  type Label,
  type TaskRef,
  type TaskResult,
} from '../../../src/gen/meshlb/v1/task.js';
import type { MeshIdentity } from '../../../src/mesh/mesh-identity.js';
import type { Rng } from '../../../src/util/rng.js';
import type { ClientEnd, SimNet } from './net.js';

export interface AgentShape {
  readonly id: string;
  readonly node: string;
  readonly kinds: readonly string[];
  readonly labels: readonly Label[];
  readonly slots: number;
  /** Mean service time, ms. */
  readonly serviceMs: number;
  /** Chance that an attempt ends in an error result. */
  readonly failRate: number;
}

interface Running {
  readonly d: Dispatch;
  readonly key: string;
  done: boolean;
}

/** The slots an attempt takes (TaskSpec.slots, 0 meaning 1). */
const cost = (d: Dispatch): number => Math.max(1, d.spec?.slots ?? 0);
/** An attempt as the agent SDK names it: its slots when more than one. */
const ref = (d: Dispatch): TaskRef => ({
  taskId: d.taskId,
  attempt: d.attempt,
  slots: cost(d) > 1 ? cost(d) : 0,
});

/** What the checker learns from agents. */
export interface AgentObserver {
  /** An assignment of `slots` came while `used` of the agent's `slots` were in use, too many: refused. */
  overSlots(agent: string, used: number, slots: number, key: string, cost: number): void;
  /** An attempt of `cost` slots started; `used` of the agent's `slots` are in use now. */
  slotsInUse(agent: string, used: number, slots: number, cost: number): void;
  /** `key`: the task's concurrency key ('' for none); `tenant`: its tenant. */
  started(agent: string, taskId: string, attempt: number, key?: string, tenant?: string): void;
  /** An attempt arrived carrying the checkpoint `from` (attempt and seq; undefined: none) to resume from. */
  resumed(agent: string, taskId: string, attempt: number, from: { attempt: number; seq: number } | undefined): void;
  finished(agent: string, taskId: string, attempt: number, ok?: boolean): void;
}

export class SimAgent {
  private call: ClientEnd<ConnectRequest, ConnectResponse> | undefined;
  private welcomed = false;
  /** Context keys warm here (the last few keyed tasks it ran), reported to the node (AgentContexts). */
  private readonly warm = new Set<string>();
  private readonly running = new Map<string, Running>();
  /** Results owed to the node, sent after the next welcome. */
  private outbox: TaskResult[] = [];
  /** Written on the current stream: sent again after a break (the node fences by attempt). */
  private recent: TaskResult[] = [];
  private heartbeatMs = 500;
  private hbTimer: { cancel(): void } | undefined;
  private reconnectTimer: { cancel(): void } | undefined;
  private backoff = 0;
  /** Not alive: crashed and not yet restarted. */
  crashed = false;
  /** Hung until this time: no heartbeats, no progress on messages. */
  private hungUntil = 0;
  draining = false;
  slowFactor = 1;
  duplicateResults = false;
  readonly stats = { assigned: 0, completed: 0, refused: 0, sessions: 0, crashes: 0 };

  constructor(
    readonly shape: AgentShape,
    private readonly net: SimNet,
    private readonly rng: Rng,
    private readonly mesh: MeshIdentity,
    /** The node cell's replica endpoints, in order: a refusal naming the leader is followed. */
    private readonly replicas: () => readonly string[],
    private readonly obs: AgentObserver,
    /** How the node's messages are read (wire-check.ts); the product's codec by default. */
    private readonly codec: Codec<ConnectResponse> = PRODUCT_CODECS.agentResponse,
  ) {}

  /** Attempts running now. */
  get held(): number {
    let n = 0;
    for (const r of this.running.values()) if (!r.done) n++;
    return n;
  }

  /** Slots in use now: each running attempt's TaskSpec.slots (0 meaning 1). */
  get used(): number {
    let n = 0;
    for (const r of this.running.values()) if (!r.done) n += cost(r.d);
    return n;
  }

  /** Start the process (the first time, or after a crash); a running agent is left alone. */
  start(): void {
    if (this.started && !this.crashed) return;
    this.started = true;
    this.crashed = false;
    this.draining = false;
    this.connect(this.replicas()[0]!);
  }
  private started = false;

  private connect(to: string): void {
    if (this.crashed) return;
    const call = this.net.open(this.shape.id, to, 'agent', ConnectRequest, this.codec);
    this.call = call;
    this.welcomed = false;
    call.on('data', (m: ConnectResponse) => this.onMessage(call, m));
    call.on('error', (err: ServiceError) => this.broken(call, err));
    call.on('end', () => this.broken(call, undefined));
    call.write({
      msg: {
        $case: 'hello',
        value: {
          agentId: this.shape.id,
          kinds: [...this.shape.kinds],
          labels: [...this.shape.labels],
          slots: this.shape.slots,
          version: 'sim',
          mesh: this.mesh.name,
          meshId: this.mesh.id,
          nodeCell: this.shape.node,
          running: [...this.running.values()].filter((r) => !r.done).map((r) => ref(r.d)),
        },
      },
    });
  }

  private onMessage(call: ClientEnd<ConnectRequest, ConnectResponse>, m: ConnectResponse): void {
    if (call !== this.call || this.crashed) return;
    // A paused process reads nothing until it wakes (then in order: timers due at one time fire in order).
    if (this.frozen(() => this.onMessage(call, m))) return;
    const msg = m.msg;
    if (!msg) return;
    switch (msg.$case) {
      case 'welcome': {
        this.welcomed = true;
        this.backoff = 0;
        this.stats.sessions++;
        this.heartbeatMs = msg.value.heartbeatIntervalMs || 500;
        // What still runs is re-announced: `started` refs and the count in the first load.
        const refs = [...this.running.values()].filter((r) => !r.done).map((r) => ref(r.d));
        if (refs.length > 0) call.write({ msg: { $case: 'started', value: { refs } } });
        if (this.warm.size > 0)
          call.write({ msg: { $case: 'contexts', value: { held: [...this.warm], dropped: [], reset: true } } });
        this.heartbeat();
        const again = [...this.recent, ...this.outbox];
        this.recent = [];
        this.outbox = [];
        for (const r of again) this.send(r);
        return;
      }
      case 'assignments':
        for (const d of msg.value.tasks) this.assigned(d);
        return;
      case 'cancels':
        for (const ref of msg.value.refs) {
          const r = this.running.get(`${ref.taskId}#${ref.attempt}`);
          // Cooperative: the handler notices the abort a moment later and reports an error.
          if (r && !r.done) this.net.vs.setTimer(this.rng.int(0, 20), () => this.finish(r, 'cancelled'));
        }
        return;
      case 'drain':
        this.draining = true;
        return;
    }
  }

  private assigned(d: Dispatch): void {
    const key = `${d.taskId}#${d.attempt}`;
    this.stats.assigned++;
    if (this.running.has(key)) return; // a duplicate delivery: already running
    if (this.used + cost(d) > this.shape.slots) {
      this.obs.overSlots(this.shape.id, this.used, this.shape.slots, key, cost(d));
      this.stats.refused++;
      this.send(result(d, ResultStatus.RESULT_STATUS_ERROR, `over slots: agent ${this.shape.id}`));
      return;
    }
    const r: Running = { d, key, done: false };
    this.running.set(key, r);
    this.obs.started(this.shape.id, d.taskId, d.attempt, d.spec?.concurrencyKey ?? '', d.spec?.tenant ?? '');
    const cp = d.checkpoint;
    this.obs.resumed(this.shape.id, d.taskId, d.attempt, cp && { attempt: cp.attempt, seq: cp.seq });
    this.obs.slotsInUse(this.shape.id, this.used, this.shape.slots, cost(d));
    this.call?.write({ msg: { $case: 'started', value: { refs: [ref(d)] } } });
    const ms = Math.round(this.shape.serviceMs * this.slowFactor * (0.2 + this.rng.next() * 1.6));
    // Two checkpoints along the way (no random draw: the seed's other draws stay as they were).
    for (const seq of [1, 2]) this.net.vs.setTimer(Math.round((ms * seq) / 3), () => this.checkpoint(r, seq));
    this.net.vs.setTimer(ms, () => this.finish(r, this.rng.chance(this.shape.failRate) ? 'error' : 'ok'));
  }

  private finish(r: Running, how: 'ok' | 'error' | 'cancelled'): void {
    if (r.done || this.crashed || this.running.get(r.key) !== r) return;
    // A hung agent finishes nothing until it wakes.
    if (this.frozen(() => this.finish(r, how))) return;
    r.done = true;
    this.running.delete(r.key);
    this.obs.finished(this.shape.id, r.d.taskId, r.d.attempt, how === 'ok');
    this.stats.completed++;
    const st = how === 'ok' ? ResultStatus.RESULT_STATUS_OK : ResultStatus.RESULT_STATUS_ERROR;
    this.send(result(r.d, st, how === 'ok' ? '' : how));
    if (how === 'ok' && r.d.spec?.contextKey) this.nowWarm(r.d.spec.contextKey);
  }

  /** A keyed task ran here: its key is warm; the oldest of more than 4 goes cold (no random draw). */
  private nowWarm(key: string): void {
    this.warm.delete(key);
    this.warm.add(key);
    const dropped = this.warm.size > 4 ? [this.warm.values().next().value as string] : [];
    for (const k of dropped) this.warm.delete(k);
    if (this.call && this.welcomed)
      this.call.write({ msg: { $case: 'contexts', value: { held: [key], dropped, reset: false } } });
  }

  /** Save progress of a running attempt (skipped when it ended, or no stream is up: a later one follows). */
  private checkpoint(r: Running, seq: number): void {
    const call = this.call;
    if (r.done || this.crashed || !call || !this.welcomed || this.net.vs.now() < this.hungUntil) return;
    const data = Buffer.from(`${r.key}#${seq}`);
    const value = { taskId: r.d.taskId, attempt: r.d.attempt, data, progress: seq / 3, seq, atUnixMs: 0, sizeBytes: 0 };
    call.write({ msg: { $case: 'checkpoint', value } });
  }

  private send(res: TaskResult): void {
    const call = this.call;
    if (!call || !this.welcomed) {
      if (this.outbox.length < 10_000) this.outbox.push(res);
      return;
    }
    call.write({ msg: { $case: 'results', value: { results: [res] } } });
    this.recent.push(res);
    if (this.recent.length > 256) this.recent.shift();
    if (this.duplicateResults && this.rng.chance(0.3))
      call.write({ msg: { $case: 'results', value: { results: [res] } } });
  }

  private heartbeat(): void {
    this.hbTimer?.cancel();
    this.hbTimer = this.net.vs.setTimer(this.heartbeatMs, () => {
      this.hbTimer = undefined;
      const call = this.call;
      if (!call || !this.welcomed || this.crashed) return;
      if (this.net.vs.now() >= this.hungUntil)
        call.write({
          msg: {
            $case: 'load',
            value: { inFlight: this.held, cpu: 0.5, memory: 0.5, gpu: 0, draining: this.draining },
          },
        });
      this.heartbeat();
    });
  }

  private broken(call: ClientEnd<ConnectRequest, ConnectResponse>, err: ServiceError | undefined): void {
    if (call !== this.call) return;
    if (this.frozen(() => this.broken(call, err))) return;
    this.call = undefined;
    this.welcomed = false;
    this.hbTimer?.cancel();
    if (this.crashed) return;
    // A refusal naming the leader: go there at once; otherwise back off and try the replicas in turn.
    const hint = err?.code === status.FAILED_PRECONDITION ? err.metadata?.get('meshlb-leader')[0] : undefined;
    const replicas = this.replicas();
    let next = replicas[(replicas.indexOf(call.getPeer().slice(4)) + 1) % replicas.length]!;
    let delay = Math.round(Math.min(3000, 100 * 2 ** Math.min(5, this.backoff++)) * (0.5 + this.rng.next() / 2));
    if (typeof hint === 'string' && replicas.includes(hint)) {
      next = hint;
      delay = 20;
    }
    this.reconnectTimer?.cancel();
    this.reconnectTimer = this.net.vs.setTimer(delay, () => this.connect(next));
    // Results written on the dead stream may be lost: they go again after the next welcome.
    this.outbox = [...this.recent, ...this.outbox];
    this.recent = [];
  }

  /** The process dies: what it ran is gone, nothing is re-sent. */
  crash(): void {
    if (this.crashed) return;
    this.crashed = true;
    this.stats.crashes++;
    for (const r of this.running.values()) {
      if (!r.done) this.obs.finished(this.shape.id, r.d.taskId, r.d.attempt);
      r.done = true;
    }
    this.running.clear();
    this.outbox = [];
    this.recent = [];
    this.hbTimer?.cancel();
    this.reconnectTimer?.cancel();
    this.draining = false;
    const call = this.call;
    this.call = undefined;
    if (call) this.net.breakOne(this.shape.id, call.getPeer().slice(4), 'agent crashed');
  }

  /** Paused now: run `fn` when the pause ends instead. */
  private frozen(fn: () => void): boolean {
    const now = this.net.vs.now();
    if (now >= this.hungUntil) return false;
    this.net.vs.setTimer(this.hungUntil - now, fn);
    return true;
  }

  /** A stop-the-world pause: no heartbeats, no progress, for `ms`. */
  hang(ms: number): void {
    this.hungUntil = Math.max(this.hungUntil, this.net.vs.now() + Math.round(ms));
  }

  /** Drain by itself (SIGTERM in the SDK): tell the node, finish what runs. */
  drain(): void {
    this.draining = true;
    if (this.call && this.welcomed)
      this.call.write({
        msg: { $case: 'load', value: { inFlight: this.held, cpu: 0.5, memory: 0.5, gpu: 0, draining: true } },
      });
  }
}

function result(d: Dispatch, st: ResultStatus, error: string): TaskResult {
  return {
    taskId: d.taskId,
    attempt: d.attempt,
    status: st,
    output: Buffer.alloc(0),
    error,
    agentId: '',
    nodeCell: '',
    runMicros: 1000,
    meshFailure: MeshFailure.MESH_FAILURE_UNSPECIFIED,
    retryAfterMs: 0,
  };
}
