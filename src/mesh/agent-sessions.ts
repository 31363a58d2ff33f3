// The node side of AgentService.Connect: one session per agent stream.
//
// Invariants:
// - a session's `assigned` holds every attempt given to the agent and not yet
//   answered; assigned.size <= slots at all times (the node never exceeds an
//   agent's slots; a cancelled attempt keeps its slot until the agent answers
//   or dies, since it may still be running);
// - one live session per agent id: a second hello with a live id is refused
//   with ALREADY_EXISTS on the new stream;
// - an agent silent for heartbeatTimeoutMs, or whose stream breaks, is dead:
//   its attempts fail back to their homes at once as `lost:` results;
// - capacity per kind (free/total/healthy) is kept incrementally, so
//   summaries and credits cost O(kinds), not O(agents).
import type { ServerDuplexStream } from '@grpc/grpc-js';
import type { AgentHello, ConnectRequest, ConnectResponse } from '../gen/meshlb/v1/agent.js';
import type { Label, TaskRef, TaskResult } from '../gen/meshlb/v1/task.js';
import { ResultStatus } from '../gen/meshlb/v1/task.js';
import { makeCandidate, type Candidate } from '../policies/index.js';
import { alreadyExists, deadlineExceeded, invalidArgument, MeshError, resourceExhausted } from '../util/errors.js';
import { StreamBatcher } from './batcher.js';
import type { Cell } from './cell.js';
import { dispatchSize, wireDispatch } from './child-links.js';
import { failStream, isUndecodable } from './grpc-util.js';
import { Ewma, type Capacity, type SubtreeLoad } from './summary.js';
import { routeKey, type WorkItem } from './types.js';

const enum Lane {
  Assignments,
  Cancels,
  Drain,
}

export class AgentSession {
  readonly kinds: readonly string[];
  readonly labels: readonly Label[];
  readonly slots: number;
  /** route key → every attempt the agent holds (its kind, and sentMs: when it was sent). */
  readonly assigned = new Map<string, WorkItem>();
  cpu = 0;
  memory = 0;
  draining = false;
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
    cell: Cell,
    onOverflow: (bytes: number) => void,
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
        { wrap: (d) => ({ msg: { $case: 'drain', value: d[d.length - 1] } }), sizeOf: () => 16 },
      ],
      cell.settings.batcher,
      onOverflow,
    );
  }

  get inFlight(): number {
    return this.assigned.size;
  }

  /** Counts toward capacity: alive and taking work. */
  get usable(): boolean {
    return !this.dead && !this.draining;
  }
}

export class AgentSessions {
  readonly byId = new Map<string, AgentSession>();
  private readonly pending = new Map<ServerDuplexStream<ConnectRequest, ConnectResponse>, number>();
  private readonly capacity = new Map<string, Capacity>();
  private lastSweepMs = 0;
  /** Instrumentation: the most attempts any agent held, relative to its slots (must stay <= 0). */
  maxOverSlots = Number.NEGATIVE_INFINITY;

  constructor(private readonly cell: Cell) {}

  connect(call: ServerDuplexStream<ConnectRequest, ConnectResponse>): void {
    const cell = this.cell;
    let session: AgentSession | undefined;
    this.pending.set(call, cell.now());
    const fail = (err: unknown, what: string): void => {
      this.pending.delete(call);
      if (session) this.lost(session, what);
      failStream(call, err, cell.log, what);
    };
    call.on('data', (req: ConnectRequest) => {
      try {
        if (session?.dead) return;
        if (isUndecodable(req)) return fail(invalidArgument(`undecodable agent message: ${req.$invalid}`), 'agent: garbage');
        const m = req.msg;
        if (!m) return fail(invalidArgument('agent message with no content'), 'agent: empty message');
        if (session === undefined) {
          if (m.$case !== 'hello') return fail(invalidArgument('the first message must be hello'), 'agent: no hello');
          this.pending.delete(call);
          session = this.hello(m.value, call);
          return;
        }
        session.lastSeenMs = cell.now();
        switch (m.$case) {
          case 'hello':
            return fail(invalidArgument('hello sent twice'), 'agent: second hello');
          case 'load': {
            const l = m.value;
            this.account(session, -1);
            session.cpu = clamp01(l.cpu);
            session.memory = clamp01(l.memory);
            if (l.draining) session.draining = true;
            this.account(session, 1);
            if (l.draining) this.changed();
            return;
          }
          case 'results':
            this.results(session, m.value.results);
            return;
          case 'started':
            return;
        }
      } catch (err) {
        fail(err, 'agent: message handling failed');
      }
    });
    const gone = (why: string) => (): void => {
      this.pending.delete(call);
      if (session) this.lost(session, why);
    };
    call.on('end', () => {
      gone('agent closed its stream')();
      try {
        call.end();
      } catch {
        // already ended
      }
    });
    call.on('error', gone('agent stream error'));
    call.on('cancelled', gone('agent stream cancelled'));
    call.on('close', gone('agent stream closed'));
  }

  private hello(h: AgentHello, call: ServerDuplexStream<ConnectRequest, ConnectResponse>): AgentSession {
    const cell = this.cell;
    const id = h.agentId;
    if (!id || id.length > 256) throw invalidArgument('hello.agent_id is required (1-256 characters)');
    if (h.kinds.length === 0 || h.kinds.some((k) => !k)) throw invalidArgument('hello.kinds must list at least one non-empty kind');
    if (!(h.slots >= 1) || h.slots > cell.settings.maxAgentSlots) {
      throw invalidArgument(`hello.slots must be 1..${cell.settings.maxAgentSlots}, got ${h.slots}`);
    }
    const prior = this.byId.get(id);
    if (prior && !prior.dead) throw alreadyExists(`agent ${id} is already connected to ${cell.path}`);
    const s: AgentSession = new AgentSession(id, h, call, cell.now(), cell, (bytes) => {
      this.lost(s, 'agent not reading');
      failStream(call, resourceExhausted(`agent ${id} stopped reading (${bytes} bytes unread)`, 1000), cell.log, 'agent overflow');
    });
    this.byId.set(id, s);
    this.account(s, 1);
    call.write({
      msg: {
        $case: 'welcome',
        value: {
          nodeCell: cell.path,
          replicaId: cell.replicaId,
          heartbeatIntervalMs: cell.settings.heartbeatIntervalMs,
          heartbeatTimeoutMs: cell.settings.heartbeatTimeoutMs,
          maxMessageBytes: cell.settings.maxMessageBytes,
        },
      },
    });
    cell.log.debug({ agent: id, kinds: s.kinds, slots: s.slots }, 'agent connected');
    this.changed();
    return s;
  }

  private results(s: AgentSession, results: readonly TaskResult[]): void {
    const cell = this.cell;
    const now = cell.now();
    let unknown = 0;
    for (const r of results) {
      const key = routeKey(r.taskId, r.attempt);
      const item = s.assigned.get(key);
      if (item === undefined) {
        unknown++;
        continue;
      }
      s.assigned.delete(key);
      this.slotsTaken(s, -1);
      if (s.usable) cell.dispatcher.release(s.id, item.kind);
      s.latencyMs.add(now - item.sentMs);
      s.success.add(r.status === ResultStatus.RESULT_STATUS_OK ? 1 : 0);
      r.agentId = s.id;
      r.nodeCell = cell.path;
      cell.deliverResult(r, key);
    }
    if (unknown > 0) cell.log.warn({ agent: s.id, unknown }, 'agent sent results for attempts it does not hold; ignored');
    // Freed slots went back to the live picker (release): no rebuild.
    cell.parent?.capacityChanged();
  }

  /** Give an attempt to an agent the picker chose (it had a free slot). */
  assign(agentId: string, item: WorkItem): void {
    const s = this.byId.get(agentId);
    const key = item.key;
    if (!s || !s.usable || s.assigned.size >= s.slots) {
      // The picker's view was stale: refuse it back toward its origin, uncounted.
      this.cell.bounce(item, `agent ${agentId} unavailable`);
      return;
    }
    s.assigned.set(key, item);
    this.slotsTaken(s, 1);
    const over = s.assigned.size - s.slots;
    if (over > this.maxOverSlots) this.maxOverSlots = over;
    s.batcher.push(Lane.Assignments, wireDispatch(item));
    this.cell.parent?.capacityChanged();
  }

  cancel(agentId: string, ref: TaskRef, _why: string): void {
    const s = this.byId.get(agentId);
    if (!s || s.dead) return;
    if (s.assigned.has(routeKey(ref.taskId, ref.attempt))) s.batcher.push(Lane.Cancels, ref);
  }

  drainAgent(agentId: string, reason: string): AgentSession {
    const s = this.byId.get(agentId);
    if (!s || s.dead) throw new MeshError(5, `agent ${agentId} is not connected to ${this.cell.path}`);
    this.account(s, -1);
    s.draining = true;
    this.account(s, 1);
    s.batcher.push(Lane.Drain, { reason });
    this.changed();
    return s;
  }

  /** Heartbeat and hello deadlines; a scan every half heartbeat interval, not per task. */
  sweep(now: number): void {
    const hb = this.cell.settings.heartbeatTimeoutMs;
    if (now - this.lastSweepMs < Math.min(250, hb / 4)) return;
    this.lastSweepMs = now;
    for (const s of this.byId.values()) {
      if (!s.dead && now - s.lastSeenMs > hb) {
        this.lost(s, `no heartbeat for ${now - s.lastSeenMs} ms`);
        failStream(s.call, deadlineExceeded(`agent ${s.id} missed heartbeats for ${hb} ms`), this.cell.log, 'agent dead');
      }
    }
    for (const [call, since] of this.pending) {
      if (now - since > hb) {
        this.pending.delete(call);
        failStream(call, deadlineExceeded(`no hello within ${hb} ms`), this.cell.log, 'agent: hello timeout');
      }
    }
  }

  private lost(s: AgentSession, why: string): void {
    if (s.dead) return;
    this.account(s, -1);
    s.dead = true;
    s.batcher.close();
    if (this.byId.get(s.id) === s) this.byId.delete(s.id);
    const n = this.cell.viaLost((v) => v.t === 'agent' && v.agentId === s.id, `agent ${s.id}: ${why}`);
    s.assigned.clear();
    this.cell.log.info({ agent: s.id, why, requeued: n }, 'agent gone');
    this.changed();
  }

  private changed(): void {
    this.cell.dispatcher.invalidate();
    this.cell.parent?.capacityChanged();
  }

  /**
   * `delta` slots of a live agent were taken (1) or freed (-1): its free slots
   * per kind move by -delta (what account(-1), change, account(1) would do;
   * assigned never exceeds slots, so free = slots - assigned needs no clamp).
   */
  private slotsTaken(s: AgentSession, delta: 1 | -1): void {
    if (s.dead || s.draining) return;
    for (const k of s.kinds) this.capacity.get(k)!.free -= delta;
  }

  /** Add (sign 1) or remove (sign -1) an agent's contribution to capacity. */
  private account(s: AgentSession, sign: 1 | -1): void {
    if (s.dead) return;
    const free = s.draining ? 0 : Math.max(0, s.slots - s.assigned.size);
    for (const k of s.kinds) {
      let c = this.capacity.get(k);
      if (!c) this.capacity.set(k, (c = { free: 0, total: 0, healthy: 0 }));
      c.free += sign * free;
      c.total += sign * s.slots;
      c.healthy += sign;
      if (c.total === 0 && c.healthy === 0) this.capacity.delete(k);
    }
  }

  candidates(now: number): Candidate[] {
    const out: Candidate[] = [];
    for (const s of this.byId.values()) {
      if (s.dead) continue;
      const slots = new Map<string, { free: number; total: number }>();
      const free = Math.max(0, s.slots - s.assigned.size);
      const shared = { free, total: s.slots };
      for (const k of s.kinds) slots.set(k, shared);
      out.push(
        makeCandidate({
          id: s.id,
          slots,
          // One pool of slots for all its kinds: picks of any kind consume it.
          ...(s.kinds.length > 1 ? { sharedSlots: shared } : {}),
          healthyAgents: 1,
          active: s.assigned.size,
          utilization: { cpu: s.cpu, memory: s.memory },
          latencyEwmaMs: s.latencyMs.value,
          successEwma: s.success.value,
          labels: s.labels,
          summaryAgeMs: now - s.lastSeenMs,
          draining: s.draining,
        }),
      );
    }
    return out;
  }

  load(): SubtreeLoad {
    let cpu = 0;
    let memory = 0;
    let lat = 0;
    let succ = 0;
    let n = 0;
    // O(agents) only for the averages; kept cheap by sampling at most 64 agents.
    for (const s of this.byId.values()) {
      if (n >= 64) break;
      cpu += s.cpu;
      memory += s.memory;
      lat += s.latencyMs.value;
      succ += s.success.value;
      n++;
    }
    return {
      capacity: this.capacity,
      healthyAgents: this.byId.size,
      cpu: n ? cpu / n : 0,
      memory: n ? memory / n : 0,
      latencyEwmaMs: n ? lat / n : 0,
      successEwma: n ? succ / n : 1,
    };
  }

  closeAll(): void {
    for (const s of [...this.byId.values()]) {
      s.batcher.close();
      try {
        s.call.end();
      } catch {
        // gone
      }
    }
  }
}

const clamp01 = (x: number): number => (Number.isFinite(x) ? Math.min(1, Math.max(0, x)) : 0);
