// Tasks of several slots in the simulated runs (TaskSpec.slots, docs/gang.md),
// drawn from a random stream of their own (seeded from the run's seed), so
// adding them changes none of the draws of the topology, agents, workload,
// flow keys or faults: in 4 runs of 5, 1-4 bursts of 2-12 tasks of 2-4 slots
// at cells of every tier. Agents have 1-4 slots, so some tasks fit only some
// agents and some fit none (they wait, then end "no agent with N slots"). The
// Checker's `multislot` check counts each agent's slots in use by cost.
import { Durability, Priority, TaskSpec } from '../../../src/gen/meshlb/v1/task.js';
import { Rng } from '../../../src/util/rng.js';

export interface SlotPlan {
  readonly rng: Rng;
  /** Whether this run submits tasks of several slots at all. */
  readonly on: boolean;
}

export function planSlots(seed: number): SlotPlan {
  const rng = new Rng((Math.imul(seed, 0x85ebca6b) ^ 0x5107) >>> 0);
  return { rng, on: rng.chance(0.8) };
}

/** A task of 2-4 slots; LOGGED or NONE; now and then a deadline. */
export function bigSpec(p: SlotPlan, kinds: readonly string[], seq: number, now: number): TaskSpec {
  const r = p.rng;
  return TaskSpec.fromPartial({
    idempotencyKey: `s${seq}`,
    kind: r.pick(kinds),
    priority: r.pick([Priority.PRIORITY_LOW, Priority.PRIORITY_NORMAL, Priority.PRIORITY_HIGH]),
    tenant: r.pick(['t0', 't1', 't2']),
    deadlineUnixMs: r.chance(0.1) ? now + r.int(1000, 8000) : 0,
    timeoutMs: r.chance(0.3) ? r.int(500, 3000) : 0,
    maxAttempts: r.chance(0.5) ? r.int(1, 4) : 0,
    durability: r.chance(0.3) ? Durability.DURABILITY_NONE : Durability.DURABILITY_LOGGED,
    slots: r.int(2, 4),
  });
}
