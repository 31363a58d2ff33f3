// What must hold in the mesh at every step of a simulated run, whatever the
// faults (docs/design.md's promises), checked against the real cells' state:
//   place      an attempt (task, attempt) is in at most one place: one cell's
//              queue or one agent;
//   terminal   a task gets at most one terminal record, and never leaves it;
//   attempts   attempts that ran on agents never exceed max_attempts;
//   slots      an agent never holds more than its slots (node and agent view);
//   multislot  counted by each attempt's slots (TaskSpec.slots), an agent's
//              slots in use never exceed its slots: an assignment of several
//              slots over them is this check's (node and agent view);
//   capacity   free slots never exceed total, in every summary a parent holds;
//   credits    dispatch credits and their counts never go negative, and each
//              link's unacked count is the dispatches awaiting an ack; nothing
//              is sent past a child's credits but preemption's critical tasks
//              (its overdraft) and guaranteed attempts, and a home never has
//              more of a tenant's guaranteed attempts out than its minimum;
//   stale      a task completes only from its current, live attempt, one an agent ran;
//   trail      a cell's recorded placement of an attempt (ExplainTask) names
//              where that attempt went from the cell;
//   checkpoint an attempt starts from the latest checkpoint its home ledger
//              recorded for the task (what the ledger held when the attempt was
//              dispatched: none of an older attempt, none missed);
//   gang       no member of a gang is at an agent (its current attempt, in a
//              session of a node) while another member that never started
//              waits in its home's queue, or whose current attempt waits in a
//              queue on its way down; and the members of a gang at agents are
//              all at one node: a gang is never half-held nor split (gang.ts,
//              gang-route.ts);
//   blocked    a queued task at a node never waits while an agent that could run
//              it sits idle with a free slot (its circuit breaker closed), for
//              longer than a bound;
//   affinity   a cell above the nodes never sends a task with affinity to a
//              child whose subtree has long had no agent with its labels while a
//              sibling has one (affinity.ts);
//   wire       what a stream writes is the object it was written from (half of
//              the seeds: wire-check.ts), so a relayed item changed in place is
//              not dropped on the wire unseen;
// and, once faults healed and the run drained:
//   ended      every accepted task ended with exactly one terminal record.
// Each check names itself in the violation, so a mutation test can show it fire.
import { ResultStatus, TaskState, type Label } from '../../../src/gen/meshlb/v1/task.js';
import type { Cell } from '../../../src/mesh/cell.js';
import type { ChildLink } from '../../../src/mesh/child-link.js';
import { AffinityWatch } from './affinity.js';
import { keyLane } from '../../../src/flow/flow-state.js';
import { resumableOf } from '../../../src/mesh/home-checkpoints.js';
import { isTerminal, type Ledger, type TaskRecord } from '../../../src/mesh/ledger.js';
import type { WorkItem } from '../../../src/mesh/types.js';
import type { AgentObserver } from './agent.js';
import type { SimMesh } from './mesh.js';
import { DebounceWatch } from './debounce.js';
import { ShareWatch } from './shares.js';

export type Check =
  | 'place'
  | 'terminal'
  | 'attempts'
  | 'slots'
  | 'multislot'
  | 'affinity'
  | 'gang'
  | 'capacity'
  | 'credits'
  | 'stale'
  | 'blocked'
  | 'trail'
  | 'ended'
  | 'idempotency'
  | 'flow'
  | 'checkpoint'
  | 'debounce'
  | 'share'
  | 'wire'
  | 'crash';

export interface Violation {
  readonly check: Check;
  readonly atMs: number;
  readonly what: string;
}

interface TaskWatch {
  terminals: number;
  /** Attempts that started on an agent. */
  readonly ran: Set<number>;
  /** Attempts whose agent finished them with an OK result. */
  readonly ok: Set<number>;
  max: number;
  /** Attempts preempted for critical tasks (the ledger's count): they ran, and spent no attempt by design. */
  preempted: number;
}

/** How long a capable idle agent may sit beside a queued task it could run (ms). */
export const BLOCKED_BOUND_MS = 2_000;

export class Checker implements AgentObserver {
  readonly violations: Violation[] = [];
  private readonly tasks = new Map<string, TaskWatch>();
  /** Running at agents: route key -> agent ids (more than one is a violation). */
  private readonly runningAt = new Map<string, Set<string>>();
  /** Queued task at a node with a capable idle agent: since when. */
  private readonly idleSince = new Map<string, number>();
  private readonly seenViolation = new Set<string>();

  /** Concurrency key → `agent|taskId#attempt` running at the agents now. */
  private readonly keyRunning = new Map<string, Set<string>>();
  /** Highest count seen per key, and attempts started per key (stats). */
  readonly keyPeak = new Map<string, number>();
  readonly keyStarts = new Map<string, number>();
  /** Debounced tasks' windows and first starts (debounce.ts). */
  readonly debounce: DebounceWatch;
  /** Capped tenants' attempts running at the agents (shares.ts). */
  readonly shares: ShareWatch;

  constructor(
    private readonly now: () => number,
    private readonly limit = 50,
    /** Concurrency key → its limit (the topology's flow section). */
    private readonly keyLimits: ReadonlyMap<string, number> = new Map(),
    /** The topology turns preemption on: otherwise no task may be preempted. */
    private readonly preemption = false,
    /** Tenant → its ceiling (the topology's `flow.tenants`). */
    ceilings: ReadonlyMap<string, number> = new Map(),
    /** Concurrency key → its share's ceiling (`flow.concurrency`, key shares). */
    keyCeilings: ReadonlyMap<string, number> = new Map(),
  ) {
    this.debounce = new DebounceWatch(now);
    this.affinity = new AffinityWatch((check, what) => this.add(check, what));
    this.shares = new ShareWatch(ceilings, keyCeilings);
  }

  add(check: Check, what: string): void {
    // One line per distinct finding; a run that goes bad stops piling up copies.
    const key = `${check}:${what}`;
    if (this.seenViolation.has(key) || this.violations.length >= this.limit) return;
    this.seenViolation.add(key);
    this.violations.push({ check, atMs: this.now(), what });
  }

  private watch(id: string): TaskWatch {
    let w = this.tasks.get(id);
    if (!w) this.tasks.set(id, (w = { terminals: 0, ran: new Set(), ok: new Set(), max: 0, preempted: 0 }));
    return w;
  }

  /** Watch a leading replica's home ledger (each replica's ledger applies every entry once). */
  attachLedger(replicaId: string, ledger: Ledger): void {
    // One name per ledger instance: a restarted replica replays its log into a new one.
    const copy = `${replicaId}@${++this.ledgers}`;
    this.ledgerList.push({ copy, ledger });
    const last = new Map<string, TaskState>();
    ledger.onChange((rec) => {
      const prev = last.get(rec.id);
      if (prev !== undefined && isTerminal(prev) && prev !== rec.state)
        this.add('terminal', `${rec.id} left terminal ${TaskState[prev]} for ${TaskState[rec.state]} at ${replicaId}`);
      // From QUEUED the last attempt had ended (failed or lost): a result for it is stale
      // although its number is still the record's attempt, which the check below compares.
      if (rec.state === TaskState.TASK_STATE_COMPLETED && prev === TaskState.TASK_STATE_QUEUED)
        this.add('stale', `${rec.id} completed by attempt ${rec.attempt}, which had ended (QUEUED) at ${replicaId}`);
      last.set(rec.id, rec.state);
      const w = this.watch(rec.id);
      w.max = ledger.maxAttempts(rec);
      w.preempted = Math.max(w.preempted, rec.preemptions);
      if (rec.preemptions > 0 && !this.preemption) this.add('attempts', `${rec.id} preempted with preemption off`);
      if (rec.failures > w.max) this.add('attempts', `${rec.id}: ${rec.failures} failed attempts of ${w.max}`);
      if (rec.state === TaskState.TASK_STATE_COMPLETED) this.completed(rec, w);
    });
    ledger.onTerminal((rec) => {
      const w = this.watch(rec.id);
      // Counted per ledger: one terminal per replica's copy of the task.
      const k = `${copy}|${rec.id}`;
      if (this.terminalAt.has(k)) this.add('terminal', `${rec.id} recorded terminal twice at ${replicaId}`);
      this.terminalAt.add(k);
      w.terminals++;
    });
  }

  private readonly terminalAt = new Set<string>();
  private ledgers = 0;
  /** Every replica's ledger (restarted replicas add a new one): where checkpoints are recorded. */
  private readonly ledgerList: { copy: string; ledger: Ledger }[] = [];
  /** Attempts that started from a checkpoint (stats). */
  resumedFromCheckpoint = 0;

  private completed(rec: TaskRecord, w: TaskWatch): void {
    const r = rec.result;
    if (!r || r.status !== ResultStatus.RESULT_STATUS_OK) return;
    if (r.attempt !== rec.attempt)
      this.add('stale', `${rec.id} completed by attempt ${r.attempt}, current ${rec.attempt}`);
    if (!w.ok.has(r.attempt)) this.add('stale', `${rec.id} completed by attempt ${r.attempt}, which no agent finished`);
  }

  // ------------------------------------------------------------ agents

  overSlots(agent: string, used: number, slots: number, key: string, cost: number): void {
    const check = cost > 1 ? 'multislot' : 'slots';
    this.add(check, `agent ${agent} was given ${key} (${cost} slots) holding ${used} of ${slots} slots`);
  }

  /** Attempts of several slots started at agents, and the most slots in use at an agent relative to its slots. */
  bigStarts = 0;
  /** Tasks with affinity sent down by cells above the nodes (affinity.ts). */
  readonly affinity: AffinityWatch;
  slotPeak = 0;

  slotsInUse(agent: string, used: number, slots: number, cost: number): void {
    if (cost > 1) this.bigStarts++;
    this.slotPeak = Math.max(this.slotPeak, used / slots);
    if (used > slots) this.add('multislot', `agent ${agent} holds ${used} of its ${slots} slots`);
  }

  started(agent: string, taskId: string, attempt: number, ckey = '', tenant = ''): void {
    const key = `${taskId}#${attempt}`;
    for (const over of this.shares.started(tenant, `${agent}|${key}`, ckey)) this.add('share', over);
    this.debounce.started(taskId, this.now());
    // A round-robin group's member `group:m` counts against the group's limit.
    const group = ckey.slice(0, Math.max(0, ckey.indexOf(':')));
    if (ckey) this.keyStarted(this.keyLimits.has(group) ? group : ckey, `${agent}|${key}`);
    let at = this.runningAt.get(key);
    if (!at) this.runningAt.set(key, (at = new Set()));
    at.add(agent);
    if (at.size > 1) this.add('place', `${key} runs at ${[...at].join(' and ')}`);
    const w = this.watch(taskId);
    w.ran.add(attempt);
    if (w.max > 0 && w.ran.size > w.max + w.preempted)
      this.add(
        'attempts',
        `${taskId}: ${w.ran.size} attempts ran on agents, max_attempts ${w.max}, preempted ${w.preempted}`,
      );
  }

  /**
   * checkpoint: every ledger that applied this attempt's dispatch, and no
   * checkpoint of it since, holds the checkpoint it was dispatched with: after
   * the `dispatched` entry no older attempt may record one, so that one is the
   * latest the home ever recorded before the attempt started.
   */
  resumed(agent: string, taskId: string, attempt: number, from: { attempt: number; seq: number } | undefined): void {
    if (from) this.resumedFromCheckpoint++;
    const fmt = (c: { attempt: number; seq: number } | undefined): string =>
      c ? `attempt ${c.attempt} seq ${c.seq}` : 'none';
    for (const { copy, ledger } of this.ledgerList) {
      const rec = ledger.get(taskId);
      if (!rec || rec.attempt < attempt || isTerminal(rec.state)) continue;
      const want = resumableOf(rec);
      if (want && want.attempt >= attempt) continue; // this attempt (or a later one) saved since
      if ((want?.attempt ?? -1) !== (from?.attempt ?? -1) || (want?.seq ?? -1) !== (from?.seq ?? -1))
        this.add(
          'checkpoint',
          `${taskId}#${attempt} at ${agent} resumes from ${fmt(from)}; the ledger at ${copy} holds ${fmt(want)}`,
        );
    }
  }

  finished(agent: string, taskId: string, attempt: number, ok = false): void {
    const key = `${taskId}#${attempt}`;
    for (const [ck, set] of this.keyRunning)
      if (set.delete(`${agent}|${key}`) && set.size === 0) this.keyRunning.delete(ck);
    this.shares.finished(`${agent}|${key}`);
    const at = this.runningAt.get(key);
    at?.delete(agent);
    if (at?.size === 0) this.runningAt.delete(key);
    if (ok) this.watch(taskId).ok.add(attempt);
  }

  /** flow: a key never has more attempts running at the agents than its limit (however many cells, whatever fails). */
  private keyStarted(ckey: string, at: string): void {
    let set = this.keyRunning.get(ckey);
    if (!set) this.keyRunning.set(ckey, (set = new Set()));
    set.add(at);
    this.keyStarts.set(ckey, (this.keyStarts.get(ckey) ?? 0) + 1);
    this.keyPeak.set(ckey, Math.max(this.keyPeak.get(ckey) ?? 0, set.size));
    const limit = this.keyLimits.get(ckey);
    if (limit !== undefined && set.size > limit)
      this.add('flow', `key ${ckey} has ${set.size} running at agents, limit ${limit}: ${[...set].join(' ')}`);
  }

  /** debounce, once drained: no debounced task started before its window could end (debounce.ts). */
  debounceAtEnd(): void {
    for (const why of this.debounce.early()) this.add('debounce', why);
  }

  /** flow, once drained: every key's count is back to zero, at the agents and in the root's ledger. */
  flowAtEnd(root: Ledger | undefined): void {
    for (const [ck, set] of this.keyRunning)
      if (set.size > 0) this.add('flow', `key ${ck} still has ${set.size} running at agents at the end`);
    const held = root?.flow.permits.counts() ?? new Map<string, number>();
    for (const [ck, n] of held) this.add('flow', `key ${ck} still holds ${n} permits in the root's ledger at the end`);
    for (const why of this.shares.atEnd(root)) this.add('share', why);
  }

  // ------------------------------------------------------------ the mesh, every step

  step(mesh: SimMesh): void {
    const now = this.now();
    const queued = new Map<string, string>();
    const stillIdle = new Set<string>();
    const leaders = new Map<string, Cell>();
    for (const rep of mesh.replicas.values()) {
      if (!rep.up || !rep.cell.leading) continue;
      const cell = rep.cell;
      leaders.set(cell.path, cell);
      for (const item of cell.queue.values()) {
        if (item.attempt === 0) continue; // a home task waiting for its next attempt number
        const where = queued.get(item.key);
        if (where !== undefined) this.add('place', `${item.key} queued at ${where} and ${cell.path}`);
        queued.set(item.key, cell.path);
        if (this.runningAt.has(item.key)) this.add('place', `${item.key} queued at ${cell.path} and running`);
      }
      if (cell.children) for (const link of cell.children.links.values()) this.link(cell.path, link);
      this.trail(cell);
      this.guaranteedOut(cell);
      const agents = cell.agents;
      if (!agents) continue;
      if (agents.maxOverSlots > 0)
        this.add('slots', `node ${cell.path} gave an agent ${agents.maxOverSlots} over its slots`);
      for (const s of agents.byId.values()) {
        if (s.dead) continue;
        if (s.inFlight > s.slots)
          this.add('slots', `node ${cell.path} counts ${s.inFlight} held by ${s.id} of ${s.slots}`);
        if (!s.usable || s.inFlight >= s.slots) continue;
        // An agent its breaker shuts off (open, or half-open with its probes out) idles by design.
        if (cell.breakers.breakers.state(s.id) !== 'closed') continue;
        for (const item of cell.queue.values()) {
          if (!s.kinds.includes(item.kind) || !matches(s.labels, item.spec.affinity)) continue;
          // Too big for its free slots, or held behind a big task (slot-hold.ts, bounded by HOLD_MS): by design.
          if (s.slots - s.inFlight < Math.max(1, item.spec.slots) || item.waitingFor) continue;
          const k = `${cell.path}|${item.id}|${s.id}`;
          stillIdle.add(k);
          const since = this.idleSince.get(k) ?? now;
          this.idleSince.set(k, since);
          if (now - since > BLOCKED_BOUND_MS)
            // Named by when it began, so one blocked task is one finding, not one per step.
            this.add('blocked', `${item.id} queued at ${cell.path} beside idle agent ${s.id} since ${since} ms`);
        }
      }
    }
    for (const k of this.idleSince.keys()) if (!stillIdle.has(k)) this.idleSince.delete(k);
    this.gangs(leaders);
    this.affinity.step(leaders, now);
  }

  /** Gangs whose members were all at agents at once (by home and gang id), and those homed above a node. */
  private readonly gangsWhole = new Set<string>();
  private readonly gangsWholeAbove = new Set<string>();
  private readonly gangReported = new Set<string>();
  get gangStarts(): number {
    return this.gangsWhole.size;
  }
  get gangStartsAbove(): number {
    return this.gangsWholeAbove.size;
  }

  /**
   * gang: no member at an agent while another member that never started waits in its home's
   * queue, or while its current attempt waits in a queue on its way down to a node; a gang's
   * members at agents are all at one node. `leaders`: the leading replica of each cell.
   */
  private gangs(leaders: ReadonlyMap<string, Cell>): void {
    const at = new Map<string, { nodes: Set<string>; n: number }>();
    const current = (item: WorkItem): TaskRecord | undefined => {
      const rec = leaders.get(item.homeCell)?.ledger.get(item.taskId);
      return rec && !isTerminal(rec.state) && rec.attempt === item.attempt ? rec : undefined;
    };
    for (const cell of leaders.values()) {
      if (!cell.agents) continue;
      for (const s of cell.agents.byId.values())
        for (const item of s.assigned.values()) {
          const g = item.spec.gangId;
          if (!g || !current(item)) continue;
          const key = `${item.homeCell}|${g}`;
          let a = at.get(key);
          if (!a) at.set(key, (a = { nodes: new Set(), n: 0 }));
          a.nodes.add(cell.path);
          a.n++;
          if (a.nodes.size > 1 && !this.gangReported.has(key)) {
            this.gangReported.add(key);
            this.add(
              'gang',
              `gang ${g} of ${item.homeCell} is split: members at agents of ${[...a.nodes].join(' and ')}`,
            );
          }
          if (a.n !== item.spec.gangSize) continue;
          this.gangsWhole.add(key);
          if (item.homeCell !== cell.path) this.gangsWholeAbove.add(key);
        }
    }
    if (at.size === 0) return;
    for (const cell of leaders.values())
      for (const item of cell.queue.values()) {
        const g = item.spec.gangId;
        const a = g ? at.get(`${item.homeCell}|${g}`) : undefined;
        if (!a || this.gangReported.has(item.taskId)) continue;
        const rec = cell.ledger.get(item.taskId);
        const waits =
          item.origin.type === 'home'
            ? rec !== undefined && rec.state === TaskState.TASK_STATE_QUEUED && rec.attempt === rec.attemptBase
            : item.attempt > 0 && current(item) !== undefined;
        if (!waits) continue;
        this.gangReported.add(item.taskId);
        this.add(
          'gang',
          `${item.taskId} of gang ${g} waits in ${cell.path}'s queue while ${a.n} members are at agents`,
        );
      }
  }

  /**
   * credits: a home sends attempts guaranteed (past the credits, guaranteed.ts) only while their
   * subject — a tenant, or a concurrency key with a share — holds fewer slots than its minimum:
   * never more of a subject's out than its minimum.
   */
  private guaranteedOut(cell: Cell): void {
    const flow = cell.ledger.flow;
    let out: Map<string, number> | undefined;
    for (const item of cell.routes.values())
      if (item.guaranteed && item.origin.type === 'home') {
        const lane = flow.laneOf(item.spec);
        (out ??= new Map()).set(lane, (out.get(lane) ?? 0) + 1);
      }
    for (const [lane, n] of out ?? []) {
      const key = lane.startsWith(keyLane('')) ? lane.slice(keyLane('').length) : undefined;
      const min = key === undefined ? flow.shares.share(lane).min : flow.keyShares.share(key).min;
      const what = key === undefined ? `tenant ${lane}` : `key ${key}`;
      if (n > min) this.add('credits', `${cell.path} has ${n} guaranteed attempts of ${what} out, minimum ${min}`);
    }
  }

  /** Every attempt sent on from the cell went where the cell's trail says it chose. */
  private trail(cell: Cell): void {
    const trail = cell.dispatcher.trail;
    for (const item of cell.routes.values()) {
      const via = item.via;
      if (via === undefined || item.attempt === 0) continue;
      const d = trail.latest(item.taskId);
      if (d === undefined || d.attempt !== item.attempt) continue; // out of the ring, or a later attempt's
      const went = via.type === 'agent' ? via.agentId : via.type === 'child' ? via.cell : cell.spec.parent;
      if (d.action !== via.type || d.chosen !== went)
        this.add(
          'trail',
          `${item.key} went to ${via.type} ${went} from ${cell.path}; its trail says ${d.action} ${d.chosen}`,
        );
    }
  }

  private link(path: string, link: ChildLink): void {
    const s = link.summary;
    if (s)
      for (const k of s.kinds)
        if (k.freeSlots > k.totalSlots)
          this.add('capacity', `${link.cell} told ${path} free ${k.freeSlots} > total ${k.totalSlots} of ${k.kind}`);
    const raw = link as unknown as {
      unacked: Map<string, number>;
      ackedSinceSummary: Map<string, number>;
    };
    for (const [kind, n] of raw.unacked)
      if (n < 0) this.add('credits', `${path} -> ${link.cell}: ${n} unacked dispatches of ${kind}`);
    for (const [kind, n] of raw.ackedSinceSummary)
      if (n < 0) this.add('credits', `${path} -> ${link.cell}: ${n} acked since summary of ${kind}`);
    // Past the credits only what the cell may send so: guaranteed attempts (a tenant's minimum,
    // bounded at their home: guaranteedBound) and preemption's critical tasks (its overdraft).
    for (const [kind, n] of link.pastCredit) {
      const allowed = (link.pastGuaranteed.get(kind) ?? 0) + (link.overdraft.get(kind) ?? 0);
      if (n > allowed)
        this.add(
          'credits',
          `${path} -> ${link.cell}: ${n} dispatches of ${kind} past the credits since the summary, ${allowed} guaranteed or preempting`,
        );
    }
    // The link's counters clamp at zero (a count that would go negative is
    // deleted), so a double decrement never shows as a negative number: it
    // shows as fewer unacked than dispatches awaiting an ack (`sent`), which
    // over-grants credit. unacked_K must equal the slots of the sends of kind K awaiting an ack.
    const awaiting = link.awaitingAck();
    for (const kind of new Set([...awaiting.keys(), ...raw.unacked.keys()])) {
      const n = raw.unacked.get(kind) ?? 0;
      const want = awaiting.get(kind) ?? 0;
      if (n !== want)
        this.add('credits', `${path} -> ${link.cell}: ${n} unacked slots of ${kind}, ${want} awaiting an ack`);
    }
  }

  /**
   * After the run drained: every accepted task ended, once. A NONE task whose
   * accepting leader is no longer its cell's leader (it crashed or handed
   * over) may be gone: NONE skips the log by contract. Returns how many were.
   */
  final(
    accepted: Iterable<{ id: string; home: string; logged: boolean; ledger: Ledger }>,
    stateOf: (home: string, id: string) => TaskRecord | undefined,
    homeLedger: (home: string) => Ledger | undefined,
  ): number {
    let noneLost = 0;
    for (const t of accepted) {
      if (!t.logged && homeLedger(t.home) !== t.ledger) {
        if (!isTerminal(t.ledger.get(t.id)?.state ?? TaskState.TASK_STATE_QUEUED)) noneLost++;
        continue;
      }
      const rec = stateOf(t.home, t.id);
      if (!rec) this.add('ended', `${t.id} (home ${t.home}) is not in its home ledger`);
      else if (!isTerminal(rec.state))
        this.add(
          'ended',
          `${t.id} (home ${t.home}) still ${TaskState[rec.state]} (attempt ${rec.attempt}: ${rec.reason})`,
        );
    }
    return noneLost;
  }
}

function matches(labels: readonly Label[], affinity: readonly Label[]): boolean {
  for (const a of affinity) if (!labels.some((l) => l.key === a.key && l.value === a.value)) return false;
  return true;
}
