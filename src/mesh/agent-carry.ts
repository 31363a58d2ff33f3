// Attempts carried over an agent's reconnect. An agent whose stream broke
// keeps running what it held, and after reconnecting re-announces it
// (`started` refs, `in_flight` in its first load). Its old attempts were
// already failed back as lost (the home re-dispatches them), but they still
// occupy the agent's slots, so the new session `carries` them: reserved slots,
// taken at the hello from what the dead session held (so nothing is assigned
// in the moment before the agent speaks), added for `started` refs of attempts
// we did not assign, trimmed when a load reports fewer running than we carry,
// and released when their results arrive (forwarded like any result; the home
// fences them as stale) or when their lease would have ended (a bound, if the
// result never comes).
//
// Invariant: `orphans` holds, per agent id with no live session, at most its
// slots of attempts, each only until its lease would have ended.
import type { TaskRef } from '../gen/meshlb/v1/task.js';
import type { AgentCapacity } from './agent-capacity.js';
import { carriedFrom, type AgentSession, type Carried } from './agent-session.js';
import type { CellPort } from './port.js';
import { refSlots } from './slot-map.js';
import { routeKey } from './types.js';

export class CarryOver {
  /**
   * Per agent id: the attempts its last session held when it died, until their
   * lease ends; a new session of that id carries them from its hello.
   */
  private readonly orphans = new Map<string, Map<string, Carried>>();
  /** Sessions that may carry attempts (the sweep looks at these, not at every agent). */
  private readonly holding = new Set<AgentSession>();
  /** Carried attempts released by their result, and by a load that reports fewer running. */
  readonly stats = { carriedResults: 0, carriedTrimmed: 0 };

  constructor(
    private readonly cell: CellPort,
    private readonly capacity: AgentCapacity,
  ) {}

  /** A dead session's attempts may still run at the agent: remember them for its next session. */
  remember(s: AgentSession): void {
    if (s.assigned.size + s.carried.size === 0) return;
    const held = new Map<string, Carried>();
    for (const [key, item] of s.assigned) held.set(key, carriedFrom(item, false));
    for (const [key, c] of s.carried) held.set(key, { ...c, confirmed: false });
    this.orphans.set(s.id, held);
  }

  /** At the hello, before the session counts in capacity: reserve what its previous session held. */
  adopt(s: AgentSession, now: number): void {
    const orphans = this.orphans.get(s.id);
    if (orphans === undefined) return;
    this.orphans.delete(s.id);
    for (const [key, c] of orphans) {
      if (c.untilMs <= now || s.carried.used + c.slots > s.slots) continue;
      s.carried.set(key, { ...c, confirmed: false });
      this.holding.add(s);
    }
  }

  /**
   * At the hello, after adopt(), before the session counts in capacity: what
   * the agent says it still runs from an earlier stream holds slots too (our
   * orphans may have forgotten it: its lease ended while the agent ran on).
   */
  declared(s: AgentSession, refs: readonly TaskRef[], now: number): void {
    const settings = this.cell.settings;
    const until = now + settings.taskTimeoutMs + settings.leaseSlackMs;
    for (const ref of refs) {
      const key = routeKey(ref.taskId, ref.attempt);
      const c = s.carried.get(key);
      // Adopted from the orphans with what was left of its lease: the agent says it runs on, so it
      // holds the slot as long as a fresh one would (sim:mesh seed 49: released early, over slots).
      if (c !== undefined) s.carried.set(key, { ...c, untilMs: Math.max(c.untilMs, until), confirmed: true });
      else if (s.carried.used + refSlots(ref) <= s.slots)
        s.carried.set(key, { kind: undefined, slots: refSlots(ref), untilMs: until, confirmed: true });
    }
    if (s.carried.size > 0) this.holding.add(s);
  }

  /** `started` refs: attempts we did not assign in this session are carried (they hold slots). True if any was taken on. */
  started(s: AgentSession, refs: readonly TaskRef[]): boolean {
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
      const cost = refSlots(ref);
      if (s.inFlight + cost > s.slots) continue; // it cannot run more than its slots: nothing to reserve
      if (until === 0) {
        const settings = this.cell.settings;
        until = this.cell.scheduler.now() + settings.taskTimeoutMs + settings.leaseSlackMs;
      }
      s.carried.set(key, { kind: undefined, slots: cost, untilMs: until, confirmed: true });
      this.holding.add(s);
      this.capacity.slotsTaken(s, cost);
      taken = true;
    }
    return taken;
  }

  /** The result of a carried attempt arrived: its slot frees. */
  answered(s: AgentSession, key: string, c: Carried): void {
    this.release(s, key, c);
    this.stats.carriedResults++;
  }

  /**
   * A preempted attempt its agent did not answer within the grace: the home stops waiting for it, but it
   * may still run (or not have been read yet), so it holds its slot until its result or its lease ends.
   */
  keep(s: AgentSession, key: string, c: Carried): void {
    s.carried.set(key, { ...c, ownSession: true });
    this.holding.add(s);
  }

  /**
   * A load says the agent runs fewer attempts than we carry: release the excess, unconfirmed ones first.
   * Attempts of this session (keep) are neither released nor counted: the load may predate their
   * assignment, so it says nothing of them — nor of the others while it may count them.
   */
  trim(s: AgentSession, running: number): void {
    let excess = -running;
    for (const c of s.carried.values()) if (c.ownSession !== true) excess++;
    for (const pass of [false, true]) {
      for (const [key, c] of s.carried) {
        if (excess <= 0) break;
        if (c.confirmed !== pass || c.ownSession === true) continue;
        this.release(s, key, c);
        this.stats.carriedTrimmed++;
        excess--;
      }
    }
    this.cell.capacityChanged();
  }

  /** From the sweep: carried attempts past their lease, and orphans past theirs. */
  expire(now: number): void {
    for (const s of this.holding) {
      if (s.dead || s.carried.size === 0) {
        this.holding.delete(s);
        continue;
      }
      for (const [key, c] of s.carried) {
        if (c.untilMs > now) continue;
        this.release(s, key, c);
      }
    }
    for (const [id, held] of this.orphans) {
      for (const [key, c] of held) if (c.untilMs <= now) held.delete(key);
      if (held.size === 0) this.orphans.delete(id);
    }
  }

  private release(s: AgentSession, key: string, c: Carried): void {
    s.carried.delete(key);
    this.capacity.slotsTaken(s, -c.slots);
    if (!s.usable) return;
    if (c.kind !== undefined) this.cell.slotFreed(s.id, c.kind, c.slots);
    else this.cell.candidatesChanged();
    this.cell.capacityChanged();
  }
}
