// Flow control in the simulated runs: concurrency keys with limits, drawn
// from a random stream of their own (seeded from the run's seed), so adding
// them changes none of the draws of the topology, agents, workload or faults;
// and bursts of keyed tasks submitted at the root, which owns every key's
// counter (docs/flow-control.md). The Checker counts each key's attempts
// running at the agents against its limit (`flow`).
import { Durability, Priority, TaskSpec } from '../../../src/gen/meshlb/v1/task.js';
import { Rng } from '../../../src/util/rng.js';

export interface FlowPlan {
  readonly rng: Rng;
  /** Concurrency key → limit. */
  readonly limits: ReadonlyMap<string, number>;
  /** Keys that are round-robin groups: tasks name `key:member`, counted against the key. */
  readonly groups: ReadonlySet<string>;
  /** The topology's `flow:` section. */
  readonly yaml: readonly string[];
}

/**
 * Long enough that a lost attempt's agent has stopped by then in every fault
 * the simulator makes (a pause of up to 3.3 s, a 5x slowdown of a 160 ms
 * service time, a node cut off): the permit lingers the task's timeout plus this.
 */
export const SIM_LINGER_MS = 4000;

export function planFlow(seed: number): FlowPlan {
  const rng = new Rng((Math.imul(seed, 0x9e3779b1) ^ 0xf10f) >>> 0);
  const limits = new Map<string, number>();
  const groups = new Set<string>();
  const yaml = ['flow:', `  lingerMs: ${SIM_LINGER_MS}`, '  concurrency:'];
  for (let i = rng.int(1, 3); i > 0; i--) {
    const key = `c${limits.size}`;
    const limit = rng.int(1, 3);
    limits.set(key, limit);
    const r = rng.next();
    const strategy =
      r < 0.15
        ? ', strategy: cancel-newest'
        : r < 0.3
          ? ', strategy: cancel-in-progress'
          : r < 0.5
            ? ', strategy: round-robin'
            : '';
    if (r >= 0.3 && r < 0.5) groups.add(key);
    yaml.push(`    ${key}: { limit: ${limit}${strategy} }`);
  }
  return { rng, limits, groups, yaml };
}

/** A keyed task: homed at the root, LOGGED (as keyed tasks must be); a key without a limit now and then. */
export function keyedSpec(f: FlowPlan, kinds: readonly string[], seq: number, now: number): TaskSpec {
  const r = f.rng;
  const keys = [...f.limits.keys()];
  const key = r.chance(0.1) ? 'unlimited' : r.pick(keys);
  return TaskSpec.fromPartial({
    idempotencyKey: `f${seq}`,
    kind: r.pick(kinds),
    priority: r.pick([Priority.PRIORITY_LOW, Priority.PRIORITY_NORMAL, Priority.PRIORITY_HIGH]),
    tenant: r.pick(['t0', 't1']),
    deadlineUnixMs: r.chance(0.05) ? now + r.int(1000, 8000) : 0,
    timeoutMs: r.chance(0.3) ? r.int(500, 3000) : 0,
    maxAttempts: r.chance(0.5) ? r.int(1, 4) : 0,
    durability: Durability.DURABILITY_LOGGED,
    concurrencyKey: f.groups.has(key) ? `${key}:m${r.int(0, 3)}` : key,
  });
}

/**
 * Preemption (docs/flow-control.md, "Preemption") in two of three runs, from a stream of its own:
 * the workload's critical tasks preempt lower ones on saturated kinds; every check holds through it.
 */
export function planPreemption(seed: number): string[] {
  const rng = new Rng((Math.imul(seed, 0x85ebca6b) ^ 0x9ee) >>> 0);
  if (rng.chance(1 / 3)) return [];
  const min = rng.chance(0.8) ? 'critical' : 'high';
  return [`preemption: { minPriority: ${min}, graceMs: ${rng.int(100, 2000)}, maxPerSecond: ${rng.int(1, 20)} }`];
}
