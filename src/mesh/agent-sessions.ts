// The node side of AgentService.Connect: one session per agent stream.
//
// Invariants:
// - a session's `assigned` holds every attempt given to the agent and not yet
//   answered, its `carried` the attempts the agent still runs from before this
//   session (see below); assigned.size + carried.size <= slots at all times
//   (the node never exceeds an agent's slots; a cancelled attempt keeps its
//   slot until the agent answers or dies, since it may still be running);
// - one live session per agent id: a second hello with a live id is refused
//   with ALREADY_EXISTS on the new stream;
// - an agent silent for heartbeatTimeoutMs, or whose stream breaks, is dead:
//   its attempts fail back to their homes at once as `lost:` results;
// - capacity per kind (free/total/healthy) is kept incrementally, so
//   summaries and credits cost O(kinds), not O(agents).
//
// Reconnects: an agent whose stream broke keeps running what it held, and
// after reconnecting re-announces it (`started` refs, `in_flight` in its
// first load). Its old attempts were already failed back as lost (the home
// re-dispatches them), but they still occupy the agent's slots, so the new
// session `carries` them: reserved slots, taken at the hello from what the
// dead session held (so nothing is assigned in the moment before the agent
// speaks), added for `started` refs of attempts we did not assign, trimmed
// when a load reports fewer running than we carry, and released when their
// results arrive (forwarded like any result; the home fences them as stale)
// or when their lease would have ended (a bound, if the result never comes).
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

/** An attempt the agent runs from before its current session, holding a slot. */
interface Carried {
  /** Its kind when known (the session that assigned it). */
  readonly kind: string | undefined;
  /** Released at this time (ms) if no result came: when its lease would have ended. */
  readonly untilMs: number;
  /** Named by the agent in a `started` ref of this session. */
  confirmed: boolean;
}

export class AgentSession {
  readonly kinds: readonly string[];
  readonly labels: readonly Label[];
  readonly slots: number;
  /** route key → every attempt the agent holds (its kind, and sentMs: when it was sent). */
  readonly assigned = new Map<string, WorkItem>();
  /** route key → attempts the agent still runs from before this session (see the header). */
  readonly carried = new Map<string, Carried>();
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

  /** Slots taken: attempts assigned in this session plus those carried from before. */
  get inFlight(): number {
    return this.assigned.size + this.carried.size;
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
  /**
   * Per agent id: the attempts its last session held when it died, until their
   * lease ends; a new session of that id carries them from its hello. Bounded
   * by slots per id and by time.
   */
  private readonly orphans = new Map<string, Map<string, Carried>>();
  /** Instrumentation: the most attempts any agent held, relative to its slots (must stay <= 0). */
  maxOverSlots = Number.NEGATIVE_INFINITY;
  /** Carried attempts: taken on (hello or started), released by their result, by a load, or by expiry. */
  readonly stats = { carried: 0, carriedResults: 0, carriedTrimmed: 0, carriedExpired: 0 };

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
        if (isUndecodable(req))
          return fail(invalidArgument(`undecodable agent message: ${req.$invalid}`), 'agent: garbage');
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
            if (session.carried.size > l.inFlight) this.trimCarried(session, l.inFlight);
            if (l.draining) this.changed();
            return;
          }
          case 'results':
            this.results(session, m.value.results);
            return;
          case 'started':
            this.started(session, m.value.refs);
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
    if (h.kinds.length === 0 || h.kinds.some((k) => !k))
      throw invalidArgument('hello.kinds must list at least one non-empty kind');
    if (!(h.slots >= 1) || h.slots > cell.settings.maxAgentSlots) {
      throw invalidArgument(`hello.slots must be 1..${cell.settings.maxAgentSlots}, got ${h.slots}`);
    }
    const prior = this.byId.get(id);
    if (prior && !prior.dead) throw alreadyExists(`agent ${id} is already connected to ${cell.path}`);
    const s: AgentSession = new AgentSession(id, h, call, cell.now(), cell, (bytes) => {
      this.lost(s, 'agent not reading');
      failStream(
        call,
        resourceExhausted(`agent ${id} stopped reading (${bytes} bytes unread)`, 1000),
        cell.log,
        'agent overflow',
      );
    });
    // What its previous session held may still be running there: reserved before any assignment.
    const orphans = this.orphans.get(id);
    if (orphans !== undefined) {
      this.orphans.delete(id);
      const now = cell.now();
      for (const [key, c] of orphans) {
        if (c.untilMs <= now || s.carried.size >= s.slots) continue;
        s.carried.set(key, { kind: c.kind, untilMs: c.untilMs, confirmed: false });
        this.stats.carried++;
      }
    }
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
    cell.log.debug({ agent: id, kinds: s.kinds, slots: s.slots, carried: s.carried.size }, 'agent connected');
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
        const c = s.carried.get(key);
        if (c === undefined) {
          unknown++;
          continue;
        }
        // An attempt from before this session: its slot frees; the result goes on like any
        // other (it was failed back as lost, so the home drops it as stale).
        this.releaseCarried(s, key, c);
        this.stats.carriedResults++;
        r.agentId = s.id;
        r.nodeCell = cell.path;
        cell.deliverResult(r, key);
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
    if (unknown > 0)
      cell.log.warn({ agent: s.id, unknown }, 'agent sent results for attempts it does not hold; ignored');
    // Freed slots went back to the live picker (release): no rebuild.
    cell.parent?.capacityChanged();
  }

  /** Give an attempt to an agent the picker chose (it had a free slot). */
  assign(agentId: string, item: WorkItem): void {
    const s = this.byId.get(agentId);
    const key = item.key;
    if (!s || !s.usable || s.inFlight >= s.slots) {
      // The picker's view was stale: refuse it back toward its origin, uncounted.
      this.cell.bounce(item, `agent ${agentId} unavailable`);
      return;
    }
    s.assigned.set(key, item);
    this.slotsTaken(s, 1);
    const over = s.inFlight - s.slots;
    if (over > this.maxOverSlots) this.maxOverSlots = over;
    s.batcher.push(Lane.Assignments, wireDispatch(item));
    this.cell.parent?.capacityChanged();
  }

  /** `started` refs: attempts we did not assign in this session are carried (they hold slots). */
  private started(s: AgentSession, refs: readonly TaskRef[]): void {
    let taken = false;
    let until = 0;
    for (const ref of refs) {
      const key = routeKey(ref.taskId, ref.attempt);
      if (s.assigned.has(key)) continue;
      const c = s.carried.get(key);
      if (c !== undefined) {
        c.confirmed = true;
        continue;
      }
      if (s.inFlight >= s.slots) continue; // it cannot run more than its slots: nothing to reserve
      if (until === 0) until = this.cell.now() + this.cell.settings.taskTimeoutMs + this.cell.settings.leaseSlackMs;
      s.carried.set(key, { kind: undefined, untilMs: until, confirmed: true });
      this.slotsTaken(s, 1);
      this.stats.carried++;
      taken = true;
    }
    if (taken) this.changed();
  }

  /** A load says the agent runs fewer attempts than we carry: release the excess, unconfirmed ones first. */
  private trimCarried(s: AgentSession, running: number): void {
    let excess = s.carried.size - running;
    for (const pass of [false, true]) {
      for (const [key, c] of s.carried) {
        if (excess <= 0) break;
        if (c.confirmed !== pass) continue;
        this.releaseCarried(s, key, c);
        this.stats.carriedTrimmed++;
        excess--;
      }
    }
    this.cell.parent?.capacityChanged();
  }

  private releaseCarried(s: AgentSession, key: string, c: Carried): void {
    s.carried.delete(key);
    this.slotsTaken(s, -1);
    if (!s.usable) return;
    if (c.kind !== undefined) this.cell.dispatcher.release(s.id, c.kind);
    else this.cell.dispatcher.invalidate();
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
        failStream(
          s.call,
          deadlineExceeded(`agent ${s.id} missed heartbeats for ${hb} ms`),
          this.cell.log,
          'agent dead',
        );
        continue;
      }
      if (s.carried.size > 0) {
        for (const [key, c] of s.carried) {
          if (c.untilMs > now) continue;
          this.releaseCarried(s, key, c);
          this.stats.carriedExpired++;
        }
      }
    }
    for (const [id, held] of this.orphans) {
      for (const [key, c] of held) if (c.untilMs <= now) held.delete(key);
      if (held.size === 0) this.orphans.delete(id);
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
    // Remember what it held: should it come back while these may still run, they hold its slots.
    if (s.assigned.size + s.carried.size > 0) {
      const held = new Map<string, Carried>();
      for (const [key, item] of s.assigned)
        held.set(key, { kind: item.kind, untilMs: item.sentMs + item.leaseMs, confirmed: false });
      for (const [key, c] of s.carried) held.set(key, { kind: c.kind, untilMs: c.untilMs, confirmed: false });
      this.orphans.set(s.id, held);
    }
    const n = this.cell.viaLost((v) => v.t === 'agent' && v.agentId === s.id, `agent ${s.id}: ${why}`);
    s.assigned.clear();
    s.carried.clear();
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
   * assigned + carried never exceeds slots, so free = slots - inFlight needs no clamp).
   */
  private slotsTaken(s: AgentSession, delta: 1 | -1): void {
    if (s.dead || s.draining) return;
    for (const k of s.kinds) this.capacity.get(k)!.free -= delta;
  }

  /** Add (sign 1) or remove (sign -1) an agent's contribution to capacity. */
  private account(s: AgentSession, sign: 1 | -1): void {
    if (s.dead) return;
    const free = s.draining ? 0 : Math.max(0, s.slots - s.inFlight);
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
      const free = Math.max(0, s.slots - s.inFlight);
      const shared = { free, total: s.slots };
      for (const k of s.kinds) slots.set(k, shared);
      out.push(
        makeCandidate({
          id: s.id,
          slots,
          // One pool of slots for all its kinds: picks of any kind consume it.
          ...(s.kinds.length > 1 ? { sharedSlots: shared } : {}),
          healthyAgents: 1,
          active: s.inFlight,
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
