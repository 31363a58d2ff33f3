// An agent session as its node's routing policy sees it: one Candidate, built
// for every agent at a picker rebuild and for one agent when its figures
// change (a load, results), which a picker kept up to date takes in place
// (Picker.update; dispatcher.ts).
import { makeCandidate, type Candidate, type Label } from '../policies/index.js';
import { heldByKind, type AgentSession } from './agent-session.js';

/** `labels`: the agent's, as the node shows them (its version ramp's side among them: version-ramps.ts). */
export function candidateOf(s: AgentSession, now: number, labels: readonly Label[]): Candidate {
  const slots = new Map<string, { free: number; total: number }>();
  const free = Math.max(0, s.slots - s.inFlight);
  const shared = { free, total: s.slots };
  if (s.kinds.length === 1) slots.set(s.kinds[0]!, shared);
  else {
    // Several kinds share the slots (the pool below). Per kind, only what that
    // kind holds is taken: a result of kind a gives its credit back to a and
    // to the pool, so b can use it at once — with the pool's free count per
    // kind, a slot freed by a would never reach b until a rebuild.
    const held = heldByKind(s);
    for (const k of s.kinds) slots.set(k, { free: Math.max(0, s.slots - (held.get(k) ?? 0)), total: s.slots });
  }
  return makeCandidate({
    id: s.id,
    slots,
    // One pool of slots for all its kinds: picks of any kind consume it.
    ...(s.kinds.length > 1 ? { sharedSlots: shared } : {}),
    healthyAgents: 1,
    active: s.inFlight,
    utilization: { cpu: s.cpu, memory: s.memory },
    latencyEwmaMs: s.latencyMs.value,
    successEwma: s.success.value,
    labels,
    summaryAgeMs: now - s.lastSeenMs,
    draining: s.draining,
  });
}
