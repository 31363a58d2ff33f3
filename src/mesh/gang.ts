// Gangs at their node cell (docs/gang.md): tasks placed all-or-nothing, never
// left half-held. Who belongs to which gang, and what a submit checks, is in
// gang-index.ts; this module is the dispatcher's placement pass and the rule
// that a gang runs once.
//
// Placement (Gangs.place, from the dispatcher's pump): a member popped from the
// queue is set aside, not picked, until every member of its gang waits in this
// cell's queue, none of them started before. Then one pass picks an agent for
// each member from the pump's picker: if every member got one, they all leave
// in that pump (one `dispatched` command starts them together); if not, every
// credit the pass took goes back (Picker.release) and all stay queued, saying
// `for its gang (k of n members placeable)`. One pass per gang per pump.
//
// Runs once (Gangs.check, on every ledger change of a member and from the
// tick): members have max_attempts 1 (home-submit.ts), and once any member
// ended other than COMPLETED, or went back to the queue after it started
// (a failure the mesh made that spends no attempt: a give-back, a preemption,
// a hand-back, a refused dispatch), the leader cancels every live member, so
// the gang ends as a whole and the client submits it again.
import { TaskState } from '../gen/meshlb/v1/task.js';
import type { Candidate, Picker } from '../policies/index.js';
import type { Popped, TaskQueue } from '../queue/index.js';
import { gangsOf, type GangIndex } from './gang-index.js';
import { GangRoute, TransitGangs, gangKey, gangNoChild, type GangPick } from './gang-route.js';
import type { Home } from './home.js';
import { isTerminal, type Ledger, type TaskRecord } from './ledger.js';
import type { Scheduler } from './scheduler.js';
import { slotsOf } from './slot-map.js';
import { nextAttemptId, type WorkItem } from './types.js';

/** How often (ms) the tick looks over every gang (a new leader catches what the old one left). */
const CHECK_EVERY_MS = 500;

/** Why a member waits: not every member is queued here yet, or not every one has a place now. */
export const gangQueued = (k: number, n: number): string => `for its gang (${k} of ${n} members queued here)`;
export const gangPlaceable = (k: number, n: number): string => `for its gang (${k} of ${n} members placeable)`;

/** What gangs use of their home (Home, through gangHost). */
export interface GangHost {
  readonly ledger: Ledger;
  leading(): boolean;
  cancel(id: string, why: string): Promise<unknown>;
  warn(fields: object, msg: string): void;
}

export const gangHost = (home: Home): GangHost => ({
  ledger: home.ledger,
  leading: () => home.d.leading(),
  cancel: (id, why) => home.cancel(id, why),
  warn: (fields, msg) => home.log.warn(fields, msg),
});

export class Gangs {
  readonly index: GangIndex;
  /** The placement pass (gang-route.ts). */
  readonly route = new GangRoute();
  /** Members of gangs a parent sent here (gang-route.ts). */
  private readonly transit = new TransitGangs();
  /** Gangs the pass tried in the current pump (by pump number), and why they wait: one pass per gang per pump. */
  private readonly tried = new Map<string, { readonly pump: number; why: string }>();
  private pumpNo = 0;
  /** Members whose cancel is proposed (once each). */
  private readonly cancelling = new Set<string>();
  private checkedMs = -Infinity;
  private readonly dirty = new Set<string>();
  private checkScheduled = false;

  constructor(
    private readonly home: GangHost,
    private readonly queue: TaskQueue<WorkItem>,
    private readonly scheduler: Scheduler,
  ) {
    this.index = gangsOf(home.ledger);
    home.ledger.onChange((rec) => {
      if (!rec.spec.gangId) return;
      if (isTerminal(rec.state)) this.cancelling.delete(rec.id);
      if (!this.home.leading()) return;
      // Not inside the ledger's apply: a cancel proposes a command of its own.
      this.dirty.add(rec.spec.gangId);
      if (this.checkScheduled) return;
      this.checkScheduled = true;
      this.scheduler.defer(() => {
        this.checkScheduled = false;
        for (const id of this.dirty) this.check(id);
        this.dirty.clear();
      });
    });
  }

  /** A new pump begins: every gang may be tried once in it. */
  pumping(): void {
    this.pumpNo++;
    if (this.tried.size > 1024) this.tried.clear();
  }

  /**
   * The dispatcher popped gang member `popped`: the members to route now with the target each
   * got (all of them), or none (every member stays queued; `popped` is parked). Credits taken
   * by a pass that does not route are back in the picker when this returns. `targets`: the
   * children, above a node (every member goes to one of them: gang-route.ts); undefined at a node.
   */
  place(
    popped: Popped<WorkItem>,
    picker: Picker,
    pick: GangPick,
    parked: Popped<WorkItem>[],
    targets?: () => readonly Candidate[],
  ): [WorkItem, string][] {
    const item = popped.task;
    const key = gangKey(item);
    const n = item.spec.gangSize;
    const tried = this.tried.get(key);
    if (tried?.pump === this.pumpNo) {
      item.waitingFor = tried.why; // the slot hold cleared it when it popped this member
      parked.push(popped);
      return [];
    }
    // A gang homed here is known to the ledger; one a parent sent makes itself known as it is popped.
    const [members, aside] =
      item.origin.type === 'home' ? [this.queuedMembers(item), 0] : this.transit.members(item, this.queue, parked);
    if (members.length !== n) {
      // More than n: a gang under a reused id whose last gang's cancel has not reached here yet.
      const why = gangQueued(Math.min(members.length + aside, n), n);
      item.waitingFor = why;
      this.tried.set(key, { pump: this.pumpNo, why });
      parked.push(popped);
      return [];
    }
    const placed = this.route.pass(members, picker, pick, targets, this.scheduler.now());
    if (!placed) {
      const why = targets ? gangNoChild(n) : gangPlaceable(this.placeable(members, pick, picker), n);
      for (const m of members) m.waitingFor = why;
      this.tried.set(key, { pump: this.pumpNo, why });
      parked.push(popped);
      return [];
    }
    for (const m of members) {
      m.waitingFor = '';
      if (m !== item) this.queue.remove(m.id);
    }
    if (item.origin.type !== 'home') this.transit.forget(item);
    return placed;
  }

  /** How many members have an agent now, one by one (for GetTask's reason); every credit goes back. */
  private placeable(members: readonly WorkItem[], pick: GangPick, picker: Picker): number {
    let k = 0;
    const took: [WorkItem, string][] = [];
    for (const m of members) {
      const r = pick(m);
      if (r.type !== 'route') continue;
      k++;
      took.push([m, r.candidate]);
    }
    for (const [m, c] of took) picker.release(c, m.kind, slotsOf(m.spec));
    return k;
  }

  /** The queued members of `item`'s gang that never started (`item` first), if `item` never started. */
  private queuedMembers(item: WorkItem): WorkItem[] {
    if (!unstarted(this.home.ledger.live(item.taskId))) return [];
    const out = [item];
    for (const id of this.index.members(item.spec.gangId)) {
      if (id === item.taskId) continue;
      const m = this.queue.get(nextAttemptId(id));
      if (m && unstarted(this.home.ledger.live(id))) out.push(m);
    }
    return out;
  }

  /** From the cell's tick: every CHECK_EVERY_MS, look over every gang (leader only). */
  sweep(now: number): void {
    if (now - this.checkedMs < CHECK_EVERY_MS || !this.home.leading()) return;
    this.checkedMs = now;
    for (const id of [...this.index.ids()]) this.check(id);
  }

  /** Cancel every live member of gang `id` once one ended other than COMPLETED or went back after it started. */
  check(id: string): void {
    if (!this.home.leading()) return;
    let cause: TaskRecord | undefined;
    let live = 0;
    for (const m of this.index.members(id)) {
      const rec = this.home.ledger.get(m);
      if (!rec) continue;
      if (!isTerminal(rec.state)) live++;
      if (broken(rec)) cause ??= rec;
    }
    if (live === 0) {
      this.index.forget(id);
      return;
    }
    if (!cause) return;
    const why = `gang ${id}: member ${cause.id} ${isTerminal(cause.state) ? stateName(cause.state) : 'went back to the queue after it started'}`;
    for (const m of this.index.members(id)) {
      if (!this.home.ledger.live(m) || this.cancelling.has(m)) continue;
      this.cancelling.add(m);
      this.home.cancel(m, why).catch((err: unknown) => {
        this.cancelling.delete(m); // the next check proposes it again
        this.home.warn({ err: String(err), id: m }, 'gang cancel failed');
      });
    }
  }
}

/** Queued and not started in its current series (an operator's replay starts a new one). */
function unstarted(rec: TaskRecord | undefined): boolean {
  return rec !== undefined && rec.state === TaskState.TASK_STATE_QUEUED && rec.attempt === rec.attemptBase;
}

/** This member ends its gang: it ended other than COMPLETED, or waits again after it started. */
function broken(rec: TaskRecord): boolean {
  if (isTerminal(rec.state)) return rec.state !== TaskState.TASK_STATE_COMPLETED;
  return rec.state === TaskState.TASK_STATE_QUEUED && rec.attempt > rec.attemptBase;
}

function stateName(s: TaskState): string {
  return (TaskState[s] ?? String(s)).replace('TASK_STATE_', '').toLowerCase().replace('_', '-');
}
