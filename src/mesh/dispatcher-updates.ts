// At a node whose policy keeps its picker up to date (Picker.update:
// node-score), an agent's new figures (a load, results) reach the picker one
// agent at a time before the next pick, and the dispatcher does not rebuild it
// on a timer: a rebuild is O(agents), 30 ms at 20,000. Only agents coming,
// going, draining or a breaker's change rebuild it.
//
// Invariant: an update never offers a slot twice. A home task's first attempt
// leaves only once its `dispatched` command commits (Home.startAttempts), so
// for a moment the picker has taken the slot and the agent's session has
// not; an update then would count it free again. An agent with such a start
// under way keeps its update waiting until the start is sent (or, should it
// never be sent — a start the ledger refused — STARTING_GRACE_MS later).
import type { Candidate, Picker } from '../policies/index.js';
import type { WorkItem } from './types.js';

/** A start not sent within this long is taken as never to be sent (the ledger refused it). */
export const STARTING_GRACE_MS = 1000;

export class AgentUpdates {
  /** Agents whose figures changed since the picker took them. */
  private readonly touched = new Set<string>();
  /** Home starts routed to an agent, not yet sent: how many, since when. */
  private readonly starting = new Map<string, { n: number; sinceMs: number }>();
  private readonly startingItems = new WeakSet<WorkItem>();

  changed(agentId: string): void {
    this.touched.add(agentId);
  }

  get pending(): boolean {
    return this.touched.size > 0;
  }

  /** A rebuilt picker read every agent afresh. */
  clear(): void {
    this.touched.clear();
  }

  /** A home start went to `agentId`: its slot is taken in the picker, not yet in the session. */
  routed(item: WorkItem, agentId: string, now: number): void {
    this.startingItems.add(item);
    const s = this.starting.get(agentId);
    if (s === undefined) this.starting.set(agentId, { n: 1, sinceMs: now });
    else s.n++;
  }

  /** An item is being sent: if it was a start counted above, the session holds its slot now. */
  sent(item: WorkItem, agentId: string): void {
    if (!this.startingItems.delete(item)) return;
    const s = this.starting.get(agentId);
    if (s !== undefined && --s.n <= 0) this.starting.delete(agentId);
  }

  /**
   * Hand `picker` the agents whose figures changed (`candidate`; undefined when
   * only a rebuild will do: gone, or capped by a breaker). False: one could
   * not be taken in place, rebuild.
   */
  apply(picker: Picker, candidate: (id: string, now: number) => Candidate | undefined, now: number): boolean {
    for (const id of this.touched) {
      const s = this.starting.get(id);
      if (s !== undefined) {
        if (now - s.sinceMs < STARTING_GRACE_MS) continue;
        this.starting.delete(id);
      }
      const c = candidate(id, now);
      if (c === undefined || !picker.update!(c)) return false;
      this.touched.delete(id);
    }
    return true;
  }
}
