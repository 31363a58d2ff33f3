// Gangs in the simulated runs (TaskSpec.gang_id and gang_size, docs/gang.md),
// drawn from a random stream of their own (seeded from the run's seed), so
// adding them changes none of the other draws: in 7 runs of 10, 1-4 gangs of
// 2-4 members per run, each submitted whole at a node cell or (half of them)
// at a cell above one, of one kind or two, of 1-2 slots each, with a deadline
// (a gang bigger than its node's free slots waits until then). The Checker's
// `gang` check: no member of a gang is at an agent while another member that
// never started waits in a queue, or while its current attempt waits in a
// queue on its way down; and a gang's members at agents are all at one node.
import { Durability, Priority, TaskSpec } from '../../../src/gen/meshlb/v1/task.js';
import { Rng } from '../../../src/util/rng.js';

export interface GangPlan {
  readonly rng: Rng;
  /** Whether this run submits gangs at all. */
  readonly on: boolean;
}

export function planGangs(seed: number): GangPlan {
  const rng = new Rng((Math.imul(seed, 0x27d4eb2f) ^ 0x6a09) >>> 0);
  return { rng, on: rng.chance(0.7) };
}

/** The members of gang number `seq`: one submit batch. */
export function gangSpecs(p: GangPlan, kinds: readonly string[], seq: number, now: number): TaskSpec[] {
  const r = p.rng;
  const size = r.int(2, 4);
  const two = [r.pick(kinds), r.pick(kinds)];
  const deadline = now + r.int(3000, 9000);
  return Array.from({ length: size }, (_, i) =>
    TaskSpec.fromPartial({
      idempotencyKey: `g${seq}-${i}`,
      kind: two[r.chance(0.3) ? 1 : 0],
      priority: r.pick([Priority.PRIORITY_LOW, Priority.PRIORITY_NORMAL, Priority.PRIORITY_HIGH]),
      tenant: r.pick(['t0', 't1', 't2']),
      deadlineUnixMs: deadline,
      timeoutMs: r.chance(0.3) ? r.int(500, 3000) : 0,
      durability: Durability.DURABILITY_LOGGED,
      slots: r.chance(0.2) ? 2 : 1,
      gangId: `g${seq}`,
      gangSize: size,
    }),
  );
}
