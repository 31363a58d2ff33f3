// Multi-slot tasks (TaskSpec.slots, docs/gang.md): what an attempt costs in
// slots, and a map of attempts that keeps the sum of their costs, so an
// agent's slots in use are one read however its attempts are added or removed.
import type { TaskRef, TaskSpec } from '../gen/meshlb/v1/task.js';
import { StringMap } from '../util/string-map.js';

/** The slots a task takes on its agent at once: TaskSpec.slots, 0 meaning 1. */
export const slotsOf = (spec: Pick<TaskSpec, 'slots'>): number => (spec.slots > 1 ? spec.slots : 1);

/** The slots of an attempt an agent names (TaskRef.slots, 0 meaning 1). */
export const refSlots = (ref: TaskRef): number => (ref.slots > 1 ? ref.slots : 1);

/**
 * A map whose `used` is the sum of cost(value) over its entries, kept by every
 * set, delete and clear (the only ways it changes). A StringMap: an agent
 * session's attempts are set and deleted per task, and a Map remade its table
 * in the old generation, where a session lives (docs/performance.md, "Half of peak:
 * hops, and pretenuring"). It iterates in no particular order.
 */
export class SlotMap<V> extends StringMap<V> {
  /** Σ cost(v) over the entries. */
  used = 0;

  constructor(private readonly cost: (v: V) => number) {
    super();
  }

  override set(key: string, value: V): this {
    const prev = super.get(key);
    if (prev !== undefined) this.used -= this.cost(prev);
    super.set(key, value);
    this.used += this.cost(value);
    return this;
  }

  override delete(key: string): boolean {
    const prev = super.get(key);
    if (prev === undefined) return false;
    this.used -= this.cost(prev);
    return super.delete(key);
  }

  override clear(): void {
    this.used = 0;
    super.clear();
  }
}
