// Tasks waiting for a round-robin concurrency group (docs/flow-control.md,
// "Round robin across a group"): one first-come-first-served line per member
// key, and the members take turns, so a member with a thousand tasks waiting
// cannot keep one with a single task waiting from its turn. Pure, soft state
// of the root leader's gate.
//
// Turn order: the members in the order they last had a task let go (a member
// new to the group, or back after its line ran empty, joins at the end). Each
// take() lets go the head of the first member's line and moves that member to
// the end, so n freed permits go to n different members whenever n members wait.
export class RoundRobinWaiters<W> {
  /** member → (taskId → waiting); Map order is the turn order. */
  private readonly lines = new Map<string, Map<string, W>>();
  private count = 0;

  get size(): number {
    return this.count;
  }

  /** Members with tasks waiting. */
  get members(): number {
    return this.lines.size;
  }

  add(member: string, taskId: string, w: W): void {
    let line = this.lines.get(member);
    if (!line) this.lines.set(member, (line = new Map()));
    if (!line.has(taskId)) this.count++;
    line.set(taskId, w);
  }

  delete(member: string, taskId: string): boolean {
    const line = this.lines.get(member);
    if (!line?.delete(taskId)) return false;
    this.count--;
    if (line.size === 0) this.lines.delete(member);
    return true;
  }

  /** Every waiting task, member by member (gauges). */
  *waiting(): IterableIterator<W> {
    for (const line of this.lines.values()) yield* line.values();
  }

  /** Let go up to `n` waiting tasks, one member's head at a time, in turn. */
  take(n: number): [taskId: string, w: W][] {
    const out: [string, W][] = [];
    while (out.length < n && this.lines.size > 0) {
      const [member, line] = this.lines.entries().next().value as [string, Map<string, W>];
      const [taskId, w] = line.entries().next().value as [string, W];
      line.delete(taskId);
      this.count--;
      this.lines.delete(member);
      if (line.size > 0) this.lines.set(member, line); // to the end of the turn order
      out.push([taskId, w]);
    }
    return out;
  }
}
