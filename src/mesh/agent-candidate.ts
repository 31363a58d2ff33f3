// An agent session as its node's routing policy sees it: one Candidate, built
// for every agent at a picker rebuild and for one agent when its figures
// change (a load, results), which a picker kept up to date takes in place
// (Picker.update; dispatcher.ts). That is once per task and per load, so it
// is built directly, in makeCandidate's shape (policies/candidate.ts: the
// same fields in the same order, so pickers see one object shape), without
// makeCandidate's defaults and conversions.
import type { Candidate, KindSlots, Label } from '../policies/index.js';
import { heldByKind, type AgentSession } from './agent-session.js';
import { latencyOf } from './agent-speed.js';

/** `labels`: the agent's, as the node shows them (its version ramp's side among them: version-ramps.ts). */
export function candidateOf(s: AgentSession, now: number, labels: readonly Label[]): Candidate {
  const slots = new Map<string, KindSlots>();
  const free = Math.max(0, s.slots - s.inFlight);
  const shared = { free, total: s.slots };
  const one = s.kinds.length === 1;
  if (one) slots.set(s.kinds[0]!, shared);
  else {
    // Several kinds share the slots (the pool below). Per kind, only what that
    // kind holds is taken: a result of kind a gives its credit back to a and
    // to the pool, so b can use it at once — with the pool's free count per
    // kind, a slot freed by a would never reach b until a rebuild.
    const held = heldByKind(s);
    for (const k of s.kinds) slots.set(k, { free: Math.max(0, s.slots - (held.get(k) ?? 0)), total: s.slots });
  }
  const base = {
    id: s.id,
    slots,
    healthyAgents: 1,
    queueDepth: 0,
    active: s.inFlight,
    utilization: { cpu: s.cpu, memory: s.memory, gpu: 0, network: 0 },
    latencyEwmaMs: latencyOf(s),
    successEwma: s.success.value,
    labels,
    summaryAgeMs: now - s.lastSeenMs,
    draining: s.draining,
  };
  // One pool of slots for all its kinds: picks of any kind consume it.
  return one ? base : { ...base, sharedSlots: shared };
}
