// An agent session as its node's routing policy sees it: one Candidate, built
// for every agent at a picker rebuild and for one agent when its figures
// change (a load, results), which a picker kept up to date takes in place
// (Picker.update; dispatcher.ts). That is once per task and per load, so a
// session keeps one candidate object and refreshes it in place rather than
// building a new one each time: at 20,000 agents a new candidate outlived the
// next scavenge (the picker held it until that agent's next task or load,
// seconds later) and was promoted, ~0.5 KiB a task for the old generation.
// A picker therefore sees an agent's figures change under it only at a
// rebuild (every candidate refreshed, the old picker dropped) or just before
// its update() of that candidate (AgentUpdates.apply). The object has
// makeCandidate's shape (policies/candidate.ts: the same fields in the same
// order, so pickers see one object shape), without its defaults and conversions.
import type { Candidate, KindSlots, Label } from '../policies/index.js';
import { heldByKind, type AgentSession } from './agent-session.js';
import { kindLatencyOf, latencyOf } from './agent-speed.js';

/** A Candidate as its session refreshes it (readonly to pickers). */
interface LiveCandidate {
  id: string;
  slots: Map<string, { free: number; total: number; latencyEwmaMs?: number }>;
  healthyAgents: number;
  queueDepth: number;
  active: number;
  utilization: { cpu: number; memory: number; gpu: number; network: number };
  latencyEwmaMs: number;
  successEwma: number;
  labels: readonly Label[];
  summaryAgeMs: number;
  draining: boolean;
  sharedSlots?: { free: number; total: number };
}

/** `labels`: the agent's, as the node shows them (its version ramp's side among them: version-ramps.ts). */
export function candidateOf(s: AgentSession, now: number, labels: readonly Label[]): Candidate {
  const c = (s.candidate as LiveCandidate | undefined) ?? (s.candidate = build(s, labels));
  const free = Math.max(0, s.slots - s.inFlight);
  if (c.sharedSlots === undefined) c.slots.get(s.kinds[0]!)!.free = free;
  else {
    // Several kinds share the slots (the pool below). Per kind, only what that
    // kind holds is taken: a result of kind a gives its credit back to a and
    // to the pool, so b can use it at once — with the pool's free count per
    // kind, a slot freed by a would never reach b until a rebuild.
    c.sharedSlots.free = free;
    const held = heldByKind(s);
    for (const [k, ks] of c.slots) {
      ks.free = Math.max(0, s.slots - (held.get(k) ?? 0));
      // Its own time of each kind: its latency below mixes them (agent-speed.ts, kindLatencyOf).
      ks.latencyEwmaMs = kindLatencyOf(s, k);
    }
  }
  c.active = s.inFlight;
  c.utilization.cpu = s.cpu;
  c.utilization.memory = s.memory;
  c.latencyEwmaMs = latencyOf(s);
  c.successEwma = s.success.value;
  c.labels = labels;
  c.summaryAgeMs = now - s.lastSeenMs;
  c.draining = s.draining;
  return c as Candidate;
}

/** The session's candidate object, its figures filled in by candidateOf. */
function build(s: AgentSession, labels: readonly Label[]): LiveCandidate {
  const slots = new Map<string, KindSlots>();
  const one = s.kinds.length === 1;
  // One pool of slots for all its kinds: picks of any kind consume it.
  if (one) slots.set(s.kinds[0]!, { free: 0, total: s.slots });
  else for (const k of s.kinds) slots.set(k, { free: 0, total: s.slots, latencyEwmaMs: 0 });
  const base: LiveCandidate = {
    id: s.id,
    slots,
    healthyAgents: 1,
    queueDepth: 0,
    active: 0,
    utilization: { cpu: 0, memory: 0, gpu: 0, network: 0 },
    latencyEwmaMs: 0,
    successEwma: 1,
    labels,
    summaryAgeMs: 0,
    draining: false,
  };
  return one ? base : { ...base, sharedSlots: { free: 0, total: s.slots } };
}
