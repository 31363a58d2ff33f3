// The placement decisions a cell made lately, for AdminService.ExplainTask:
// for each task routed (to a child or an agent) or spilled up, what the
// policy saw (Picker.explain: candidates, scores, why the chosen one won).
//
// Bounded: a ring of the last TRAIL_DECISIONS decisions, each listing at most
// TRAIL_CANDIDATES candidates; a task keeps only its latest decision here (its
// last attempt's), and one that fell out of the ring is simply not explained.
// Scoring costs one scan of the kind's candidates (tens of µs at a node of a
// hundred agents), so a cell scores at most EXPLAIN_PER_SECOND decisions a
// second (a token bucket); past it a decision still names where the task went,
// unscored. No task waits for it: the dispatcher records after the pick.
import type { Explanation } from '../policies/index.js';
import type { WorkItem } from './types.js';

/** Decisions a cell keeps (the ring). */
export const TRAIL_DECISIONS = 1024;
/** Candidates listed per decision: the chosen one and the best others. */
export const TRAIL_CANDIDATES = 8;
/** Decisions a cell scores per second (a burst of as many). */
export const EXPLAIN_PER_SECOND = 2000;

export interface Decision {
  readonly taskId: string;
  /** The attempt placed (a home task's is known once it is sent: `sent`). */
  attempt: number;
  readonly kind: string;
  readonly atMs: number;
  /** The policy in force. */
  readonly policy: string;
  /** child: sent to the child cell `chosen`; agent: assigned to agent `chosen`; parent: spilled up. */
  readonly action: 'child' | 'agent' | 'parent';
  readonly chosen: string;
  /** Absent for a spill-up (no policy choice), and past the scoring budget. */
  readonly explanation: Explanation | undefined;
  /** For a spill-up: why nothing here could take it. */
  readonly note: string;
}

export class Trail {
  private readonly ring: (Decision | undefined)[];
  private next = 0;
  /** Task id → its latest decision's slot in the ring. */
  private readonly byTask = new Map<string, number>();

  constructor(readonly capacity = TRAIL_DECISIONS) {
    this.ring = new Array<Decision | undefined>(capacity).fill(undefined);
  }

  private tokens = EXPLAIN_PER_SECOND;
  private refilledMs = Number.NEGATIVE_INFINITY;

  get enabled(): boolean {
    return this.capacity > 0;
  }

  /** May a decision made at `now` be scored (the budget of EXPLAIN_PER_SECOND)? Takes a token if so. */
  mayScore(now: number): boolean {
    if (now > this.refilledMs) {
      const add =
        this.refilledMs === Number.NEGATIVE_INFINITY
          ? EXPLAIN_PER_SECOND
          : ((now - this.refilledMs) * EXPLAIN_PER_SECOND) / 1000;
      this.tokens = Math.min(EXPLAIN_PER_SECOND, this.tokens + add);
      this.refilledMs = now;
    }
    if (this.tokens < 1) return false;
    this.tokens--;
    return true;
  }

  record(d: Decision): void {
    if (this.capacity === 0) return;
    const slot = this.next;
    this.next = (slot + 1) % this.capacity;
    const old = this.ring[slot];
    if (old !== undefined && this.byTask.get(old.taskId) === slot) this.byTask.delete(old.taskId);
    this.ring[slot] = d;
    this.byTask.set(d.taskId, slot);
  }

  /** Record a decision about `item` made at `atMs` (record's fields, from the item). */
  decided(
    item: Pick<WorkItem, 'taskId' | 'attempt' | 'kind'>,
    atMs: number,
    policy: string,
    action: Decision['action'],
    chosen: string,
    explanation: Explanation | undefined,
    note: string,
  ): void {
    const { taskId, attempt, kind } = item;
    this.record({ taskId, attempt, kind, atMs, policy, action, chosen, explanation, note });
  }

  /** A home attempt got its number after the pick (Home.startAttempts): fill it in. */
  sent(item: WorkItem): void {
    if (item.origin.type !== 'home') return;
    const slot = this.byTask.get(item.taskId);
    const d = slot === undefined ? undefined : this.ring[slot];
    if (d !== undefined && d.attempt === 0) d.attempt = item.attempt;
  }

  /** The latest decision about the task here, if still in the ring. */
  latest(taskId: string): Decision | undefined {
    const slot = this.byTask.get(taskId);
    return slot === undefined ? undefined : this.ring[slot];
  }

  get size(): number {
    return this.byTask.size;
  }
}
