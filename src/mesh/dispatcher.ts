// Routing of queued work: one pump per turn of the event loop when anything
// changed (new work, a summary, an ack, a freed agent slot). Per kind it asks
// the tier's policy picker for a target while credits last:
//   route   → send to that child (dispatch) or agent (assignment);
//   queue   → every target of the kind is full: leave it queued;
//   spillUp → nothing below can take it: hand it to the parent;
//   reject  → the task itself is unacceptable: end it.
// A home item gets its attempt number from the ledger (one `dispatched`
// command per pump) before it leaves the cell; items from elsewhere keep theirs.
//
// The picker is rebuilt only when the candidates changed (dirty), at most once
// per pump, and at least every PICKER_REFRESH_MS so scores follow the load and
// latency figures; picks consume its credit overlay, and each send also counts
// in the link's or agent's own accounting, so a rebuilt picker starts from the
// truth. A slot freed by a result is handed back to the live picker
// (release), not answered with a rebuild: at the node a rebuild is O(agents).
import { ResultStatus } from '../gen/meshlb/v1/task.js';
import { createPolicy, type Picker, type Policy, type TaskInfo } from '../policies/index.js';
import type { Cell } from './cell.js';
import { isLogged, type ApplyResult, type LedgerCommand } from './ledger.js';
import { REQUEUE_PREFIX, routeKey, type Via, type WorkItem } from './types.js';

/** Rebuild the picker at least this often (fresh scores), even with no change. */
export const PICKER_REFRESH_MS = 250;

export class Dispatcher {
  private scheduled = false;
  private dirty = true;
  private picker: Picker | undefined;
  private builtMs = 0;
  /** Picker rebuilds (for tests and the bench). */
  rebuilds = 0;
  readonly policy: Policy;
  pumps = 0;

  constructor(private readonly cell: Cell) {
    this.policy = createPolicy(cell.spec.policy, cell.spec.policyConfig, { random: cell.random });
  }

  /** Candidates changed: rebuild the picker on the next pump. */
  invalidate(): void {
    this.dirty = true;
    this.schedule();
  }

  /** One slot of `kind` at `candidate` came free: give the credit back to the live picker. */
  release(candidate: string, kind: string): void {
    if (!this.dirty && this.picker !== undefined) this.picker.release(candidate, kind);
    this.schedule();
  }

  schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.pump());
  }

  private getPicker(now: number): Picker {
    if (this.dirty || this.picker === undefined || now - this.builtMs >= PICKER_REFRESH_MS) {
      const c = this.cell;
      const cands = c.agents ? c.agents.candidates(now) : c.children ? c.children.candidates(now) : [];
      this.picker = this.policy.buildPicker(cands, now);
      this.dirty = false;
      this.builtMs = now;
      this.rebuilds++;
    }
    return this.picker;
  }

  pump(): void {
    this.scheduled = false;
    const cell = this.cell;
    if (cell.queue.size === 0) return;
    this.pumps++;
    const now = cell.now();
    const picker = this.getPicker(now);
    const homeNew: WorkItem[] = [];
    for (const kind of [...cell.queue.kinds()]) {
      let budget = cell.queue.sizeOfKind(kind);
      if (budget === 0) continue;
      if (!picker.hasKind(kind)) {
        this.unservable(kind, now, homeNew);
        continue;
      }
      while (budget-- > 0 && picker.credits(kind) > 0) {
        const popped = cell.queue.popKind(kind, now);
        if (!popped) break;
        const item = popped.task;
        this.taken(item);
        const r = picker.pick(this.info(item));
        if (r.type === 'route') {
          this.route(item, this.viaFor(r.candidate), homeNew, now);
        } else if (r.type === 'spillUp') {
          if (!this.spill(item, homeNew, now)) this.putBack(item, popped.enqueuedAt);
        } else if (r.type === 'queue') {
          this.putBack(item, popped.enqueuedAt);
          break;
        } else {
          this.reject(item, r.reason);
        }
      }
      // Left queued for want of credit (counted once per pump and kind): at low rates this should stay 0.
      if (cell.queue.sizeOfKind(kind) > 0 && picker.credits(kind) <= 0) cell.stats.creditStalls++;
    }
    this.commitHome(homeNew);
  }

  /** One TaskInfo reused for every pick (pickers read it during pick() only). */
  private readonly task: { -readonly [K in keyof TaskInfo]: TaskInfo[K] } = {
    kind: '',
    priority: 'normal',
    tenant: '',
    attempt: 0,
    affinity: undefined,
    exclude: undefined,
  };
  private readonly excludeOne: string[] = [''];

  private info(item: WorkItem): TaskInfo {
    const t = this.task;
    t.kind = item.kind;
    t.priority = item.priority;
    t.tenant = item.tenant;
    t.attempt = item.attempt;
    // Affinity names agent labels: only the node tier can check it.
    t.affinity = this.cell.agents && item.spec.affinity.length > 0 ? item.spec.affinity : undefined;
    if (item.exclude !== undefined) {
      this.excludeOne[0] = item.exclude;
      t.exclude = this.excludeOne;
    } else t.exclude = undefined;
    return t;
  }

  private viaFor(candidate: string): Via {
    return this.cell.agents ? { t: 'agent', agentId: candidate } : { t: 'child', cell: candidate };
  }

  private taken(item: WorkItem): void {
    if (item.origin.t !== 'home') this.cell.forwardQueued--;
  }

  private putBack(item: WorkItem, enqueuedAt: number): void {
    this.cell.queue.requeue(item, enqueuedAt);
    if (item.origin.t !== 'home') this.cell.forwardQueued++;
  }

  /** No target below has the kind: spill everything of it up, or wait at the root. */
  private unservable(kind: string, now: number, homeNew: WorkItem[]): void {
    const cell = this.cell;
    if (!cell.parent?.connected) return;
    for (;;) {
      const popped = cell.queue.popKind(kind, now);
      if (!popped) return;
      const item = popped.task;
      this.taken(item);
      if (item.origin.t === 'parent') {
        // The parent sent it against a capacity that is gone: refuse it, uncounted.
        cell.routes.delete(item.id);
        cell.parent.sendResult({
          taskId: item.taskId,
          attempt: item.attempt,
          status: ResultStatus.RESULT_STATUS_ERROR,
          output: Buffer.alloc(0),
          error: `${REQUEUE_PREFIX}no capacity for kind ${kind} under ${cell.path}`,
          agentId: '',
          nodeCell: cell.path,
          runMicros: 0,
        });
        continue;
      }
      if (!this.spill(item, homeNew, now)) {
        this.putBack(item, popped.enqueuedAt);
        return;
      }
    }
  }

  private spill(item: WorkItem, homeNew: WorkItem[], now: number): boolean {
    const cell = this.cell;
    if (!cell.parent?.connected || item.origin.t === 'parent') return false;
    cell.stats.spilled++;
    this.route(item, { t: 'parent' }, homeNew, now);
    return true;
  }

  private route(item: WorkItem, via: Via, homeNew: WorkItem[], now: number): void {
    item.via = via;
    item.sentMs = now;
    if (item.origin.t === 'home' && item.attempt === 0) {
      homeNew.push(item);
      return;
    }
    this.cell.routes.set(item.key, item);
    this.transmit(item);
    this.cell.routed(item);
  }

  private transmit(item: WorkItem): void {
    const via = item.via!;
    const cell = this.cell;
    cell.stats.dispatched++;
    if (via.t === 'child') cell.children!.dispatch(via.cell, item);
    else if (via.t === 'agent') cell.agents!.assign(via.agentId, item);
    else cell.parent!.spillUp(item);
  }

  private reject(item: WorkItem, reason: string): void {
    const cell = this.cell;
    if (item.origin.t === 'home') {
      cell.deadLetter(item.taskId, `rejected: ${reason}`);
      return;
    }
    cell.routes.delete(item.id);
    cell.deliverResult({
      taskId: item.taskId,
      attempt: item.attempt,
      status: ResultStatus.RESULT_STATUS_FATAL,
      output: Buffer.alloc(0),
      error: `rejected at ${cell.path}: ${reason}`,
      agentId: '',
      nodeCell: cell.path,
      runMicros: 0,
    });
  }

  /** Give new home attempts their numbers (one ledger command per durability), then send. */
  private commitHome(items: WorkItem[]): void {
    if (items.length === 0) return;
    const logged: WorkItem[] = [];
    const none: WorkItem[] = [];
    for (const it of items) (isLogged(it.spec) ? logged : none).push(it);
    const atMs = this.cell.now();
    const cmd = (list: WorkItem[]): LedgerCommand => ({
      type: 'dispatched',
      refs: list.map((it) => ({ id: it.taskId, attempt: (this.cell.ledger.get(it.taskId)?.attempt ?? 0) + 1 })),
      atMs,
    });
    if (none.length > 0) this.sendCommitted(none, this.cell.ledger.apply(cmd(none)));
    if (logged.length > 0) {
      this.cell.ledgerLog.propose([cmd(logged)]).then(
        (rs) => this.sendCommitted(logged, rs[0]!),
        (err: unknown) => this.cell.log.error({ err }, 'dispatch commit failed'),
      );
    }
  }

  private sendCommitted(items: WorkItem[], results: ApplyResult[]): void {
    const cell = this.cell;
    for (let i = 0; i < items.length; i++) {
      const item = items[i]!;
      const res = results[i]!;
      // Cancelled or ended meanwhile: nothing to send (its credit returns with the next summary).
      if (!res.ok) continue;
      item.attempt = res.attempt;
      item.key = routeKey(item.taskId, item.attempt);
      cell.routes.set(item.key, item);
      cell.leased(item);
      this.transmit(item);
    }
  }
}
