// Starting a new LOGGED task's first attempt in the same Raft entry as its
// acceptance. A logged task used to wait for three commits in series before
// its result counted: `accepted` (before the client's answer), `dispatched`
// (the attempt leaves only once it is committed) and `completed`. When the
// task can be placed the moment it is accepted (its kind has nothing queued
// here and the picker routes it now), its `dispatched` command rides in the
// `accepted` proposal: one commit instead of two before it leaves, with the
// same guarantee, because the entry applies both or neither and the attempt
// is sent only after it committed (Home.started, as for any start). Measured
// in docs/performance.md ("Durable (LOGGED) tasks") and docs/policies.md.
//
// Which tasks (at a cell whose log commits through Raft): logged, of one
// slot, with no debounce or singleton key (the ledger may fold those into
// another live task, or cancel one), no gang (placed all-or-nothing, gang.ts) and not gated by a flow key or a tenant share (the
// flow gate admits those from the queue). Everything else, and a task the
// picker would not route now (held back for a faster agent, no credit),
// is queued once accepted, as before.
//
// An idempotency key is no bar (the client SDK gives every task one): a key
// already in the ledger is answered before anything is proposed, and a second
// spec with the key in one batch folds into the first at apply, so its
// `dispatched` names a task that does not exist and starts nothing.
//
// The price, at a failover only: a leader that stops leading while such an
// entry commits does not send the attempt, and its successor, finding attempt
// 1 out with no child or agent holding it, fails it as lost and counts it (it
// may have run, as any attempt out at a failover: HomeRecovery.reconcile). A
// task accepted alone would have been queued again uncounted; a task of
// max_attempts 1 can end FAILED there instead of running. Never more runs.
//
// Invariants: a task's first attempt leaves the cell only once the entry
// holding its `accepted` and `dispatched` committed; a task the ledger did not
// start there (its result not ok) is QUEUED at attempt 0 and queued by the
// submit like any other (home-submit.ts); a proposal that failed leaves its
// outcome unknown, so the home repairs from the ledger (a late commit of the
// start gets a lease: HomeRecovery.repair).
import { isGated } from '../flow/gate.js';
import type { FlowState } from '../flow/flow-state.js';
import type { TaskSpec } from '../gen/meshlb/v1/task.js';
import { isLogged, type AcceptedTask, type ApplyResult, type Ledger, type LedgerCommand } from './ledger.js';
import type { Scheduler } from './scheduler.js';
import { leaseFor, type CellSettings } from './settings.js';
import { slotsOf } from './slot-map.js';
import { FROM_HOME, makeItem, nextAttemptId, type WorkItem } from './types.js';

/** Where new home attempts go once the ledger decided their start (Home.startAttempts and here). */
export interface StartOut {
  /** Send one the ledger started. */
  send(item: WorkItem): void;
  /** Its start is decided, sent or not (a child link drops the credit it promised it: ChildLink.promise). */
  decided(item: WorkItem): void;
}

/** Their starts are decided (sent or not): the flow gate's reservations and the promised child credits go. */
export function startsDecided(
  items: readonly WorkItem[],
  flow: { settled(item: WorkItem): void },
  out: StartOut,
): void {
  for (const it of items) {
    flow.settled(it);
    out.decided(it);
  }
}

/** Whether a work item's task is logged (replicated). */
export const itemLogged = (it: WorkItem): boolean => isLogged(it.spec);

/** The `dispatched` command starting the next attempt of each of `items` (home tasks in the ledger). */
export function dispatchedOf(ledger: Ledger, items: readonly WorkItem[], atMs: number): LedgerCommand {
  const refs = new Array<{ id: string; attempt: number }>(items.length);
  for (let i = 0; i < items.length; i++) {
    const id = items[i]!.taskId;
    refs[i] = { id, attempt: (ledger.live(id)?.attempt ?? 0) + 1 };
  }
  return { type: 'dispatched', refs, atMs };
}

/** The dispatcher's side: route new home items now (or not), and where started ones go. */
export interface AcceptPlacer extends StartOut {
  /** Those of `items` the picker routed now (each with its `via`); the rest are not placed. */
  place(items: readonly WorkItem[]): WorkItem[];
}

/** What it uses of Home (home.ts). */
export interface AcceptStartHost {
  readonly scheduler: Scheduler;
  readonly settings: CellSettings;
  readonly d: {
    readonly ledger: { readonly flow: FlowState };
    readonly ledgerLog: { readonly immediate?: boolean };
    leading(): boolean;
  };
  readonly flow: { settled(item: WorkItem): void };
  readonly recovery: { proposalFailed(err: unknown, what: string): void };
  started(items: WorkItem[], results: ApplyResult[], send: (item: WorkItem) => void): void;
}

/** One chunk's plan: the commands to add to its `accepted` proposal, and the items they start. */
export interface AcceptPlan {
  readonly cmds: LedgerCommand[];
  readonly placed: WorkItem[];
}

const NOTHING: AcceptPlan = { cmds: [], placed: [] };

/** Whether a task may start in its `accepted` entry (see the header). */
export function mayStartAtAccept(spec: TaskSpec, flow: FlowState): boolean {
  return (
    isLogged(spec) &&
    spec.debounceKey === '' &&
    spec.singletonKey === '' &&
    spec.gangId === '' &&
    slotsOf(spec) <= 1 &&
    !isGated(spec, flow)
  );
}

export class StartAtAccept {
  /** Set by the dispatcher; none (a cell without one, tests): nothing starts at accept. */
  placer: AcceptPlacer | undefined;
  /** Tasks started in their `accepted` entry (for tests and the bench). */
  started = 0;

  constructor(private readonly h: AcceptStartHost) {}

  /** For a chunk of logged tasks about to be proposed: place those that may go now. */
  plan(tasks: readonly AcceptedTask[]): AcceptPlan {
    const placer = this.placer;
    // A log that applies at once (a cell with no Raft group) has no commit to save.
    if (!placer || this.h.d.ledgerLog.immediate === true || !this.h.d.leading()) return NOTHING;
    const flow = this.h.d.ledger.flow;
    const now = this.h.scheduler.now();
    const items: WorkItem[] = [];
    for (const t of tasks) {
      if (!mayStartAtAccept(t.spec, flow)) continue;
      const item = makeItem(
        t.id,
        0,
        t.homeCell,
        t.spec,
        FROM_HOME,
        undefined,
        nextAttemptId(t.id),
        leaseFor(t.spec, this.h.settings),
        undefined,
        now,
      );
      item.arrivedMs = t.atMs;
      items.push(item);
    }
    const placed = items.length > 0 ? placer.place(items) : [];
    if (placed.length === 0) return NOTHING;
    // Attempt 1: the entry's `accepted` creates each task at attempt 0 just before.
    const refs = placed.map((it) => ({ id: it.taskId, attempt: 1 }));
    return { cmds: [{ type: 'dispatched', refs, atMs: now }], placed };
  }

  /** The entry committed: `results` are its `dispatched` command's (undefined when nothing was placed). */
  committed(plan: AcceptPlan, results: ApplyResult[] | undefined): void {
    if (plan.placed.length === 0 || !results || !this.placer) return;
    this.decided(plan.placed);
    this.started += results.filter((r) => r.ok).length;
    this.h.started(plan.placed, results, this.placer.send);
  }

  /** The proposal failed: its outcome is unknown (a late commit may start the tasks with nobody sending them). */
  failed(plan: AcceptPlan, err: unknown): void {
    if (plan.placed.length === 0) return;
    this.decided(plan.placed);
    this.h.recovery.proposalFailed(err, 'accept and dispatch');
  }

  private decided(items: readonly WorkItem[]): void {
    if (this.placer) startsDecided(items, this.h.flow, this.placer);
  }
}
