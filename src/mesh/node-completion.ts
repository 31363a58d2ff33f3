// A node's agents of a kind by speed for its summary (KindCapacity
// speed_service_ms, speed_slots, speed_free): its live agents' figures as
// node-score sees them (agent-candidate.ts) through the pure grouping that
// bench:sched's simulated nodes use too (src/policies/completion.ts). O(agents
// of the kind) per summary sent; never in the per-tick judgement of whether
// to send one.
import { speedGroups, type AgentFigures, type SpeedGroups } from '../policies/index.js';
import { heldByKind, type AgentSession } from './agent-session.js';
import { kindLatencyOf, latencyOf } from './agent-speed.js';

export function nodeSpeedGroups(
  agents: ReadonlyMap<string, AgentSession>,
  kind: string,
  queued: number,
): SpeedGroups | undefined {
  return speedGroups(figures(agents, kind), queued);
}

function* figures(agents: ReadonlyMap<string, AgentSession>, kind: string): Generator<AgentFigures> {
  for (const s of agents.values()) {
    if (s.dead || !s.kinds.includes(kind)) continue;
    const free = s.draining ? 0 : Math.max(0, s.slots - s.inFlight);
    // Several kinds share its slots: the kind's own credit, within the pool (agent-candidate.ts).
    const own = s.kinds.length === 1 ? free : Math.min(free, s.slots - (heldByKind(s).get(kind) ?? 0));
    const kindMs = kindLatencyOf(s, kind);
    yield {
      latencyEwmaMs: kindMs > 0 ? kindMs : latencyOf(s),
      successEwma: s.success.value,
      cpu: s.cpu,
      memory: s.memory,
      slots: s.draining ? 0 : s.slots,
      free: own,
    };
  }
}
