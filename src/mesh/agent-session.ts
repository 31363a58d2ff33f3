// One agent's stream at its node cell: what the agent declared in its hello,
// what it holds, how it is doing. The node-wide bookkeeping around sessions
// lives in agent-sessions.ts (the streams), agent-capacity.ts (free slots per
// kind) and agent-carry.ts (attempts carried over a reconnect).
//
// Invariant: assigned.size + carried.size <= slots at all times (the node never
// exceeds an agent's slots; a cancelled attempt keeps its slot until the agent
// answers or dies, since it may still be running).
import type { ServerDuplexStream } from '@grpc/grpc-js';
import type { AgentHello, ConnectRequest, ConnectResponse } from '../gen/meshlb/v1/agent.js';
import type { Label, TaskRef } from '../gen/meshlb/v1/task.js';
import { StreamBatcher, type BatcherOptions } from './batcher.js';
import { NO_LINK, type LinkMeter } from './meter.js';
import type { Scheduler } from './scheduler.js';
import type { WorkItem } from './types.js';
import { dispatchSize, wireDispatch } from './wire.js';

const enum Lane {
  Assignments,
  Cancels,
  Drain,
}

/** An attempt the agent runs from before its current session, holding a slot. */
export interface Carried {
  /** Its kind when known (the session that assigned it). */
  readonly kind: string | undefined;
  /** Released at this time (ms) if no result came: when its lease would have ended. */
  readonly untilMs: number;
  /** Named by the agent in a `started` ref of this session. */
  confirmed: boolean;
}

/** Exponentially weighted moving average, seeded by its first sample. */
export class Ewma {
  value: number;
  private seeded = false;
  constructor(
    private readonly alpha: number,
    initial: number,
  ) {
    this.value = initial;
  }

  add(x: number): void {
    if (!this.seeded) {
      this.value = x;
      this.seeded = true;
    } else this.value += this.alpha * (x - this.value);
  }
}

export class AgentSession {
  readonly kinds: readonly string[];
  readonly labels: readonly Label[];
  readonly slots: number;
  /** route key → every attempt given to the agent in this session and not yet answered. */
  readonly assigned = new Map<string, WorkItem>();
  /** route key → attempts the agent still runs from before this session (agent-carry.ts). */
  readonly carried = new Map<string, Carried>();
  cpu = 0;
  memory = 0;
  /** It drains (by itself, or told to: it leaves once idle). */
  private drainOrdered = false;
  /** An operator cordoned it (CordonAgent): no new assignments, it stays connected. */
  cordoned = false;
  dead = false;
  lastSeenMs: number;
  readonly success = new Ewma(0.1, 1);
  readonly latencyMs = new Ewma(0.1, 0);
  readonly batcher: StreamBatcher<ConnectResponse>;

  constructor(
    readonly id: string,
    hello: AgentHello,
    readonly call: ServerDuplexStream<ConnectRequest, ConnectResponse>,
    readonly connectedMs: number,
    batcher: BatcherOptions,
    scheduler: Scheduler,
    onOverflow: (bytes: number) => void,
    /** Counts the messages written to it (the cell's agent-link meter). */
    meter: LinkMeter = NO_LINK,
  ) {
    this.kinds = [...new Set(hello.kinds)];
    this.labels = hello.labels;
    this.slots = hello.slots;
    this.lastSeenMs = connectedMs;
    this.batcher = new StreamBatcher<ConnectResponse>(
      call,
      [
        { wrap: (tasks) => ({ msg: { $case: 'assignments', value: { tasks } } }), sizeOf: dispatchSize },
        { wrap: (refs) => ({ msg: { $case: 'cancels', value: { refs } } }), sizeOf: () => 40 },
        { wrap: (d) => ({ msg: { $case: 'drain', value: d[d.length - 1]! } }), sizeOf: () => 16 },
      ],
      batcher,
      scheduler,
      onOverflow,
      undefined,
      meter,
    );
  }

  /** Takes no new work: it drains, or it is cordoned (capacity and policies see either as draining). */
  get draining(): boolean {
    return this.drainOrdered || this.cordoned;
  }

  set draining(drain: boolean) {
    this.drainOrdered = drain;
  }

  /** Slots taken: attempts assigned in this session plus those carried from before. */
  get inFlight(): number {
    return this.assigned.size + this.carried.size;
  }

  /** Counts toward capacity: alive and taking work. */
  get usable(): boolean {
    return !this.dead && !this.draining;
  }

  sendAssignment(item: WorkItem): void {
    this.batcher.push(Lane.Assignments, wireDispatch(item));
  }

  sendCancel(ref: TaskRef): void {
    this.batcher.push(Lane.Cancels, ref);
  }

  sendDrain(reason: string): void {
    this.batcher.push(Lane.Drain, { reason });
  }
}
