// Preemption in a cell (docs/flow-control.md, "Preemption"). The decision
// itself is pure (src/flow/preemption.ts); this module feeds it and acts.
//
// At a node cell: a task of the threshold priority (critical by default)
// waiting for a slot of a kind none of the node's agents has free picks a
// running attempt of strictly lower priority (the lowest, youngest first) on
// an agent that serves the kind and matches its affinity. The node sends
// that agent a Preemption (why, and the grace) and a Cancel, keeps the slot
// held until the agent answers, and hands it to the waiting task at once.
// The attempt goes back to its home as MESH_FAILURE_PREEMPTED: requeued,
// not counted against max_attempts (an OK answer that raced the cancel stays
// a completion). At most maxPerSecond preemptions per second per node.
//
// Above the nodes: a waiting critical task of a kind no child has a credit
// for is sent past the credits to a child whose summary shows attempts it
// could preempt (KindCapacity.preemptible), at most that many per summary.
//
// A victim its agent does not answer within the grace (plus GRACE_SLACK_MS)
// goes home as preempted all the same; its slot stays held as a carried
// attempt (agent-carry.ts) until the agent answers — the SDK ends it at the
// grace — or its lease ends: the agent never holds more than its slots.
//
// Invariants:
// - a victim is in `victims` from its cancel until its agent answers or its grace ends;
//   each waiting task has at most one victim (`matched`);
// - nothing is preempted while a usable agent of the kind has a free slot.
import type { TaskResult } from '../gen/meshlb/v1/task.js';
import { ResultStatus } from '../gen/meshlb/v1/task.js';
import { isKeyed } from '../flow/gate.js';
import { chooseVictims, PreemptionBudget, PRIORITY_RANKS, type RunningAttempt } from '../flow/preemption.js';
import { PRIORITY_RANK, type TaskQueue } from '../queue/index.js';
import type { PreemptionSpec } from '../topology/types.js';
import type { Logger } from '../util/log.js';
import type { AgentSessions } from './agent-sessions.js';
import type { ChildLinks } from './child-links.js';
import { slotsOf } from './slot-map.js';
import { summaryMayMatch } from './label-groups.js';
import { meshFailure, type WorkItem } from './types.js';

/** A victim goes home this long after its grace if its agent has not answered (the answer may be on its way). */
export const GRACE_SLACK_MS = 500;
/** Waiting tasks looked at per kind and pump. */
const SCAN = 64;

interface Victim {
  readonly agentId: string;
  readonly kind: string;
  /** The queue id of the waiting task that gets the slot, and its task id. */
  readonly preemptor: string;
  readonly byTask: string;
  readonly untilMs: number;
}

export interface PreemptorDeps {
  readonly path: string;
  readonly spec: PreemptionSpec;
  readonly log: Logger;
  readonly queue: TaskQueue<WorkItem>;
  readonly agents: () => AgentSessions | undefined;
  readonly children: () => ChildLinks | undefined;
  /** Send a queued item to that agent or child now, outside the picker (dispatcher.placeNow). */
  readonly placeNow: (id: string, candidate: string, why: string) => boolean;
  /** A result toward the origin of the attempt `key` (the relay). */
  readonly deliver: (r: TaskResult, key: string) => void;
}

export class Preemptor {
  private readonly victims = new Map<string, Victim>();
  private readonly matched = new Set<string>();
  private readonly budget: PreemptionBudget;
  private readonly threshold: number;
  /** Attempts preempted here, per kind (meshlb_preemptions_total). */
  readonly byKind = new Map<string, number>();
  /** The rate limit held a preemption back: the dispatcher pumps again from its sweep. */
  again = false;
  private cachedAt = -1;
  private readonly cache = new Map<string, number>();

  constructor(private readonly d: PreemptorDeps) {
    this.budget = new PreemptionBudget(d.spec.maxPerSecond);
    this.threshold = PRIORITY_RANKS[d.spec.minPriority];
  }

  get enabled(): boolean {
    return this.d.spec.enabled;
  }

  /**
   * Set by the dispatcher: a waiting task that may not be placed outside its pump's gates. A new
   * home task naming a flow key or of a tenant with a share passes its gate first (placed outside
   * it, a task the tenant gate let go would keep its promised room for good, and its tenant's
   * tasks would wait behind it); a gang member goes only with its gang (gang.ts).
   */
  gated: (item: WorkItem) => boolean = (it) => it.origin.type === 'home' && it.attempt === 0 && isKeyed(it.spec);

  /** Waiting tasks of `kind` that may preempt, with no victim yet. */
  private waiting(kind: string): WorkItem[] {
    const items = this.d.queue.oldestOfKind(kind, this.threshold, SCAN);
    return items.filter((it) => !this.matched.has(it.id) && !this.gated(it));
  }

  /** The dispatcher found no credit for `kind`: preempt (a node) or send a waiting task where it can (above). */
  consider(kind: string, now: number): void {
    if (!this.d.spec.enabled) return;
    const agents = this.d.agents();
    if (agents) this.atNode(agents, kind, now);
    else this.above(kind);
  }

  private atNode(agents: AgentSessions, kind: string, now: number): void {
    const waiting = this.waiting(kind);
    if (waiting.length === 0) return;
    let freeSlots = 0;
    const running: RunningAttempt[] = [];
    for (const s of agents.byId.values()) {
      if (!s.usable || !s.kinds.includes(kind)) continue;
      freeSlots += Math.max(0, s.slots - s.inFlight);
      for (const item of s.assigned.values()) {
        if (this.victims.has(item.key)) continue;
        const slots = slotsOf(item.spec);
        running.push({
          key: item.key,
          agentId: s.id,
          rank: PRIORITY_RANK[item.priority],
          startedMs: item.sentMs,
          slots,
        });
      }
    }
    const byId = new Map(waiting.map((w) => [w.id, w]));
    const choices = chooseVictims({
      freeSlots,
      waiting: waiting.map((w) => ({ id: w.id, rank: PRIORITY_RANK[w.priority], slots: slotsOf(w.spec) })),
      running,
      thresholdRank: this.threshold,
      budget: this.budget.available(now),
      fits: (p, agentId) => fits(byId.get(p)!, agents.byId.get(agentId)?.labels ?? []),
    });
    for (const c of choices) this.preempt(agents, byId.get(c.preemptor)!, c.victim, now);
    // Held back by the rate limit: look again on a later tick (nothing else may wake the pump).
    if (choices.length < waiting.length && freeSlots === 0 && this.budget.available(now) === 0) this.again = true;
  }

  private preempt(agents: AgentSessions, by: WorkItem, v: RunningAttempt, now: number): void {
    const s = agents.byId.get(v.agentId);
    const item = s?.assigned.get(v.key);
    if (!s || !item) return;
    const graceMs = this.d.spec.graceMs;
    this.budget.spend(now);
    this.matched.add(by.id);
    this.victims.set(v.key, {
      agentId: v.agentId,
      kind: item.kind,
      preemptor: by.id,
      byTask: by.taskId,
      untilMs: now + graceMs + GRACE_SLACK_MS,
    });
    this.byKind.set(item.kind, (this.byKind.get(item.kind) ?? 0) + 1);
    const reason = `preempted by task ${by.taskId} (${by.priority}) at ${this.d.path}`;
    s.sendPreemption({
      ref: { taskId: item.taskId, attempt: item.attempt, slots: 0 },
      reason,
      graceMs,
      byTaskId: by.taskId,
    });
    this.d.log.info(
      { task: item.taskId, attempt: item.attempt, priority: item.priority, agent: v.agentId, by: by.taskId, graceMs },
      'task preempted',
    );
  }

  isVictim(key: string): boolean {
    return this.victims.has(key);
  }

  /**
   * The agent answered a preempted attempt (its slot is free now): the answer goes home as a
   * preemption unless it completed, and the slot goes to the task that preempted it.
   */
  answered(key: string, r: TaskResult): TaskResult {
    const v = this.victims.get(key);
    if (!v) return r;
    this.victims.delete(key);
    this.matched.delete(v.preemptor);
    this.d.placeNow(v.preemptor, v.agentId, `preemption: the slot of ${key}, preempted for it`);
    if (r.status === ResultStatus.RESULT_STATUS_OK) return r;
    return this.preempted(r.taskId, r.attempt, v, r.agentId);
  }

  private preempted(taskId: string, attempt: number, v: Victim, agentId: string): TaskResult {
    const r = meshFailure({ taskId, attempt }, 'preempted', `by task ${v.byTask} at ${this.d.path}`, this.d.path);
    r.output = Buffer.from(v.byTask, 'utf8');
    r.agentId = agentId;
    return r;
  }

  /** From the cell's tick: victims not answered within their grace free their slots; gone ones are forgotten. */
  sweep(now: number): void {
    if (this.victims.size === 0) return;
    const agents = this.d.agents();
    for (const [key, v] of this.victims) {
      const s = agents?.byId.get(v.agentId);
      if (!s || !s.assigned.has(key)) {
        // Its agent went away (the attempt failed back as lost) or it ended otherwise.
        this.victims.delete(key);
        this.matched.delete(v.preemptor);
        continue;
      }
      if (now < v.untilMs) continue;
      this.victims.delete(key);
      this.matched.delete(v.preemptor);
      const item = agents!.carryOn(v.agentId, key);
      if (!item) continue;
      const { taskId, attempt } = item;
      this.d.log.warn({ task: taskId, attempt, agent: v.agentId }, 'preempted task not stopped within its grace');
      // No agent named: the home lets its permit linger (it may still run), and retries it uncounted.
      this.d.deliver(this.preempted(taskId, attempt, v, ''), key);
    }
  }

  /** Above the nodes: send waiting critical tasks to children that can preempt for them. */
  private above(kind: string): void {
    const children = this.d.children();
    if (!children) return;
    for (const item of this.waiting(kind)) {
      let best: string | undefined;
      let room = 0;
      for (const link of children.links.values()) {
        if (link.closed || link.summary?.draining || link.cell === item.exclude) continue;
        if (link.summary && !summaryMayMatch(link.summary, kind, item.spec.affinity)) continue; // label-groups.ts
        const r = (link.preemptible.get(kind) ?? 0) - (link.overdraft.get(kind) ?? 0);
        if (r > room) [best, room] = [link.cell, r];
      }
      if (best === undefined) return;
      const link = children.links.get(best)!;
      link.overdraft.set(kind, (link.overdraft.get(kind) ?? 0) + 1);
      this.d.placeNow(item.id, best, `preemption: no credit of kind ${kind}; ${best} can preempt ${room} for it`);
    }
  }

  /** What this cell reports as preemptible for `kind` (summaries): computed at most once per ms-tick. */
  preemptible(kind: string, now: number): number {
    if (!this.d.spec.enabled) return 0;
    if (now !== this.cachedAt) {
      this.cachedAt = now;
      this.cache.clear();
    }
    let n = this.cache.get(kind);
    if (n === undefined) this.cache.set(kind, (n = this.count(kind)));
    return n;
  }

  private count(kind: string): number {
    const waiting = this.d.queue.oldestOfKind(kind, this.threshold, SCAN).filter((w) => !this.matched.has(w.id)).length;
    let n = 0;
    const agents = this.d.agents();
    if (agents) {
      for (const s of agents.byId.values()) {
        if (!s.usable || !s.kinds.includes(kind)) continue;
        for (const item of s.assigned.values())
          if (PRIORITY_RANK[item.priority] > this.threshold && !this.victims.has(item.key)) n++;
      }
    } else {
      for (const link of this.d.children()?.links.values() ?? []) {
        if (link.closed || link.summary?.draining) continue;
        n += Math.max(0, (link.preemptible.get(kind) ?? 0) - (link.overdraft.get(kind) ?? 0));
      }
    }
    return Math.max(0, n - waiting);
  }
}

/** Every affinity label of the task is among the agent's labels. */
function fits(item: WorkItem, labels: readonly { key: string; value: string }[]): boolean {
  for (const a of item.spec.affinity) if (!labels.some((l) => l.key === a.key && l.value === a.value)) return false;
  return true;
}
