// The node side of AgentService.Connect: one session per agent stream.
//
// Invariants:
// - every session's assigned + carried stays within its slots (agent-session.ts);
// - one live session per agent id: a second hello with a live id is refused (ALREADY_EXISTS, the new stream);
// - an agent silent for its heartbeat timeout (heartbeatTimeoutMs, stretched with the number of agents:
//   heartbeatFor in agent-session.ts; longer until its first load: agent-handshake.ts), or whose stream
//   breaks, is dead: its attempts fail back to their homes at once as lost results, and what it held is
//   remembered for its next session (agent-carry.ts);
// - capacity per kind (free/total/healthy) is kept incrementally (agent-capacity.ts), so summaries and
//   credits cost O(kinds), not O(agents).
import type { ServerDuplexStream } from '@grpc/grpc-js';
import type { AgentHello, ConnectRequest, ConnectResponse } from '../gen/meshlb/v1/agent.js';
import type { TaskRef } from '../gen/meshlb/v1/task.js';
import type { Candidate } from '../policies/index.js';
import { alreadyExists, deadlineExceeded, invalidArgument, notFound, resourceExhausted } from '../util/errors.js';
import { LIMITS, truncate } from '../util/limits.js';
import { candidateOf } from './agent-candidate.js';
import { Handshakes, silenceLimitMs } from './agent-handshake.js';
import { AgentCapacity, subtreeLoad } from './agent-capacity.js';
import { agentCheckpoint } from './agent-checkpoint.js';
import { takeResults } from './agent-results.js';
import { CarryOver } from './agent-carry.js';
import {
  AgentSession,
  carriedFrom,
  clamp01,
  heartbeatFor,
  helloOverLimits,
  HEARTBEATS_PER_SECOND,
  type Heartbeat,
} from './agent-session.js';
import { ContextHolders, contextsOverLimits } from './context-holders.js';
import { Speeds } from './agent-speed.js';
import { isUndecodable } from './grpc-util.js';
import { endStream } from './stream-ends.js';
import { HelloAdmission, HelloGate } from './agent-admission.js';
import { clip, refuseHello, type MeshIdentity } from './mesh-identity.js';
import { notLeadingError, type AgentSide, type CellPort, type SubtreeLoad } from './port.js';
import { slotsOf } from './slot-map.js';
import { StallClock, stallAllowMs } from './stall-clock.js';
import { routeKey, type WorkItem } from './types.js';
import { VersionRamps } from './version-ramps.js';

export class AgentSessions implements AgentSide {
  readonly byId = new Map<string, AgentSession>();
  /** Sessions plus streams awaiting their hello, per replica (LIMITS; tests lower it). */
  maxAgents: number = LIMITS.agentsPerNode;
  /** Loads per second the agents send together at most: past it their interval stretches (tests lower it). */
  heartbeatsPerSecond = HEARTBEATS_PER_SECOND;
  /** Every live session's heartbeat interval is at least this. */
  private intervalFloorMs = 0;
  /** ... and its timeout at least this (0: the configured one). */
  private timeoutFloorMs = 0;
  private lastScanMs = 0;
  /** Streams awaiting their hello, sessions awaiting their first message: their deadlines stretch in a storm. */
  private readonly hs = new Handshakes<ServerDuplexStream<ConnectRequest, ConnectResponse>>();
  readonly capacity = new AgentCapacity();
  readonly carry: CarryOver;
  private lastSweepMs = 0;
  /** New agent streams admitted per second (agent-admission.ts; the topology's helloRatePerSecond). */
  private readonly gate: HelloGate;
  private readonly stalls = new StallClock(() =>
    stallAllowMs(this.cell.settings, Math.min(250, this.cell.settings.heartbeatTimeoutMs / 4)),
  );
  maxOverSlots = Number.NEGATIVE_INFINITY; // instrumentation: most attempts an agent held past its slots (<= 0)
  /** Agent ids an operator cordoned (the cell's replicated config): a session is cordoned from its hello on. */
  private cordons: ReadonlySet<string> = new Set();
  /** Version ramps (the cell's replicated config): candidates carry their side of each (version-ramps.ts). */
  readonly versions = new VersionRamps();
  /** Context keys the agents reported holding warm (context-holders.ts). */
  readonly contexts = new ContextHolders();
  readonly speeds: Speeds; // the agents' reported run times, the node's overhead (agent-speed.ts)

  constructor(
    private readonly cell: CellPort,
    private readonly mesh: MeshIdentity, // named in the welcome; a hello naming another mesh or node cell is refused
  ) {
    this.carry = new CarryOver(cell, this.capacity);
    this.speeds = new Speeds(cell);
    this.gate = new HelloGate(cell, new HelloAdmission(cell.settings.helloRatePerSecond));
  }

  /** Streams awaiting their hello, and sessions welcomed that have not spoken since (bench:scale reports them). */
  get handshakes(): { pending: number; unheard: number } {
    return { pending: this.hs.pending.size, unheard: this.hs.unheard };
  }

  /** The hello admission bucket: streams admitted and refused so far. */
  get admission(): HelloAdmission {
    return this.gate.bucket;
  }

  /** Carried attempts released by their result, and by a load. */
  get stats(): CarryOver['stats'] {
    return this.carry.stats;
  }

  connect(call: ServerDuplexStream<ConnectRequest, ConnectResponse>): void {
    const cell = this.cell;
    let session: AgentSession | undefined;
    if (this.byId.size + this.hs.pending.size >= this.maxAgents) {
      const why = `node ${cell.path} holds ${this.maxAgents} agent streams, its limit; try another node`;
      const err = resourceExhausted(why, cell.settings.heartbeatTimeoutMs);
      return endStream(call, err, cell, 'agent', 'agent: too many agents', 'full');
    }
    if (this.gate.refused(call)) return;
    this.hs.pending.set(call, cell.scheduler.now());
    const fail = (err: unknown, what: string): void => {
      this.hs.pending.delete(call);
      if (session) this.lost(session, what);
      endStream(call, err, cell, 'agent', what);
    };
    call.on('data', (req: ConnectRequest) => {
      cell.meter.agent.received();
      try {
        if (session?.dead) return;
        if (isUndecodable(req))
          return fail(invalidArgument(`undecodable agent message: ${req.$invalid}`), 'agent: garbage');
        const m = req.msg;
        if (!m) return fail(invalidArgument('agent message with no content'), 'agent: empty message');
        if (session === undefined) {
          if (m.$case !== 'hello') return fail(invalidArgument('the first message must be hello'), 'agent: no hello');
          const h = m.value;
          const tooLong = helloOverLimits(h);
          if (tooLong) return fail(invalidArgument(tooLong), 'agent: hello over limits');
          const claim = { mesh: h.mesh, meshId: h.meshId, cell: h.nodeCell };
          const here = { mesh: this.mesh, cell: cell.path, replicaId: cell.replicaId };
          const refused = refuseHello(`agent ${clip(h.agentId)}`, claim, here);
          if (refused) return fail(refused, 'agent: refused, another mesh or cell');
          const lead = cell.leaderHint();
          if (!lead.leading) return fail(notLeadingError(cell.path, lead), 'agent: not the leader');
          this.hs.pending.delete(call);
          session = this.hello(m.value, call);
          return;
        }
        session.lastSeenMs = cell.scheduler.now();
        if (session.hear()) this.hs.unheard--;
        switch (m.$case) {
          case 'hello':
            return fail(invalidArgument('hello sent twice'), 'agent: second hello');
          case 'load': {
            const [l, s] = [m.value, session];
            if (l.draining && !s.leaving) {
              this.capacity.update(s, () => (s.draining = true)); // capacity moves with a load only here
              this.changed();
            }
            if (s.carried.size > l.inFlight) this.carry.trim(s, l.inFlight);
            s.cpu = clamp01(l.cpu);
            s.memory = clamp01(l.memory);
            if (s.usable) cell.agentChanged(s.id); // the picker re-reads it (a cordoned one's would rebuild it)
            return;
          }
          case 'results':
            takeResults(cell, this, session, m.value.results);
            return;
          case 'started':
            if (this.carry.started(session, m.value.refs)) this.changed();
            return;
          case 'checkpoint':
            return agentCheckpoint(cell, session, m.value);
          case 'contexts': {
            const bad = contextsOverLimits(m.value);
            if (bad) return fail(invalidArgument(bad), 'agent: contexts over limits');
            return this.contexts.apply(session.id, m.value);
          }
          case 'speed':
            return this.speeds.take(session, m.value, (why) => fail(invalidArgument(why), 'agent: bad speed'));
        }
      } catch (err) {
        fail(err, 'agent: message handling failed');
      }
    });
    const gone = (why: string) => (): void => {
      this.hs.pending.delete(call);
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
    if (!id) throw invalidArgument(`hello.agent_id is required (1-${LIMITS.agentId} characters)`);
    if (h.kinds.length === 0 || h.kinds.some((k) => !k))
      throw invalidArgument('hello.kinds must list at least one non-empty kind');
    if (!(h.slots >= 1) || h.slots > cell.settings.maxAgentSlots) {
      throw invalidArgument(`hello.slots must be 1..${cell.settings.maxAgentSlots}, got ${h.slots}`);
    }
    const prior = this.byId.get(id);
    if (prior && !prior.dead) throw alreadyExists(`agent ${id} is already connected to ${cell.path}`);
    const now = cell.scheduler.now();
    const hb = this.pace();
    const s: AgentSession = new AgentSession(
      id,
      h,
      call,
      now,
      hb,
      cell.settings.batcher,
      cell.scheduler,
      (bytes) => {
        this.lost(s, 'agent not reading');
        const why = resourceExhausted(`agent ${id} stopped reading (${bytes} bytes unread)`, 1000);
        endStream(call, why, cell, 'agent', 'agent overflow', 'not_reading');
      },
      cell.meter.agent,
    );
    // What its previous session held may still be running there: reserved before any assignment.
    this.carry.adopt(s, now);
    // And what the agent says it still runs (its hello), before any assignment can land on those slots.
    if (h.running.length > 0) this.carry.declared(s, h.running, now);
    s.cordoned = this.cordons.has(id);
    this.byId.set(id, s);
    this.hs.unheard++;
    this.capacity.account(s, 1);
    call.write({
      msg: {
        $case: 'welcome',
        value: {
          nodeCell: cell.path,
          replicaId: cell.replicaId,
          heartbeatIntervalMs: hb.intervalMs,
          heartbeatTimeoutMs: hb.timeoutMs,
          maxMessageBytes: cell.settings.maxMessageBytes,
          maxCheckpointBytes: cell.settings.checkpointMaxBytes,
          takesSpeed: true,
          mesh: this.mesh.name,
          meshId: this.mesh.id,
        },
      },
    });
    const kinds = truncate(s.kinds.join(','), LIMITS.echo);
    cell.log.debug({ agent: id, kinds, slots: s.slots, carried: s.carried.size }, 'agent connected');
    this.changed();
    return s;
  }

  /** The heartbeat of a new session; when the agents outgrow the floor, every session's is stretched, once. */
  private pace(): Heartbeat {
    const { heartbeatIntervalMs: intervalMs, heartbeatTimeoutMs: timeoutMs } = this.cell.settings;
    const hb = heartbeatFor(this.byId.size + 1, { intervalMs, timeoutMs }, this.heartbeatsPerSecond);
    if (hb.intervalMs > this.intervalFloorMs) for (const x of this.byId.values()) x.stretchHeartbeat(hb);
    this.intervalFloorMs = hb.intervalMs;
    this.timeoutFloorMs = hb.timeoutMs;
    return hb;
  }

  /** Give an attempt to an agent the picker chose (it had a free slot). */
  assign(agentId: string, item: WorkItem): void {
    const s = this.byId.get(agentId);
    const cost = slotsOf(item.spec);
    if (!s || !s.usable || s.inFlight + cost > s.slots) {
      // The picker's view was stale: refuse it back toward its origin, uncounted. The pick took a
      // credit no slot backs, and an idle agent sends no load to correct it: a live picker re-reads
      // the agent now (a session gone or unusable makes it rebuild).
      this.cell.bounce(item, `agent ${agentId} unavailable`);
      if (s) this.cell.agentChanged(s.id);
      return;
    }
    s.assigned.set(item.key, item);
    this.capacity.slotsTaken(s, cost);
    const over = s.inFlight - s.slots;
    if (over > this.maxOverSlots) this.maxOverSlots = over;
    s.sendAssignment(item);
    this.cell.capacityChanged();
  }

  cancel(agentId: string, ref: TaskRef, _why: string): void {
    const s = this.byId.get(agentId);
    if (s && !s.dead && s.assigned.has(routeKey(ref.taskId, ref.attempt))) s.sendCancel(ref);
  }

  /**
   * A preempted attempt its agent did not answer within the grace (preemptor.ts): the home stops waiting
   * for it, but it may still run there, so it holds its slot as a carried one until the agent answers.
   */
  carryOn(agentId: string, key: string): WorkItem | undefined {
    const s = this.byId.get(agentId);
    const item = s?.assigned.get(key);
    if (!s || !item) return undefined;
    s.assigned.delete(key);
    this.carry.keep(s, key, carriedFrom(item, true));
    return item;
  }

  /** `migrateGraceMs` set: the agent hands its running attempts back (checkpointed) instead of finishing them. */
  drainAgent(agentId: string, reason: string, migrateGraceMs?: number): AgentSession {
    const s = this.byId.get(agentId);
    if (!s || s.dead) throw notFound(`agent ${clip(agentId)} is not connected to ${this.cell.path}`);
    this.capacity.update(s, () => (s.draining = true));
    s.sendDrain(reason, migrateGraceMs);
    this.changed();
    return s;
  }

  /**
   * Heartbeat and hello deadlines, carried attempts; a scan every quarter timeout (at most 250 ms), not
   * per task. Silence leaves out this process's own stalls (stall-clock.ts: ticks further apart than
   * that quarter): timers run before the event loop reads its sockets, where the loads sent meanwhile
   * wait. Hellos and first loads get longer in a connect storm (agent-handshake.ts).
   */
  sweep(now: number): void {
    const hb = this.cell.settings.heartbeatTimeoutMs;
    this.stalls.tick(now);
    if (now - this.lastSweepMs < Math.min(250, hb / 4)) return;
    this.lastSweepMs = now;
    // A scan per quarter of the shortest timeout any session has (at most 250 ms, 6.75 s at 20,000 agents):
    // the same share of a timeout at any size, so scans cost about as much per second at 20,000 as at 1,000.
    if (now - this.lastScanMs >= (Math.min(250, hb / 4) * Math.max(hb, this.timeoutFloorMs)) / hb) {
      this.lastScanMs = now;
      for (const s of this.byId.values()) {
        const timeout = silenceLimitMs(s.heartbeat, s.heard, this.hs.others);
        if (!s.dead && this.stalls.silence(s.lastSeenMs, now) > timeout) {
          this.lost(s, `no heartbeat for ${now - s.lastSeenMs} ms`);
          const why = deadlineExceeded(`agent ${s.id} missed heartbeats for ${timeout} ms`);
          endStream(s.call, why, this.cell, 'agent', 'agent dead', 'silent');
        }
      }
    }
    this.carry.expire(now);
    this.hs.expireHellos(this.stalls, now, hb, (call, ms) => {
      const why = deadlineExceeded(`no hello within ${ms} ms`);
      endStream(call, why, this.cell, 'agent', 'agent: hello timeout', 'hello_timeout');
    });
  }

  private lost(s: AgentSession, why: string): void {
    if (s.dead) return;
    if (!s.heard) this.hs.unheard--;
    this.capacity.account(s, -1);
    s.dead = true;
    s.batcher.close();
    if (this.byId.get(s.id) === s) {
      this.byId.delete(s.id);
      this.contexts.forget(s.id);
    }
    this.speeds.forget(s);
    // Remember what it held: should it come back while these may still run, they hold its slots.
    this.carry.remember(s);
    const n = this.cell.agentLost(s.id, why);
    s.assigned.clear();
    s.carried.clear();
    this.cell.log.info({ agent: s.id, why, requeued: n }, 'agent gone');
    this.changed();
  }

  /** The cordoned agent ids changed (cell-config.ts): sessions follow, capacity and candidates with them. */
  setCordoned(ids: ReadonlySet<string>): void {
    this.cordons = ids;
    const flip = [...this.byId.values()].filter((s) => !s.dead && s.cordoned !== ids.has(s.id));
    for (const s of flip) this.capacity.update(s, () => (s.cordoned = !s.cordoned));
    if (flip.length > 0) this.changed();
  }

  private changed(): void {
    this.cell.candidatesChanged();
    this.cell.capacityChanged();
  }

  candidates(now: number): Candidate[] {
    const out: Candidate[] = [];
    for (const s of this.byId.values()) if (!s.dead) out.push(candidateOf(s, now, this.versions.labels(s)));
    return out;
  }

  /** One live agent's candidate (its figures changed: a picker kept up to date takes it in place). */
  candidate(agentId: string, now: number): Candidate | undefined {
    const s = this.byId.get(agentId);
    return s === undefined || s.dead ? undefined : candidateOf(s, now, this.versions.labels(s));
  }

  load(): SubtreeLoad {
    return subtreeLoad(this.byId, this.capacity, this.cell.scheduler.now());
  }

  closeAll(): void {
    for (const s of [...this.byId.values()]) s.close();
  }
}
