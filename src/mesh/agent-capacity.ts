// Free, total and healthy slots per kind over a node's live agents, kept
// incrementally so summaries and credits cost O(kinds), not O(agents).
//
// Invariant: for every kind, `free` = Σ over live, non-draining agents of that
// kind of (slots − inFlight), `total` = Σ slots and `healthy` = the number of
// live agents of that kind (draining ones count in total and healthy, with no
// free slots). Every change of an agent's state goes through account() (around
// a change of dead/draining/load) or slotsTaken() (one slot at a time).
import type { AgentSession } from './agent-session.js';
import type { Capacity, SubtreeLoad } from './port.js';

export class AgentCapacity {
  readonly byKind = new Map<string, Capacity>();

  /** Add (sign 1) or remove (sign -1) an agent's contribution. */
  account(s: AgentSession, sign: 1 | -1): void {
    if (s.dead) return;
    const free = s.draining ? 0 : Math.max(0, s.slots - s.inFlight);
    for (const k of s.kinds) {
      let c = this.byKind.get(k);
      if (!c) this.byKind.set(k, (c = { free: 0, total: 0, healthy: 0 }));
      c.free += sign * free;
      c.total += sign * s.slots;
      c.healthy += sign;
      if (c.total === 0 && c.healthy === 0) this.byKind.delete(k);
    }
  }

  /** Change what a session offers (`change`: draining, cordoned), its slots counted out before and in after. */
  update(s: AgentSession, change: () => void): void {
    this.account(s, -1);
    change();
    this.account(s, 1);
  }

  /**
   * `delta` slots of a live agent were taken (1) or freed (-1): its free slots
   * per kind move by -delta (what account(-1), change, account(1) would do;
   * assigned + carried never exceeds slots, so free = slots - inFlight needs no clamp).
   */
  slotsTaken(s: AgentSession, delta: 1 | -1): void {
    if (s.dead || s.draining) return;
    for (const k of s.kinds) this.byKind.get(k)!.free -= delta;
  }
}

/** What a node reports of its agents: capacity per kind, and load averages over at most 64 agents (kept cheap). */
export function subtreeLoad(
  agents: ReadonlyMap<string, AgentSession>,
  capacity: ReadonlyMap<string, Capacity>,
): SubtreeLoad {
  let cpu = 0;
  let memory = 0;
  let lat = 0;
  let succ = 0;
  let n = 0;
  for (const s of agents.values()) {
    if (n >= 64) break;
    cpu += s.cpu;
    memory += s.memory;
    lat += s.latencyMs.value;
    succ += s.success.value;
    n++;
  }
  return {
    capacity,
    healthyAgents: agents.size,
    cpu: n ? cpu / n : 0,
    memory: n ? memory / n : 0,
    latencyEwmaMs: n ? lat / n : 0,
    successEwma: n ? succ / n : 1,
  };
}
