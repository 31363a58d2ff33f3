// A hashed timer wheel: many deadlines (leases, backoffs, task deadlines,
// route expiries) with no per-task timer. Entries go into the slot of their
// due time (granularity `tickMs`); one periodic sweep fires every slot that has
// come due. Insert is O(1), firing is O(due entries). There is no removal:
// owners check on firing whether the entry still matters (lazy cancellation),
// e.g. a lease fires for attempt 3 while the task is on attempt 4 → ignored.
//
// The wheel reads time only through the injected clock; tests drive it with
// advance(now) and no real timers.
//
// An entry may carry a number beside it (`n`, kept in a parallel array): an
// entry that needs a string and a number (a lease: task id and attempt) is then
// no object of its own. Such entries wait seconds, so every one outlived the
// scavenges and filled the old generation (docs/performance.md, "Half of peak: what
// outlives a scavenge").

/** One slot's entries and their numbers, index for index. */
interface Slot<T> {
  readonly entries: T[];
  readonly nums: number[];
}

export class TimerWheel<T> {
  /** slot number → entries due in that slot. */
  private readonly slots = new Map<number, Slot<T>>();
  /** The next slot not yet fired. */
  private cursor: number;
  private count = 0;

  constructor(
    private readonly tickMs: number,
    now: number,
  ) {
    this.cursor = Math.floor(now / tickMs);
  }

  get size(): number {
    return this.count;
  }

  /** Schedule `entry` (with its number `n`) to fire at or after `dueMs` (at most one tick late). */
  add(dueMs: number, entry: T, n = 0): void {
    // Never into a slot already fired: it would wait for a full scan.
    const slot = Math.max(Math.ceil(dueMs / this.tickMs), this.cursor);
    let list = this.slots.get(slot);
    if (!list) {
      list = { entries: [], nums: [] };
      this.slots.set(slot, list);
    }
    list.entries.push(entry);
    list.nums.push(n);
    this.count++;
  }

  /** Fire every entry due by `now`, in due order. */
  advance(now: number, fire: (entry: T, n: number) => void): void {
    const last = Math.floor(now / this.tickMs);
    // Jumps over long idle gaps: only visit slots that exist.
    if (last - this.cursor > 4096) {
      const due = [...this.slots.keys()].filter((s) => s <= last).sort((a, b) => a - b);
      this.cursor = last + 1;
      for (const s of due) this.fireSlot(s, fire);
      return;
    }
    // The cursor moves past a slot before it fires, so entries added while
    // firing land in a later slot, never in one already fired.
    while (this.cursor <= last) this.fireSlot(this.cursor++, fire);
  }

  private fireSlot(slot: number, fire: (entry: T, n: number) => void): void {
    const list = this.slots.get(slot);
    if (!list) return;
    this.slots.delete(slot);
    const { entries, nums } = list;
    this.count -= entries.length;
    for (let i = 0; i < entries.length; i++) fire(entries[i]!, nums[i]!);
  }

  /**
   * The due time (ms) of the earliest entry due by `now + horizonMs`, or
   * undefined if none: probes at most horizonMs / tickMs + 1 slots.
   */
  nextDue(now: number, horizonMs: number): number | undefined {
    if (this.count === 0) return undefined;
    const last = Math.floor((now + horizonMs) / this.tickMs);
    for (let s = this.cursor; s <= last; s++) if (this.slots.has(s)) return s * this.tickMs;
    return undefined;
  }

  clear(): void {
    this.slots.clear();
    this.count = 0;
  }
}
